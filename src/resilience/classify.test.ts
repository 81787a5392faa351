import { describe, expect, it } from "vitest";
import { NonRetryableError, PatchbayError, SchemaValidationError } from "../core/errors.js";
import { BulkheadRejectedError, CircuitOpenError, TimeoutError } from "./errors.js";
import { isRetryableError, retryAfterMsOf, retryWait } from "./classify.js";

const withCode = (code: string, message = code) => Object.assign(new Error(message), { code });
const fetchFailed = (cause: unknown) => new TypeError("fetch failed", { cause });

describe("isRetryableError", () => {
  it.each([
    ["a retryable PatchbayError", new PatchbayError("STORE_UNAVAILABLE", "down", { retryable: true })],
    ["TIMEOUT", new TimeoutError(100)],
    ["BULKHEAD_FULL", new BulkheadRejectedError(1, 0)],
    ...[408, 425, 429, 500, 502, 503, 504].map((status) => [
      `status ${status}`,
      Object.assign(new Error("http"), { status }),
    ]),
    ["statusCode 503", Object.assign(new Error("http"), { statusCode: 503 })],
    ...[
      "ECONNRESET",
      "ECONNREFUSED",
      "ETIMEDOUT",
      "EPIPE",
      "EAI_AGAIN",
      "ENETUNREACH",
      "EHOSTUNREACH",
      "UND_ERR_SOCKET",
      "UND_ERR_CONNECT_TIMEOUT",
      "UND_ERR_HEADERS_TIMEOUT",
    ].map((code) => [`network ${code}`, withCode(code)]),
    ["undici fetch failed (cause ECONNRESET)", fetchFailed(withCode("ECONNRESET"))],
    ["undici fetch failed (cause UND_ERR_SOCKET)", fetchFailed(withCode("UND_ERR_SOCKET"))],
    [
      "fetch failed with an AggregateError of connect attempts",
      fetchFailed(new AggregateError([withCode("ECONNREFUSED"), withCode("ENETUNREACH")], "connect")),
    ],
    ["AbortSignal.timeout()'s TimeoutError", new DOMException("signal timed out", "TimeoutError")],
  ] as [string, unknown][])("retries %s", (_name, error) => {
    expect(isRetryableError(error)).toBe(true);
  });

  it.each([
    ["SCHEMA_INVALID", new SchemaValidationError("bad", "order.created", 1, [])],
    ["CIRCUIT_OPEN", new CircuitOpenError(1_000, "open")],
    ["NON_RETRYABLE", new NonRetryableError("stop")],
    ["a PatchbayError not marked retryable", new PatchbayError("X", "x")],
    ["a TypeError (programming error)", new TypeError("cannot read properties of undefined")],
    ["a ReferenceError", new ReferenceError("x is not defined")],
    ["a SyntaxError", new SyntaxError("Unexpected token")],
    ["a RangeError", new RangeError("Invalid array length")],
    ["fetch failed without a network cause", fetchFailed(new Error("invalid URL"))],
    ["an AbortError DOMException", new DOMException("aborted", "AbortError")],
    ["an AbortError-named Error", Object.assign(new Error("aborted"), { name: "AbortError" })],
    [
      "an AbortError even with a network-coded cause",
      Object.assign(fetchFailed(withCode("ECONNRESET")), { name: "AbortError" }),
    ],
    ["a string abort reason", "aborted"],
    ["status 400", Object.assign(new Error("bad request"), { status: 400 })],
    ["status 404", Object.assign(new Error("not found"), { status: 404 })],
    ["status 501", Object.assign(new Error("not implemented"), { status: 501 })],
    ["an unknown error code", withCode("ENOENT")],
    ["a plain Error", new Error("boom")],
    ["a string", "boom"],
    ["undefined", undefined],
    ["null", null],
  ] as [string, unknown][])("does not retry %s", (_name, error) => {
    expect(isRetryableError(error)).toBe(false);
  });

  it("follows a Patchbay error's own flag, not its cause", () => {
    const e = new PatchbayError("WRAPPED", "wrapped", { cause: withCode("ECONNRESET") });
    expect(isRetryableError(e)).toBe(false);
  });

  it("stops following a cyclic cause chain", () => {
    const a = new Error("a") as Error & { cause?: unknown };
    const b = new Error("b", { cause: a });
    a.cause = b;
    expect(isRetryableError(a)).toBe(false);
  });
});

describe("retryAfterMsOf", () => {
  it("reads a numeric retryAfterMs field", () => {
    expect(retryAfterMsOf(Object.assign(new Error("429"), { retryAfterMs: 7_000 }))).toBe(7_000);
    expect(retryAfterMsOf(new CircuitOpenError(250, "open"))).toBe(250);
    expect(retryAfterMsOf(Object.assign(new Error("past date"), { retryAfterMs: -5 }))).toBe(-5);
  });

  it("is undefined without a usable number", () => {
    expect(retryAfterMsOf(new Error("x"))).toBeUndefined();
    expect(retryAfterMsOf(Object.assign(new Error("x"), { retryAfterMs: "7" }))).toBeUndefined();
    expect(retryAfterMsOf(Object.assign(new Error("x"), { retryAfterMs: Number.NaN }))).toBeUndefined();
    expect(retryAfterMsOf(undefined)).toBeUndefined();
    expect(retryAfterMsOf("x")).toBeUndefined();
  });
});

describe("retryWait", () => {
  it("stretches the backoff to a longer hint and never lets a hint shorten it", () => {
    expect(retryWait(1_000, undefined)).toBe(1_000);
    expect(retryWait(1_000, 7_000)).toBe(7_000);
    // A half-open breaker's 0, a short Retry-After, a date in the past: the backoff stands.
    expect(retryWait(1_000, 0)).toBe(1_000);
    expect(retryWait(1_000, 300)).toBe(1_000);
    expect(retryWait(1_000, -5_000)).toBe(1_000);
  });

  it("passes an endless hint on for the caller to decide, and reads a broken backoff as 0", () => {
    expect(retryWait(1_000, Number.POSITIVE_INFINITY)).toBe(Number.POSITIVE_INFINITY);
    expect(retryWait(Number.NaN, undefined)).toBe(0);
    expect(retryWait(-3, 200)).toBe(200);
  });
});
