/**
 * A real HTTP receiver on loopback for webhook tests: records every request (raw body and
 * headers), answers from a script of statuses, can hold requests open, and can go down and come
 * back on the same port.
 */
import { once } from "node:events";
import http from "node:http";
import type { AddressInfo } from "node:net";

export interface ReceivedRequest {
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  at: number;
}

export interface TestReceiver {
  url: string;
  port: number;
  requests: ReceivedRequest[];
  /** Statuses to answer, in order; when empty, `fallback`. */
  script: number[];
  fallback: number;
  /** Extra response headers per status. */
  headersFor: (status: number) => Record<string, string>;
  /** The response body per status (default `answer <status>`). */
  bodyFor: (status: number) => string | Buffer;
  /** When set, requests wait for `release()` before being answered. */
  hold: boolean;
  /** Requests being processed right now, and the most ever at once. */
  active: number;
  maxActive: number;
  release(): void;
  down(): Promise<void>;
  up(): Promise<void>;
  close(): Promise<void>;
}

export async function startReceiver(port = 0): Promise<TestReceiver> {
  const waiting: Array<() => void> = [];
  const receiver: TestReceiver = {
    url: "",
    port: 0,
    requests: [],
    script: [],
    fallback: 200,
    headersFor: () => ({}),
    bodyFor: (status) => `answer ${status}`,
    hold: false,
    active: 0,
    maxActive: 0,
    release() {
      for (const w of waiting.splice(0)) w();
    },
    async down() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
    async up() {
      server.listen(receiver.port, "127.0.0.1");
      await once(server, "listening");
    },
    async close() {
      receiver.release();
      server.closeAllConnections();
      if (server.listening) await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      receiver.requests.push({ headers: req.headers, body: Buffer.concat(chunks), at: Date.now() });
      receiver.active++;
      receiver.maxActive = Math.max(receiver.maxActive, receiver.active);
      const answer = () => {
        receiver.active--;
        const status = receiver.script.shift() ?? receiver.fallback;
        res.writeHead(status, { "content-type": "text/plain", ...receiver.headersFor(status) });
        res.end(receiver.bodyFor(status));
      };
      if (receiver.hold) waiting.push(answer);
      else answer();
    });
  });
  server.listen(port, "127.0.0.1");
  await once(server, "listening");
  receiver.port = (server.address() as AddressInfo).port;
  receiver.url = `http://127.0.0.1:${receiver.port}/hooks`;
  return receiver;
}
