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

/**
 * A 2xx answer whose body says JSON (`content-type`) but does not parse (cut short, or an HTML
 * error page sent as `application/json`): the request may have taken effect, so it is not
 * retried. Carries the status, headers and a bounded excerpt.
 */
export class HttpBodyError extends PatchbayError {
  constructor(
    readonly method: string,
    readonly url: string,
    readonly status: number,
    readonly headers: Record<string, string>,
    /** At most 2048 characters of the body. */
    readonly bodyExcerpt: string,
    options: PatchbayErrorOptions,
  ) {
    super(
      "HTTP_BODY_INVALID",
      `${method} ${url} answered ${status} with a body that is not the JSON it claims: ${(options.cause as Error | undefined)?.message ?? "parse failed"}`,
      {
        ...options,
        retryable: false,
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

declare module "../core/errors.js" {
  interface PatchbayErrorCodes {
    HTTP_BODY_INVALID: HttpBodyError;
    HTTP_STATUS: HttpError;
    HTTP_NETWORK: HttpNetworkError;
    HTTP_REDIRECT_REFUSED: HttpRedirectError;
  }
}

const DAY = "(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)";
const MONTH = "(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)";
const TIME = "\\d{2}:\\d{2}:\\d{2}";
/** The three HTTP-date forms of RFC 9110 §5.6.7: IMF-fixdate, RFC 850, asctime (all GMT). */
const HTTP_DATE = [
  new RegExp(`^${DAY}, \\d{2} ${MONTH} \\d{4} ${TIME} GMT$`, "i"),
  new RegExp(`^(?:Mon|Tues|Wednes|Thurs|Fri|Satur|Sun)day, \\d{2}-${MONTH}-\\d{2} ${TIME} GMT$`, "i"),
  new RegExp(`^${DAY} ${MONTH} [ \\d]\\d ${TIME} \\d{4}$`, "i"),
];

/**
 * Reads `Retry-After`: delta-seconds or an HTTP date, as ms from `now`; `undefined` when absent or
 * neither. Only a real HTTP date is read as one: `Date.parse` alone takes garbage such as
 * `"soon 2099"` or `"-5"` for a date, and a client would then wait decades.
 */
export function parseRetryAfter(value: string | null, now: number): number | undefined {
  if (value === null) return undefined;
  const trimmed = value.trim();
  if (trimmed === "") return undefined;
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  if (!HTTP_DATE.some((form) => form.test(trimmed))) return undefined;
  // asctime carries no zone; HTTP dates are always GMT (Date.parse would read it as local time).
  const date = Date.parse(/GMT$/i.test(trimmed) ? trimmed : `${trimmed} GMT`);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}
