/**
 * One delivery attempt, store-free: check the payload size, resolve and check the target (SSRF),
 * sign with every active secret, POST through the connector under a timeout, and classify what
 * happened. Never throws for a failed delivery: the outcome says what went wrong.
 */
import type { Clock } from "../core/clock.js";
import { storableText } from "../core/storable-text.js";
import { isPatchbayError, type PatchbayError } from "../core/errors.js";
import { parseRetryAfter } from "../http/errors.js";
import { timeout as timeoutPolicy } from "../resilience/timeout.js";
import type { WebhookConnector } from "./connector.js";
import { WebhookDeliveryError, WebhookPayloadTooLargeError } from "./errors.js";
import { signatureHeaders } from "./signature.js";
import type { TargetPolicy } from "./ssrf.js";

/** What one attempt sends. */
export interface OutboundWebhook {
  /** The message id: `webhook-id`, the same on every attempt. */
  id: string;
  url: string;
  /** The body, exactly as it will be signed and sent. */
  body: string | Uint8Array;
  /** Secrets to sign with (the current one, plus a rotated one during its grace period). */
  secrets: readonly string[];
  /** Further headers (`content-type`, `traceparent`, CloudEvents `ce-*`); `content-type` defaults to JSON. */
  headers?: Record<string, string>;
}

/** What happened on one attempt. */
export interface AttemptOutcome {
  /** A 2xx answer arrived within the timeout. */
  ok: boolean;
  status: number | undefined;
  /** Wall time of the attempt, ms. */
  latencyMs: number;
  /** The first bytes of the response body. */
  responseExcerpt: string | undefined;
  /** Why it failed; undefined on success. */
  error: PatchbayError | undefined;
  /** The wait a 429 or 503 asked for with `Retry-After`. */
  retryAfterMs: number | undefined;
  /** 410 Gone: the endpoint is to be disabled. */
  gone: boolean;
  /** Retrying cannot help (410, a refused address, a payload over the limit). */
  final: boolean;
  /** The failure is the endpoint's (counts toward disabling it); false for our own limits and shutdown. */
  endpointFault: boolean;
}

/** Options of {@link createSender}. */
export interface SenderOptions {
  policy: TargetPolicy;
  connector: WebhookConnector;
  timeoutMs: number;
  maxPayloadBytes: number;
  maxResponseBytes: number;
  clock: Clock;
  userAgent: string;
}

/** A function that makes one attempt. */
export type Sender = (message: OutboundWebhook, signal?: AbortSignal) => Promise<AttemptOutcome>;

/** Builds the {@link Sender}. */
export function createSender(options: SenderOptions): Sender {
  const perAttempt = timeoutPolicy(options.timeoutMs, { clock: options.clock });

  return async (message, signal) => {
    const started = performance.now();
    const outcome = (fields: Partial<AttemptOutcome>): AttemptOutcome => ({
      ok: false,
      status: undefined,
      latencyMs: Math.round(performance.now() - started),
      responseExcerpt: undefined,
      error: undefined,
      retryAfterMs: undefined,
      gone: false,
      final: false,
      endpointFault: true,
      ...fields,
    });
    const body =
      typeof message.body === "string" ? Buffer.from(message.body, "utf8") : Buffer.from(message.body);
    if (body.length > options.maxPayloadBytes) {
      const error = new WebhookPayloadTooLargeError(body.length, options.maxPayloadBytes);
      return outcome({ error, final: true, endpointFault: false });
    }
    try {
      const target = await options.policy.resolve(new URL(message.url));
      const timestamp = Math.floor(options.clock.now() / 1000);
      const headers = {
        "content-type": "application/json",
        "user-agent": options.userAgent,
        ...message.headers,
        ...signatureHeaders(message.secrets, { id: message.id, timestamp, body }),
      };
      const res = await perAttempt.execute(
        ({ signal: attemptSignal }) =>
          options.connector({
            url: target.url,
            address: target.address,
            family: target.family,
            headers,
            body,
            signal: attemptSignal,
            maxResponseBytes: options.maxResponseBytes,
          }),
        signal,
      );
      // Whatever the receiver answered must be recordable: a NUL byte in its body would make the
      // attempt's outcome unrecordable on PostgreSQL, and the delivery sent again and again.
      const excerpt = res.body === "" ? undefined : storableText(res.body);
      if (res.status >= 200 && res.status < 300)
        return outcome({ ok: true, status: res.status, responseExcerpt: excerpt });
      const gone = res.status === 410;
      const retryAfterMs =
        res.status === 429 || res.status === 503
          ? parseRetryAfter(res.headers["retry-after"] ?? null, options.clock.now())
          : undefined;
      const redirect = res.status >= 300 && res.status < 400;
      const error = new WebhookDeliveryError(
        "WEBHOOK_HTTP_STATUS",
        redirect
          ? `${target.url.origin} answered ${res.status} (redirect to ${res.headers.location ?? "nowhere"}); redirects are not followed`
          : `${target.url.origin} answered ${res.status}`,
        res.status,
        { retryable: !gone },
      );
      return outcome({
        status: res.status,
        responseExcerpt: excerpt,
        error,
        gone,
        final: gone,
        retryAfterMs,
      });
    } catch (e) {
      if (signal?.aborted) {
        const error = new WebhookDeliveryError(
          "WEBHOOK_ABORTED",
          "the sender stopped during the attempt",
          undefined,
          {
            cause: e,
          },
        );
        return outcome({ error, endpointFault: false });
      }
      if (isPatchbayError(e, "TIMEOUT")) {
        const error = new WebhookDeliveryError(
          "WEBHOOK_TIMEOUT",
          `no answer within ${options.timeoutMs} ms`,
          undefined,
          { cause: e },
        );
        return outcome({ error });
      }
      if (isPatchbayError(e)) return outcome({ error: e, final: !e.retryable });
      const error = new WebhookDeliveryError(
        "WEBHOOK_NETWORK",
        (e as Error)?.message ?? String(e),
        undefined,
        {
          cause: e,
        },
      );
      return outcome({ error });
    }
  };
}
