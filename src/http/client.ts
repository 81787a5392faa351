import { randomUUID } from "node:crypto";
import { context, propagation } from "@opentelemetry/api";
import { systemClock, type Clock } from "../core/clock.js";
import { toMs, type Duration } from "../core/duration.js";
import { InvalidArgumentError } from "../core/errors.js";
import { measure } from "../core/instruments.js";
import {
  circuitBreaker,
  type CircuitBreakerOptions,
  type CircuitBreakerPolicy,
} from "../resilience/breaker.js";
import { isRetryableError, retryAfterMsOf } from "../resilience/classify.js";
import { exponential } from "../resilience/backoff.js";
import { retry, type RetryOptions, type RetryPolicy } from "../resilience/retry.js";
import { timeout as timeoutPolicy } from "../resilience/timeout.js";
import { wrap } from "../resilience/wrap.js";
import { HttpBodyError, HttpError, HttpNetworkError, HttpRedirectError, parseRetryAfter } from "./errors.js";

/** Options of {@link httpClient}. */
export interface HttpClientOptions {
  /** Prefix of relative request paths, e.g. `https://api.example.com/v1/`. */
  baseUrl?: string;
  /** Per-attempt timeout (the callee's signal aborts). Default 10 s. */
  timeout?: Duration;
  /**
   * Retry policy options, or `false`. Default: 3 attempts, exponential backoff from 200 ms to
   * 10 s with full jitter, `Retry-After` honoured. Only idempotent methods, or requests carrying
   * an `Idempotency-Key`, are ever retried.
   */
  retry?: Omit<RetryOptions, "clock"> | false;
  /**
   * The longest `Retry-After` a retry waits for. A server asking for longer (a misconfigured
   * header, a 10-year value) ends the call at once with its `HttpError`, whose `retryAfterMs`
   * says when to come back, instead of holding the call that long. Default 5 minutes.
   */
  maxRetryAfter?: Duration;
  /** Circuit breaker options (one breaker per host), or `false`. Default: 5 consecutive failures, 30 s open. */
  breaker?: Omit<CircuitBreakerOptions, "clock"> | false;
  /** Headers sent with every request. */
  headers?: Record<string, string>;
  /**
   * Redirects: `"same-origin"` (default) follows them within the origin and refuses any other
   * with `HTTP_REDIRECT_REFUSED`; `"none"` refuses all; `"any"` follows everywhere (not recommended:
   * credentials in headers would travel to the new host).
   */
  redirects?: "same-origin" | "none" | "any";
  /** How much of an error body is kept on `HttpError.bodyExcerpt`. Default 2048 bytes. */
  maxErrorBodyBytes?: number;
  /** The `fetch` to use (default the global one). */
  fetch?: typeof fetch;
  clock?: Clock;
}

/** One request. */
export interface HttpRequestOptions {
  /** Query parameters appended to the URL. */
  query?: Record<string, string | number | boolean | undefined>;
  /** A JSON body (sets `content-type: application/json`). */
  json?: unknown;
  /** A raw body. */
  body?: string | Uint8Array;
  headers?: Record<string, string>;
  /**
   * An `Idempotency-Key` for this call, or `true` to generate one. The same key is sent on every
   * attempt of the call, which is what makes retrying a POST safe.
   */
  idempotencyKey?: string | true;
  /** Aborts the call, waits included. */
  signal?: AbortSignal;
  /** How a JSON response body is parsed. Default `JSON.parse` (numbers beyond a double are rounded). */
  parseJson?: (text: string) => unknown;
}

/** A successful (2xx) response with its body read. */
export interface HttpResponse<T = unknown> {
  status: number;
  headers: Headers;
  /** Parsed JSON when the response says JSON, text otherwise (`undefined` for an empty body). */
  data: T;
  /** The final URL, after same-origin redirects. */
  url: string;
  /** How many attempts the call took. */
  attempts: number;
}

/** A resilient HTTP client. */
export interface HttpClient {
  request<T = unknown>(method: string, path: string, options?: HttpRequestOptions): Promise<HttpResponse<T>>;
  get<T = unknown>(path: string, options?: HttpRequestOptions): Promise<HttpResponse<T>>;
  post<T = unknown>(path: string, options?: HttpRequestOptions): Promise<HttpResponse<T>>;
  put<T = unknown>(path: string, options?: HttpRequestOptions): Promise<HttpResponse<T>>;
  patch<T = unknown>(path: string, options?: HttpRequestOptions): Promise<HttpResponse<T>>;
  delete<T = unknown>(path: string, options?: HttpRequestOptions): Promise<HttpResponse<T>>;
  /** The breaker of a host (`"api.example.com:443"`), created on first use. */
  breakerFor(host: string): CircuitBreakerPolicy | undefined;
}

const IDEMPOTENT = new Set(["GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"]);
const MAX_REDIRECTS = 5;

/**
 * A resilient HTTP client on the built-in `fetch`: a per-attempt timeout handed to `fetch` as an
 * `AbortSignal`, retries with jittered backoff that honour `Retry-After` (idempotent methods, or
 * requests with an `Idempotency-Key` only), a circuit breaker per host, W3C `traceparent`
 * injection from the active OpenTelemetry context, typed errors, and no silent cross-host redirects.
 *
 * @example
 * const payments = httpClient({ baseUrl: "https://pay.example.com/v1/", timeout: "5s" });
 * const { data } = await payments.post<{ id: string }>("charges", { json: { amount: 4200 }, idempotencyKey: `charge:${orderId}` });
 */
export function httpClient(options: HttpClientOptions = {}): HttpClient {
  const clock = options.clock ?? systemClock;
  const doFetch = options.fetch ?? globalThis.fetch;
  const perAttempt = timeoutPolicy(toMs(options.timeout ?? "10s", "timeout"));
  const maxErrorBody = options.maxErrorBodyBytes ?? 2048;
  const maxRetryAfterMs = toMs(options.maxRetryAfter ?? "5m", "maxRetryAfter");
  const redirects = options.redirects ?? "same-origin";
  const base = options.baseUrl === undefined ? undefined : parseUrl(options.baseUrl, "baseUrl");
  const breakers = new Map<string, CircuitBreakerPolicy>();
  const retryFor = (idempotent: boolean): RetryPolicy | undefined => {
    if (options.retry === false) return undefined;
    const configured = options.retry ?? {};
    const retryOn = configured.retryOn ?? isRetryableError;
    return retry({
      maxAttempts: 3,
      backoff: exponential({ initial: "200ms", max: "10s" }),
      ...configured,
      clock,
      // A non-idempotent request without a key may have taken effect: never send it twice.
      // A wait longer than maxRetryAfter is not a retry worth holding the call for.
      retryOn: (error) => idempotent && retryOn(error) && !((retryAfterMsOf(error) ?? 0) > maxRetryAfterMs),
    });
  };
  const breakerFor = (host: string) => {
    if (options.breaker === false) return undefined;
    let breaker = breakers.get(host);
    if (!breaker) {
      // A 404 or 422 means the host is answering: only transient failures count against it.
      breaker = circuitBreaker({
        halfOpenAfter: "30s",
        isFailure: isRetryableError,
        ...options.breaker,
        clock,
      });
      breakers.set(host, breaker);
      const name = `http:${host}`;
      measure("breaker.state", 1, { breaker: name, state: breaker.state });
      breaker.onStateChange(({ state }) => measure("breaker.state", 1, { breaker: name, state }));
    }
    return breaker;
  };

  async function request<T>(
    method: string,
    path: string,
    req: HttpRequestOptions = {},
  ): Promise<HttpResponse<T>> {
    const verb = method.toUpperCase();
    // RFC 9110: a method is a token. Anything else fails in fetch on every attempt.
    if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(verb)) {
      throw new InvalidArgumentError(`method ${JSON.stringify(method)} is not an HTTP method`, "method");
    }
    const url = buildUrl(base, path, req.query);
    const headers = buildHeaders(options.headers, req.headers);
    let body: string | Uint8Array | undefined = req.body;
    if (req.json !== undefined) {
      if (req.body !== undefined)
        throw new InvalidArgumentError("give either json or body, not both", "json");
      body = JSON.stringify(req.json);
      if (!headers.has("content-type")) headers.set("content-type", "application/json");
    }
    if (req.idempotencyKey !== undefined) {
      setHeader(headers, "idempotency-key", req.idempotencyKey === true ? randomUUID() : req.idempotencyKey);
    }
    // traceparent/tracestate of the active span, when the app runs an OpenTelemetry SDK.
    const carrier: Record<string, string> = {};
    propagation.inject(context.active(), carrier);
    for (const [k, v] of Object.entries(carrier)) if (!headers.has(k)) headers.set(k, v);

    const idempotent = IDEMPOTENT.has(verb) || headers.has("idempotency-key");
    const policies = [retryFor(idempotent), breakerFor(url.host), perAttempt].filter((p) => p !== undefined);
    let attempts = 0;
    const labels = { host: url.host, method: verb };
    try {
      const response = await wrap(...policies).execute(async ({ signal }) => {
        attempts++;
        return send(verb, url, headers, body, signal, req.parseJson ?? JSON.parse);
      }, req.signal);
      measure("http.request", 1, { ...labels, outcome: "success" });
      return { ...response, attempts } as HttpResponse<T>;
    } catch (e) {
      measure("http.request", 1, { ...labels, outcome: "error" });
      throw e;
    } finally {
      if (attempts > 1) measure("http.retries", attempts - 1, labels);
    }
  }

  async function send(
    method: string,
    url: URL,
    headers: Headers,
    body: string | Uint8Array | undefined,
    signal: AbortSignal,
    parseJson: (text: string) => unknown,
  ): Promise<Omit<HttpResponse, "attempts">> {
    let current = url;
    let verb = method;
    let payload = body;
    for (let hop = 0; ; hop++) {
      let res: Response;
      try {
        res = await doFetch(current, { method: verb, headers, body: payload, signal, redirect: "manual" });
      } catch (cause) {
        if (signal.aborted) throw signal.reason ?? cause;
        const refused = unsendable(cause);
        if (refused) {
          // No attempt of this request can ever go out: not a network failure to retry.
          throw new InvalidArgumentError(`${verb} ${current.href} cannot be sent: ${refused}`, "request", {
            cause,
          });
        }
        throw new HttpNetworkError(verb, current.href, { cause });
      }
      const location = res.headers.get("location");
      if (res.status >= 300 && res.status < 400 && location) {
        await res.body?.cancel();
        const next = new URL(location, current);
        const allowed =
          redirects === "any" || (redirects === "same-origin" && next.origin === current.origin);
        if (!allowed || hop >= MAX_REDIRECTS) {
          throw new HttpRedirectError(
            verb,
            current.href,
            next.href,
            hop >= MAX_REDIRECTS
              ? `${verb} ${url.href}: more than ${MAX_REDIRECTS} redirects`
              : `${verb} ${current.href} redirected to ${next.origin}, another origin; refused (redirects: "${redirects}")`,
          );
        }
        // 303, and 301/302 after a POST, turn into a GET without a body (what browsers do).
        if (res.status === 303 || ((res.status === 301 || res.status === 302) && verb === "POST")) {
          verb = "GET";
          payload = undefined;
        }
        current = next;
        continue;
      }
      if (!res.ok) {
        const excerpt = await readExcerpt(res, maxErrorBody);
        throw new HttpError(
          verb,
          current.href,
          res.status,
          res.statusText,
          Object.fromEntries(res.headers),
          excerpt,
          parseRetryAfter(res.headers.get("retry-after"), clock.now()),
        );
      }
      let text: string;
      try {
        text = await res.text();
      } catch (cause) {
        // The connection dropped (or the attempt timed out) half way through the body.
        if (signal.aborted) throw signal.reason ?? cause;
        throw new HttpNetworkError(verb, current.href, { cause });
      }
      return {
        status: res.status,
        headers: res.headers,
        data: parseBody(verb, current.href, res, text, parseJson),
        url: current.href,
      };
    }
  }

  return {
    request,
    get: (path, o) => request("GET", path, o),
    post: (path, o) => request("POST", path, o),
    put: (path, o) => request("PUT", path, o),
    patch: (path, o) => request("PATCH", path, o),
    delete: (path, o) => request("DELETE", path, o),
    breakerFor: (host) => (options.breaker === false ? undefined : breakerFor(host)),
  };
}

/** Sets a header, refusing a name or value HTTP cannot carry (a newline, a NUL) with INVALID_ARGUMENT. */
function setHeader(headers: Headers, name: string, value: string): void {
  try {
    headers.set(name, value);
  } catch (cause) {
    throw new InvalidArgumentError(
      `header ${JSON.stringify(name)}: ${JSON.stringify(String(value).slice(0, 80))} is not a valid HTTP header`,
      "headers",
      { cause },
    );
  }
}

/** The client's headers, then the request's over them. */
function buildHeaders(...sources: Array<Record<string, string> | undefined>): Headers {
  const headers = new Headers();
  for (const source of sources) for (const [k, v] of Object.entries(source ?? {})) setHeader(headers, k, v);
  return headers;
}

function parseUrl(value: string, argument: string): URL {
  try {
    return new URL(value);
  } catch {
    throw new InvalidArgumentError(`${argument} ${JSON.stringify(value)} is not an absolute URL`, argument);
  }
}

function buildUrl(base: URL | undefined, path: string, query: HttpRequestOptions["query"]): URL {
  let url: URL;
  try {
    url = base
      ? new URL(path.replace(/^\//, ""), base.href.endsWith("/") ? base : `${base.href}/`)
      : new URL(path);
  } catch {
    throw new InvalidArgumentError(
      `cannot make a URL of ${JSON.stringify(path)}; give baseUrl or an absolute URL`,
      "path",
    );
  }
  for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
  return url;
}

/**
 * Why fetch refused to make a request at all, or undefined for a network failure. fetch fails a
 * connection with `TypeError("fetch failed")` and the system error as its cause; it refuses a
 * request it will never make (a method it forbids, such as TRACE) with another TypeError, and a
 * port it blocks (6000, 6667, ...: the fetch standard's "bad port") with the cause "bad port".
 */
function unsendable(e: unknown): string | undefined {
  if (!(e instanceof TypeError)) return undefined;
  if (e.message !== "fetch failed") return e.message;
  const cause = (e as { cause?: unknown }).cause;
  return cause instanceof Error && cause.message === "bad port"
    ? "its port is one fetch blocks (a bad port)"
    : undefined;
}

function parseBody(
  method: string,
  url: string,
  res: Response,
  text: string,
  parseJson: (text: string) => unknown,
): unknown {
  if (text === "") return undefined;
  const type = res.headers.get("content-type") ?? "";
  if (!/\bjson\b|\+json/i.test(type)) return text;
  try {
    return parseJson(text);
  } catch (cause) {
    throw new HttpBodyError(method, url, res.status, Object.fromEntries(res.headers), text.slice(0, 2048), {
      cause,
    });
  }
}

/** Reads at most `limit` bytes of the body, then drops the rest of the stream. */
async function readExcerpt(res: Response, limit: number): Promise<string> {
  if (!res.body) return "";
  const reader = res.body.getReader() as ReadableStreamDefaultReader<Uint8Array>;
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < limit) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.length;
    }
  } catch {
    // A body cut off half way still leaves us what we read.
  } finally {
    await reader.cancel().catch(() => undefined);
  }
  return Buffer.concat(chunks).subarray(0, limit).toString("utf8");
}
