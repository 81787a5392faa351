/**
 * An HTTP server on loopback that answers with the faults you choose, for the resilient client and
 * webhooks: status codes (with `Retry-After`), delays, connection resets. A real socket, so it
 * tests what `fetch` really does; the fetch-native equivalent of the article's `nock` example.
 */
import { once } from "node:events";
import http from "node:http";
import type { AddressInfo, Socket } from "node:net";

/** One scripted answer. */
export interface HttpFault {
  /** Answer with this status (default 503 when no `reset`). */
  status?: number;
  /** `Retry-After` header: seconds, or an HTTP date. */
  retryAfter?: number | string;
  /** Wait this many real ms before answering (a slow upstream; pair with the client's timeout). */
  delayMs?: number;
  /** Destroy the connection instead of answering (ECONNRESET at the client). */
  reset?: boolean;
  /** Body of the answer (JSON). */
  body?: unknown;
}

/** A request the server received. */
export interface RecordedRequest {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** The fault it got, or `undefined` when the handler answered. */
  fault: HttpFault | undefined;
}

/** What answers when no fault is scripted. */
export type HttpFaultHandler = (request: RecordedRequest) => {
  status?: number;
  body?: unknown;
  headers?: Record<string, string>;
};

/** A running {@link httpFaultServer}. */
export interface HttpFaultServer {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  /** Every request so far, in order. */
  readonly requests: readonly RecordedRequest[];
  /** The next `n` requests (default 1) get `fault`. */
  failNext(n: number, fault?: HttpFault): HttpFaultServer;
  /** Each request gets `fault` with probability `p`, after the scripted ones. */
  failWithProbability(p: number, fault?: HttpFault, random?: () => number): HttpFaultServer;
  /** Scripted faults and probability off. */
  reset(): HttpFaultServer;
  close(): Promise<void>;
}

/**
 * Starts the server. Without a `handler`, requests that get no fault answer 200 `{"ok":true}`.
 *
 * @example
 * const upstream = await httpFaultServer();
 * upstream.failNext(2, { status: 429, retryAfter: 1 });
 * const client = httpClient({ baseUrl: upstream.url });  // retries after 1 s, then succeeds
 */
export async function httpFaultServer(handler?: HttpFaultHandler): Promise<HttpFaultServer> {
  const scripted: HttpFault[] = [];
  let chance: { p: number; fault: HttpFault; random: () => number } | undefined;
  const requests: RecordedRequest[] = [];
  const sockets = new Set<Socket>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const fault = scripted.shift() ?? (chance && chance.random() < chance.p ? chance.fault : undefined);
      const record: RecordedRequest = {
        method: req.method ?? "GET",
        path: req.url ?? "/",
        headers: req.headers,
        body: Buffer.concat(chunks).toString("utf8"),
        fault,
      };
      requests.push(record);
      const answer = () => {
        if (fault?.reset) {
          req.socket.destroy();
          return;
        }
        const out = fault
          ? { status: fault.status ?? 503, body: fault.body ?? { error: "fault injected" }, headers: {} }
          : (handler?.(record) ?? {});
        const headers: Record<string, string> = {
          "content-type": "application/json",
          ...("headers" in out ? out.headers : {}),
        };
        if (fault?.retryAfter !== undefined) headers["retry-after"] = String(fault.retryAfter);
        res.writeHead(out.status ?? 200, headers).end(JSON.stringify(out.body ?? { ok: true }));
      };
      if (fault?.delayMs) setTimeout(answer, fault.delayMs);
      else answer();
    });
  });
  server.on("connection", (s) => {
    sockets.add(s);
    s.once("close", () => sockets.delete(s));
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  const self: HttpFaultServer = {
    url: `http://127.0.0.1:${port}`,
    requests,
    failNext(n, fault = {}) {
      for (let i = 0; i < n; i++) scripted.push(fault);
      return self;
    },
    failWithProbability(p, fault = {}, random = Math.random) {
      chance = p > 0 ? { p, fault, random } : undefined;
      return self;
    },
    reset() {
      scripted.length = 0;
      chance = undefined;
      return self;
    },
    async close() {
      for (const s of sockets) s.destroy();
      server.close();
      await once(server, "close");
    },
  };
  return self;
}
