/**
 * The resilient HTTP client against a real HTTP server on loopback that fails on command:
 * 5xx, 429 with Retry-After, hangs, connection resets, redirects.
 */
import { once } from "node:events";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { context, propagation, trace, TraceFlags } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { isPatchbayError } from "../src/core/errors.js";
import { httpClient } from "../src/http/client.js";

type Behaviour =
  | { kind: "status"; status: number; body?: string; headers?: Record<string, string> }
  | { kind: "hang" }
  | { kind: "reset" }
  | { kind: "cut"; body: string }
  | { kind: "redirect"; to: string };

interface Seen {
  method: string;
  url: string;
  at: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A server that plays a script of behaviours, then answers 200 with what it received. */
class ScriptedServer {
  script: Behaviour[] = [];
  seen: Seen[] = [];
  private server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      this.seen.push({
        method: req.method ?? "",
        url: req.url ?? "",
        at: Date.now(),
        headers: req.headers,
        body: Buffer.concat(chunks).toString(),
      });
      const next = this.script.shift();
      if (!next) {
        res
          .writeHead(200, { "content-type": "application/json" })
          .end(JSON.stringify({ ok: true, url: req.url }));
      } else if (next.kind === "status") {
        res.writeHead(next.status, next.headers).end(next.body ?? "");
      } else if (next.kind === "reset") {
        req.socket.destroy();
      } else if (next.kind === "cut") {
        // A 200 that promises more body than it sends, then drops the connection.
        res.writeHead(200, { "content-type": "application/json", "content-length": "1000" });
        res.write(next.body, () => setTimeout(() => req.socket.destroy(), 20));
      } else if (next.kind === "redirect") {
        res.writeHead(302, { location: next.to }).end();
      }
      // "hang": never answer.
    });
  });
  port = 0;
  async start() {
    this.server.listen(0, "127.0.0.1");
    await once(this.server, "listening");
    this.port = (this.server.address() as AddressInfo).port;
  }
  stop() {
    this.server.closeAllConnections();
    return new Promise<void>((r) => this.server.close(() => r()));
  }
  get url() {
    return `http://127.0.0.1:${this.port}`;
  }
}

const server = new ScriptedServer();
beforeAll(() => server.start());
afterAll(() => server.stop());
beforeEach(() => {
  server.script = [];
  server.seen = [];
});

const fast = { backoff: { delay: () => 10 } };
const codeOf = async (p: Promise<unknown>) =>
  p.then(
    () => "resolved",
    (e: unknown) => (isPatchbayError(e) ? e.code : String(e)),
  );

describe("httpClient against a real server", () => {
  it("retries a GET through 5xx answers and returns the final response", async () => {
    server.script = [
      { kind: "status", status: 503 },
      { kind: "status", status: 502 },
    ];
    const client = httpClient({ baseUrl: server.url, retry: { ...fast, maxAttempts: 3 } });
    const res = await client.get<{ ok: boolean }>("/things", { query: { page: 2 } });
    expect(res.data.ok).toBe(true);
    expect(res.attempts).toBe(3);
    expect(server.seen.map((s) => s.url)).toEqual(["/things?page=2", "/things?page=2", "/things?page=2"]);
  });

  it("never retries a POST without an Idempotency-Key: it may have taken effect", async () => {
    server.script = [{ kind: "status", status: 503, body: "x".repeat(100_000) }];
    const client = httpClient({ baseUrl: server.url, retry: fast, maxErrorBodyBytes: 512 });
    const error = await client.post("/charges", { json: { amount: 1 } }).catch((e: unknown) => e);
    expect(isPatchbayError(error, "HTTP_STATUS")).toBe(true);
    if (!isPatchbayError(error, "HTTP_STATUS")) return;
    expect(error.status).toBe(503);
    expect(error.retryable).toBe(true);
    expect(error.bodyExcerpt.length).toBeLessThanOrEqual(512);
    expect(server.seen).toHaveLength(1);
  });

  it("retries a POST with a generated Idempotency-Key, sending the same key on every attempt", async () => {
    server.script = [{ kind: "status", status: 500 }, { kind: "reset" }];
    const client = httpClient({ baseUrl: server.url, retry: { ...fast, maxAttempts: 3 } });
    const res = await client.post("/charges", { json: { amount: 1 }, idempotencyKey: true });
    expect(res.status).toBe(200);
    const keys = server.seen.map((s) => s.headers["idempotency-key"]);
    expect(keys).toHaveLength(3);
    expect(new Set(keys).size).toBe(1);
    expect(keys[0]).toMatch(/^[0-9a-f-]{36}$/);
    expect(server.seen.every((s) => s.body === '{"amount":1}')).toBe(true);
  });

  it("honours 429 Retry-After before the next attempt", async () => {
    server.script = [{ kind: "status", status: 429, headers: { "retry-after": "1" } }];
    const client = httpClient({ baseUrl: server.url, retry: fast });
    await client.get("/limited");
    expect(server.seen).toHaveLength(2);
    expect(server.seen[1]!.at - server.seen[0]!.at).toBeGreaterThanOrEqual(950);
  });

  /** Settles `p` within `ms`, or reports that the call was still waiting then. */
  const within = <T>(p: Promise<T>, ms: number) =>
    Promise.race([
      p.then(
        (value) => ({ settled: "resolved" as const, value }),
        (error: unknown) => ({ settled: "rejected" as const, error }),
      ),
      new Promise<{ settled: "still waiting" }>((resolve) =>
        setTimeout(() => resolve({ settled: "still waiting" }), ms).unref(),
      ),
    ]);

  it("a Retry-After that is neither delta-seconds nor an HTTP date is ignored, not read as a date decades away", async () => {
    for (const garbage of ["soon 2099", "Sat 2099", "-5", "1.5", "tomorrow 12"]) {
      server.seen = [];
      server.script = [{ kind: "status", status: 503, headers: { "retry-after": garbage } }];
      const client = httpClient({ baseUrl: server.url, retry: fast });
      const outcome = await within(client.get("/garbage"), 3_000);
      expect({ garbage, settled: outcome.settled }).toEqual({ garbage, settled: "resolved" });
      expect(server.seen).toHaveLength(2);
    }
  });

  it("a Retry-After far beyond maxRetryAfter gives up at once with the HttpError (its retryAfterMs), never hangs the call", async () => {
    const tenYears = String(10 * 365 * 24 * 3600);
    for (const value of [tenYears, "9".repeat(400), "Fri, 31 Dec 2100 23:59:59 GMT"]) {
      server.seen = [];
      server.script = [{ kind: "status", status: 503, headers: { "retry-after": value } }];
      const client = httpClient({ baseUrl: server.url, retry: fast }); // the default bound
      const outcome = await within(client.get("/later"), 3_000);
      expect(outcome.settled).toBe("rejected");
      const error = outcome.settled === "rejected" ? outcome.error : undefined;
      expect(isPatchbayError(error, "HTTP_STATUS") && error.retryAfterMs! > 3_600_000).toBe(true);
      expect(server.seen).toHaveLength(1);
    }
    // A bound of its own; within it the wait is honoured as before.
    server.seen = [];
    server.script = [{ kind: "status", status: 503, headers: { "retry-after": "2" } }];
    expect(await codeOf(httpClient({ baseUrl: server.url, retry: fast, maxRetryAfter: "1s" }).get("/"))).toBe(
      "HTTP_STATUS",
    );
    expect(server.seen).toHaveLength(1);
    server.script = [{ kind: "status", status: 503, headers: { "retry-after": "1" } }];
    await httpClient({ baseUrl: server.url, retry: fast, maxRetryAfter: "1s" }).get("/soon");
    expect(server.seen).toHaveLength(3);
  });

  it("a 2xx whose body is cut off mid-stream is a retryable HTTP_NETWORK error (a GET is retried), never a bare TypeError", async () => {
    server.script = [{ kind: "cut", body: '{"ok":' }];
    const client = httpClient({ baseUrl: server.url, retry: fast });
    const res = await client.get("/cut");
    expect(res).toMatchObject({ status: 200, attempts: 2, data: { ok: true } });
    // A POST without a key is not retried, but still fails typed.
    server.script = [{ kind: "cut", body: '{"ok":' }];
    expect(await codeOf(client.post("/cut", { json: {} }))).toBe("HTTP_NETWORK");
  });

  it("a 2xx that says JSON but is not is a typed HTTP_BODY_INVALID error carrying the excerpt, never a bare SyntaxError", async () => {
    server.script = [
      { kind: "status", status: 200, body: "<html>oops", headers: { "content-type": "application/json" } },
    ];
    const client = httpClient({ baseUrl: server.url, retry: fast });
    const error = await client.get("/html").catch((e: unknown) => e);
    expect(isPatchbayError(error, "HTTP_BODY_INVALID")).toBe(true);
    expect(error).toMatchObject({ status: 200, bodyExcerpt: "<html>oops", retryable: false });
    expect(server.seen).toHaveLength(1);
  });

  it("a request fetch can never make (a malformed or forbidden method, a blocked port) is INVALID_ARGUMENT at once, never retried as a network error", async () => {
    const client = httpClient({ baseUrl: server.url, retry: { ...fast, maxAttempts: 5 } });
    expect(await codeOf(client.request("GE T", "/x"))).toBe("INVALID_ARGUMENT");
    expect(await codeOf(client.request("TRACE", "/x"))).toBe("INVALID_ARGUMENT");
    expect(server.seen).toHaveLength(0);
    let calls = 0;
    const counted = httpClient({
      baseUrl: "http://127.0.0.1:6000",
      retry: { ...fast, maxAttempts: 5 },
      fetch: (...args: Parameters<typeof fetch>) => {
        calls++;
        return fetch(...args);
      },
    });
    const error = await counted.get("/x").catch((e: unknown) => e);
    expect(isPatchbayError(error, "INVALID_ARGUMENT")).toBe(true);
    expect((error as Error).message).toContain("bad port");
    expect(calls).toBe(1);
  });

  it("a header value or Idempotency-Key that HTTP cannot carry is INVALID_ARGUMENT before any request, never a bare TypeError", async () => {
    const client = httpClient({ baseUrl: server.url, retry: fast });
    for (const call of [
      () => client.post("/x", { json: {}, idempotencyKey: "key\nInjected: 1" }),
      () => client.get("/x", { headers: { "x-trace": "a\u0000b" } }),
      () => client.get("/x", { headers: { "bad name": "v" } }),
      () => httpClient({ baseUrl: server.url, headers: { "x-tenant": "a\r\nInjected: 1" } }).get("/x"),
    ]) {
      expect(await codeOf(call())).toBe("INVALID_ARGUMENT");
    }
    expect(server.seen).toHaveLength(0);
  });

  it("gives up at the attempt limit on a server that hangs, each attempt timing out on its own signal", async () => {
    server.script = [{ kind: "hang" }, { kind: "hang" }];
    const client = httpClient({ baseUrl: server.url, timeout: "150ms", retry: { ...fast, maxAttempts: 2 } });
    expect(await codeOf(client.get("/slow"))).toBe("TIMEOUT");
    expect(server.seen).toHaveLength(2);
  });

  it("reports a connection reset as a retryable HTTP_NETWORK error once retries are spent", async () => {
    server.script = [{ kind: "reset" }, { kind: "reset" }];
    const client = httpClient({ baseUrl: server.url, retry: { ...fast, maxAttempts: 2 } });
    const error = await client.get("/reset").catch((e: unknown) => e);
    expect(isPatchbayError(error, "HTTP_NETWORK") && error.retryable).toBe(true);
    expect(server.seen).toHaveLength(2);
  });

  it("a refused connection is retried too, then HTTP_NETWORK", async () => {
    // A port nothing listens on (port 1 would not do: fetch blocks it before connecting).
    const probe = http.createServer();
    probe.listen(0, "127.0.0.1");
    await once(probe, "listening");
    const { port } = probe.address() as AddressInfo;
    await new Promise((r) => probe.close(r));
    let calls = 0;
    const client = httpClient({
      baseUrl: `http://127.0.0.1:${port}`,
      fetch: (...args: Parameters<typeof fetch>) => {
        calls++;
        return fetch(...args);
      },
      retry: { ...fast, maxAttempts: 2 },
      breaker: false,
    });
    expect(await codeOf(client.get("/"))).toBe("HTTP_NETWORK");
    expect(calls).toBe(2);
  });

  it("does not retry a 404 and does not count it against the host's breaker", async () => {
    server.script = Array.from({ length: 6 }, () => ({ kind: "status" as const, status: 404 }));
    const client = httpClient({ baseUrl: server.url, retry: fast });
    for (let i = 0; i < 6; i++) expect(await codeOf(client.get("/missing"))).toBe("HTTP_STATUS");
    expect(server.seen).toHaveLength(6);
    expect(client.breakerFor(`127.0.0.1:${server.port}`)?.state).toBe("closed");
  });

  it("opens the host's circuit after consecutive failures and then fails fast without calling the server", async () => {
    server.script = Array.from({ length: 5 }, () => ({ kind: "status" as const, status: 503 }));
    const client = httpClient({ baseUrl: server.url, retry: false });
    for (let i = 0; i < 5; i++) expect(await codeOf(client.get("/down"))).toBe("HTTP_STATUS");
    expect(await codeOf(client.get("/down"))).toBe("CIRCUIT_OPEN");
    expect(server.seen).toHaveLength(5);
    // Another host has its own breaker.
    const other = httpClient({ baseUrl: `http://localhost:${server.port}`, retry: false });
    expect((await other.get("/up")).status).toBe(200);
  });

  it("follows a same-origin redirect and refuses a cross-origin one", async () => {
    server.script = [{ kind: "redirect", to: "/moved" }];
    const client = httpClient({ baseUrl: server.url, retry: false });
    const res = await client.get("/old");
    expect(res.url).toBe(`${server.url}/moved`);
    server.script = [{ kind: "redirect", to: `http://localhost:${server.port}/elsewhere` }];
    const error = await client.get("/old").catch((e: unknown) => e);
    expect(isPatchbayError(error, "HTTP_REDIRECT_REFUSED")).toBe(true);
    expect(server.seen.map((s) => s.url)).toEqual(["/old", "/moved", "/old"]);
  });

  it("an aborted call stops at once and is not retried", async () => {
    server.script = [{ kind: "hang" }];
    const client = httpClient({ baseUrl: server.url, retry: fast, timeout: "10s" });
    const controller = new AbortController();
    const call = client.get("/slow", { signal: controller.signal });
    await new Promise((r) => setTimeout(r, 50));
    controller.abort(new Error("user cancelled"));
    await expect(call).rejects.toThrow("user cancelled");
    expect(server.seen).toHaveLength(1);
  });

  it("injects the active span's traceparent", async () => {
    const manager = new AsyncLocalStorageContextManager().enable();
    context.setGlobalContextManager(manager);
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    try {
      const span = trace.wrapSpanContext({
        traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
        spanId: "00f067aa0ba902b7",
        traceFlags: TraceFlags.SAMPLED,
      });
      const client = httpClient({ baseUrl: server.url });
      await context.with(trace.setSpan(context.active(), span), () => client.get("/traced"));
      expect(server.seen[0]?.headers.traceparent).toBe(
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
      );
    } finally {
      propagation.disable();
      context.disable();
    }
  });
});
