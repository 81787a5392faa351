/**
 * The framework-neutral core of the webhook receiver: verify the request, dedupe its message id
 * through the Store's idempotency records, hand the parsed event to the handler, and say what to
 * answer. The Node/Express and Fastify adapters only move bytes in and out.
 */
import { createHash } from "node:crypto";
import { toMs, type Duration } from "../core/duration.js";
import { InvalidArgumentError, isPatchbayError } from "../core/errors.js";
import type { Clock } from "../core/clock.js";
import type { IdempotencyStore, StoreTx, Transactor } from "../store/contracts.js";
import { WebhookReplayedError } from "./errors.js";
import type { HeaderSource } from "./headers.js";
import { verifyGitHubWebhook } from "./verify-github.js";
import { verifyStripeWebhook } from "./verify-stripe.js";
import { verifyWebhook, type VerifiedWebhook } from "./verify.js";

/** Verifies a request and returns its id and payload, or throws a `WebhookVerificationError`. */
export type WebhookVerifier = (headers: HeaderSource, rawBody: Buffer) => VerifiedWebhook;

/** A verified webhook as the handler receives it. */
export interface ReceivedWebhook<T = unknown> extends VerifiedWebhook<T> {
  headers: HeaderSource;
}

/** What the handler gets besides the event. */
export interface ReceiverContext {
  /** The store transaction holding the dedupe record (when `transaction` is on): write your effects through it. */
  readonly tx: StoreTx | undefined;
}

/** Options of the webhook receiver (all adapters). */
export interface WebhookReceiverOptions<T = unknown> {
  /** Which signature scheme: Standard Webhooks (default), GitHub or Stripe. */
  scheme?: "standard" | "github" | "stripe";
  /** The secret(s) of the scheme; several while rotating. Required unless `verify` is given. */
  secret?: string | readonly string[];
  /** A verifier of your own instead of `scheme` and `secret`. */
  verify?: WebhookVerifier;
  /** Timestamp tolerance either way (Standard Webhooks, Stripe). Default `"5m"`. */
  tolerance?: Duration;
  /** Dedupe by message id through this store's idempotency records. Without it every valid request runs the handler. */
  store?: { readonly idempotency: IdempotencyStore } & Partial<Transactor>;
  /** Scope of the dedupe records, to keep receivers apart. Default `"webhooks"`. */
  scope?: string;
  /** How long message ids are remembered. Default `"7d"` (senders retry for about 1–3 days). */
  retention?: Duration;
  /**
   * Run the handler in a store transaction together with the dedupe record (default `true` when the
   * store can): its `ctx.tx` writes and "processed" commit together — an exactly-once effect. Set
   * `false` for handlers that only call out, so no transaction is held meanwhile.
   */
  transaction?: boolean;
  /** Without a transaction: how long a request being processed holds its id. Default `"5m"`. */
  lease?: Duration;
  /** Largest body read. Default 1 MiB. */
  maxBodyBytes?: number;
  /** Called for every valid, new message; throwing answers 500 so the sender retries. */
  handler: (event: ReceivedWebhook<T>, ctx: ReceiverContext) => Promise<void> | void;
  /** Told about every refused or failed request (for logs). */
  onError?: (error: unknown) => void;
  clock?: Clock;
}

/** What to answer. */
export interface ReceiveResult {
  status: number;
  headers: Record<string, string>;
  body: string;
  outcome: "processed" | "duplicate" | "rejected" | "failed";
  /** The message id, when verification got that far. */
  id: string | undefined;
  error: unknown;
}

/** The receiver core. */
export interface WebhookReceiver {
  receive(headers: HeaderSource, rawBody: Buffer): Promise<ReceiveResult>;
  readonly maxBodyBytes: number;
}

const JSON_TYPE = { "content-type": "application/json" };
/** The longest message id the Store's idempotency records hold as a key. */
const MAX_ID_LENGTH = 255;

/** Builds the framework-neutral receiver. */
export function createWebhookReceiver<T = unknown>(options: WebhookReceiverOptions<T>): WebhookReceiver {
  const verify = verifierOf(options);
  const scope = options.scope ?? "webhooks";
  const ttl = options.retention ?? "7d";
  const lease = options.lease ?? "5m";
  toMs(ttl, "retention");
  if (toMs(lease, "lease") === 0) throw new InvalidArgumentError("lease must be greater than zero", "lease");
  const store = options.store;
  const inTransaction = (options.transaction ?? true) && typeof store?.transaction === "function";
  const answer = (
    status: number,
    outcome: ReceiveResult["outcome"],
    id: string | undefined,
    body: Record<string, unknown>,
    error?: unknown,
    headers: Record<string, string> = {},
  ): ReceiveResult => {
    if (error !== undefined) options.onError?.(error);
    return { status, headers: { ...JSON_TYPE, ...headers }, body: JSON.stringify(body), outcome, id, error };
  };

  async function dedupedRun(event: ReceivedWebhook<T>): Promise<void> {
    const fingerprint = createHash("sha256").update(event.body).digest("hex");
    const ref = { scope, key: event.id };
    if (!store) return void (await options.handler(event, { tx: undefined }));
    if (inTransaction) {
      await store.transaction!(async (tx) => {
        const claim = await tx.idempotency.claim({ ...ref, fingerprint, ttl, lease });
        if (claim.outcome !== "claimed") throw replayed(event.id, claim.outcome);
        await options.handler(event, { tx });
        await tx.idempotency.complete(ref, claim.token, { status: 200 });
      });
      return;
    }
    const claim = await store.idempotency.claim({ ...ref, fingerprint, ttl, lease });
    if (claim.outcome !== "claimed") throw replayed(event.id, claim.outcome);
    try {
      await options.handler(event, { tx: undefined });
    } catch (e) {
      await store.idempotency.release(ref, claim.token).catch(() => undefined);
      throw e;
    }
    await store.idempotency.complete(ref, claim.token, { status: 200 });
  }

  return {
    maxBodyBytes: options.maxBodyBytes ?? 1_048_576,
    async receive(headers, rawBody) {
      let event: ReceivedWebhook<T>;
      try {
        event = { ...(verify(headers, rawBody) as VerifiedWebhook<T>), headers };
        // An id the dedupe records cannot hold would fail every retry of the sender with a 500.
        if (store && (event.id.length === 0 || event.id.length > MAX_ID_LENGTH)) {
          throw new InvalidArgumentError(
            `the webhook id must be 1 to ${MAX_ID_LENGTH} characters, got ${event.id.length}`,
            "webhook-id",
          );
        }
      } catch (e) {
        if (isPatchbayError(e) && "status" in e && typeof e.status === "number") {
          return answer(e.status, "rejected", undefined, { error: e.code, message: e.message }, e);
        }
        if (isPatchbayError(e, "INVALID_ARGUMENT")) {
          return answer(400, "rejected", undefined, { error: e.code, message: e.message }, e);
        }
        throw e;
      }
      try {
        await dedupedRun(event);
        return answer(200, "processed", event.id, { ok: true });
      } catch (e) {
        if (e instanceof WebhookReplayedError) {
          // Already processed: 2xx, so a sender that missed our first answer stops retrying.
          if (e.state === "processed")
            return answer(200, "duplicate", event.id, { ok: true, duplicate: true });
          if (e.state === "in_flight") {
            return answer(409, "rejected", event.id, { error: e.code, message: e.message }, e, {
              "retry-after": "5",
            });
          }
          return answer(422, "rejected", event.id, { error: e.code, message: e.message }, e);
        }
        return answer(
          500,
          "failed",
          event.id,
          { error: "HANDLER_FAILED", message: "the webhook handler failed" },
          e,
        );
      }
    },
  };
}

function replayed(id: string, outcome: "in_flight" | "completed" | "mismatch"): WebhookReplayedError {
  return new WebhookReplayedError(
    id,
    outcome === "completed" ? "processed" : outcome === "in_flight" ? "in_flight" : "conflict",
  );
}

function verifierOf(options: Omit<WebhookReceiverOptions, "handler">): WebhookVerifier {
  if (options.verify) return options.verify;
  const secret = options.secret;
  if (secret === undefined)
    throw new InvalidArgumentError("the webhook receiver needs secret (or verify)", "secret");
  const base = {
    ...(options.tolerance === undefined ? {} : { tolerance: options.tolerance }),
    ...(options.clock ? { clock: options.clock } : {}),
  };
  const scheme = options.scheme ?? "standard";
  if (scheme === "github") return (headers, body) => verifyGitHubWebhook(secret, headers, body);
  if (scheme === "stripe") return (headers, body) => verifyStripeWebhook(secret, headers, body, base);
  if (scheme === "standard") return (headers, body) => verifyWebhook(secret, headers, body, base);
  throw new InvalidArgumentError(
    `scheme is "standard", "github" or "stripe", got ${JSON.stringify(scheme)}`,
    "scheme",
  );
}
