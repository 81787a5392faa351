import { PatchbayError, type PatchbayErrorOptions } from "../core/errors.js";

/** Statuses worth another attempt: request timeout, too early, rate limited, server trouble. */
const RETRYABLE_STATUS = new Set([408, 425, 429, 500, 502, 503, 504]);

/**
 * The server answered with a status that is not 2xx. Carries the status, the `Retry-After` wait
 * the server asked for (as `retryAfterMs`, read by the retry policy) and a bounded excerpt of the
 * body for logs — never the whole body.
 */
export class HttpError extends PatchbayError {
  constructor(
    readonly method: string,
    readonly url: string,
    readonly status: number,
    readonly statusText: string,
    readonly headers: Record<string, string>,
    /** At most `maxErrorBodyBytes` of the body, as text. */
    readonly bodyExcerpt: string,
    /** From `Retry-After` (seconds or an HTTP date); undefined when absent. */
    readonly retryAfterMs: number | undefined,
  ) {
    super("HTTP_STATUS", `${method} ${url} answered ${status} ${statusText}`.trim(), {
      retryable: RETRYABLE_STATUS.has(status),
    });
  }
}

/** The request never got an answer: connection refused or reset, DNS failure. Retryable. */
export class HttpNetworkError extends PatchbayError {
  constructor(
    readonly method: string,
    readonly url: string,
    options: PatchbayErrorOptions,
  ) {
    const reason =
      options.cause instanceof Error ? (options.cause.cause as Error | undefined)?.message : undefined;
    super(
      "HTTP_NETWORK",
      `${method} ${url} failed: ${reason ?? (options.cause as Error)?.message ?? "network error"}`,
      {
        retryable: true,
        ...options,
      },
    );
  }
}

/** A redirect to another origin (or too many redirects) was refused. */
export class HttpRedirectError extends PatchbayError {
  constructor(
    readonly method: string,
    readonly url: string,
    /** Where the server wanted to send us. */
    readonly location: string,
    message: string,
  ) {
    super("HTTP_REDIRECT_REFUSED", message);
  }
}

/**
 * A 2xx answer whose body is not what its `content-type` says (JSON that does not parse: cut
 * short, or an HTML error page sent as `application/json`). Not retried: the same request may be
 * answered the same way.
 */
export class HttpBodyError extends PatchbayError {
  constructor(
    readonly method: string,
    readonly url: string,
    readonly status: number,
    /** At most 2048 characters of the body. */
    readonly bodyExcerpt: string,
    options: PatchbayErrorOptions,
  ) {
    super(
      "HTTP_BODY_INVALID",
      `${method} ${url} answered ${status} with a body that is not valid JSON: ${(options.cause as Error | undefined)?.message ?? "parse failed"}`,
      options,
    );
  }
}

declare module "../core/errors.js" {
  interface PatchbayErrorCodes {
    HTTP_BODY_INVALID: HttpBodyError;
    HTTP_STATUS: HttpError;
    HTTP_NETWORK: HttpNetworkError;
    HTTP_REDIRECT_REFUSED: HttpRedirectError;
  }
}

/** Reads `Retry-After`: delta-seconds or an HTTP date, as ms from `now`. */
export function parseRetryAfter(value: string | null, now: number): number | undefined {
  if (value === null || value.trim() === "") return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}
