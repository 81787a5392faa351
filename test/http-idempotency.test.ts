/**
 * The Idempotency-Key middleware under Express, Fastify and plain Node `http`, on real stores.
 * Two server instances with their own store objects (own pools) stand for two processes.
 */
import { once } from "node:events";
import http, { type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import express from "express";
import Fastify from "fastify";
import { afterEach, beforeEach, describe, expect, inject, it } from "vitest";
import { idempotencyKey, idempotencyKeyFastify } from "../src/http/index.js";
import { requestFingerprint, type IdempotencyKeyOptions } from "../src/http/idempotency.js";
import type { SqlStore } from "../src/store/sql-store.js";
import { createLogger } from "../src/core/logger.js";
import { FakeClock } from "../src/testing/fake-clock.js";
import { mysqlDatabase, postgresDatabase, sqliteDatabase, type IsolatedDatabase } from "./support/stores.js";

const { postgres: pgService, mysql: myService } = inject("services");

/** The application behind the middleware: counts executions, can be slowed down or made to fail. */
class Orders {
  executions = 0;
  delayMs = 0;
  failNext = false;
  rateLimitNext = false;
  /** The next execution ends without a response: the handler gives up and drops the connection. */
  dropNext = false;
  async create(body: unknown): Promise<{ status: number; body: unknown }> {
    if (this.rateLimitNext) {
      this.rateLimitNext = false;
      return { status: 429, body: { error: "slow down" } };
    }
    this.executions++;
    if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
    if (this.failNext) {
      this.failNext = false;
      return { status: 503, body: { error: "database hiccup" } };
    }
    if (this.dropNext) {
      this.dropNext = false;
      return { status: DROP, body: undefined };
    }
    return { status: 201, body: { id: `order-${this.executions}`, received: body } };
  }
}

/** A status that means: answer nothing, drop the connection. */
const DROP = -1;

type Options = Omit<IdempotencyKeyOptions, "store">;
type ServerFactory = (
  store: SqlStore,
  orders: Orders,
  options: Options,
) => Promise<{ url: string; close(): Promise<void> }>;

const clientOf = (headers: Record<string, string | string[] | undefined>) => {
  const v = headers["x-client"];
  return Array.isArray(v) ? v[0] : v;
};

async function listen(server: http.Server) {
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

const frameworks: Record<string, ServerFactory> = {
  express: (store, orders, options) => {
    const app = express();
    app.post(
      "/orders",
      express.json(),
      idempotencyKey({ store, ...options, client: (req) => clientOf(req.headers) }),
      (req, res, next) => {
        orders
          .create(req.body)
          .then(
            (r) =>
              r.status === DROP ? res.destroy() : res.status(r.status).location(`/orders/x`).json(r.body),
            next,
          );
      },
    );
    return listen(http.createServer(app));
  },
  fastify: async (store, orders, options) => {
    const app = Fastify();
    await app.register(idempotencyKeyFastify({ store, ...options, client: (req) => clientOf(req.headers) }));
    app.post("/orders", async (request, reply) => {
      const r = await orders.create(request.body);
      if (r.status === DROP) {
        reply.hijack();
        reply.raw.destroy();
        return reply;
      }
      return reply.code(r.status).header("location", "/orders/x").send(r.body);
    });
    await app.listen({ port: 0, host: "127.0.0.1" });
    const { port } = app.server.address() as AddressInfo;
    return { url: `http://127.0.0.1:${port}`, close: () => app.close() };
  },
  "node http": (store, orders, options) => {
    const mw = idempotencyKey({ store, ...options, client: (req) => clientOf(req.headers) });
    const handler = async (req: IncomingMessage & { body?: unknown }, res: ServerResponse) => {
      // The middleware leaves the raw body on req.body when it read it; otherwise read it here.
      let raw = req.body as Buffer | undefined;
      if (raw === undefined) {
        const chunks: Buffer[] = [];
        for await (const chunk of req) chunks.push(chunk as Buffer);
        raw = Buffer.concat(chunks);
      }
      const body = JSON.parse(raw.toString() || "null") as unknown;
      await orders.create(body).then(
        (r) =>
          r.status === DROP
            ? res.destroy()
            : res
                .writeHead(r.status, { "content-type": "application/json", location: "/orders/x" })
                .end(JSON.stringify(r.body)),
        () => res.writeHead(500).end(),
      );
    };
    return listen(
      http.createServer((req, res) => {
        mw(req, res, (err) => {
          if (err) res.writeHead(500).end((err as Error).message);
          else void handler(req, res);
        });
      }),
    );
  },
};

const databases: Array<[string, () => IsolatedDatabase]> = [["SQLite", sqliteDatabase]];
if (pgService.reachable) databases.unshift(["PostgreSQL", () => postgresDatabase(pgService.url)]);
else console.log(`Idempotency-Key on PostgreSQL skipped: unreachable at ${pgService.where}`);
if (myService.reachable) databases.push(["MariaDB", () => mysqlDatabase(myService.url)]);
else console.log(`Idempotency-Key on MariaDB skipped: unreachable at ${myService.where}`);

for (const [dbName, makeDb] of databases) {
  for (const [framework, serve] of Object.entries(frameworks)) {
    describe(`Idempotency-Key middleware: ${framework} on ${dbName}`, () => {
      let db: IsolatedDatabase;
      let orders: Orders;
      const cleanups: Array<() => Promise<void>> = [];
      const start = async (
        options: Options = {},
        storeOptions = {},
        wrap: (store: SqlStore) => SqlStore = (store) => store,
      ) => {
        const store = db.make(storeOptions);
        const server = await serve(wrap(store), orders, options);
        cleanups.push(async () => {
          await server.close();
          await store.close();
        });
        return server.url;
      };
      const post = (url: string, body: unknown, headers: Record<string, string> = {}) =>
        fetch(`${url}/orders`, {
          method: "POST",
          headers: { "content-type": "application/json", ...headers },
          body: JSON.stringify(body),
        });

      beforeEach(() => {
        db = makeDb();
        orders = new Orders();
      });
      afterEach(async () => {
        for (const c of cleanups.splice(0).reverse()) await c();
        await db.cleanup();
      });

      it("two concurrent identical requests on two servers run the handler once; the other gets 409 or the replay", async () => {
        const [a, b] = [await start(), await start()];
        orders.delayMs = 150;
        const headers = { "idempotency-key": "order-abc" };
        const responses = await Promise.all([
          post(a, { sku: "A", qty: 1 }, headers),
          post(b, { sku: "A", qty: 1 }, headers),
        ]);
        expect(orders.executions).toBe(1);
        const statuses = responses.map((r) => r.status);
        expect(statuses).toContain(201);
        expect(statuses.filter((s) => s !== 201 && s !== 409)).toEqual([]);
        const loser = responses.find(
          (r) => r.status === 409 || r.headers.get("idempotent-replayed") === "true",
        );
        expect(loser, "one response is a 409 or a replay").toBeDefined();
        if (loser?.status === 409) expect(loser.headers.get("retry-after")).toBe("1");
      });

      it("a retry after completion replays status, headers and body without running the handler", async () => {
        const url = await start();
        const first = await post(url, { sku: "A", qty: 2 }, { "idempotency-key": '"k-1"' });
        const firstBody = await first.text();
        const again = await post(url, { qty: 2, sku: "A" }, { "idempotency-key": "k-1" });
        expect(orders.executions).toBe(1);
        expect(again.status).toBe(first.status);
        expect(await again.text()).toBe(firstBody);
        expect(again.headers.get("location")).toBe("/orders/x");
        expect(again.headers.get("content-type")).toBe(first.headers.get("content-type"));
        expect(again.headers.get("idempotent-replayed")).toBe("true");
        expect(first.headers.get("idempotent-replayed")).toBeNull();
      });

      it("the same key with a different body is 422 and does not run the handler", async () => {
        const url = await start();
        await post(url, { qty: 1 }, { "idempotency-key": "k-2" });
        const reused = await post(url, { qty: 99 }, { "idempotency-key": "k-2" });
        expect(reused.status).toBe(422);
        expect(reused.headers.get("content-type")).toContain("application/problem+json");
        expect(orders.executions).toBe(1);
      });

      it("a required key that is missing is 400; an invalid key is 400; optional keys may be omitted", async () => {
        const strict = await start({ required: true });
        expect((await post(strict, { qty: 1 })).status).toBe(400);
        expect((await post(strict, { qty: 1 }, { "idempotency-key": "x".repeat(300) })).status).toBe(400);
        expect(orders.executions).toBe(0);
        const lax = await start();
        expect((await post(lax, { qty: 1 })).status).toBe(201);
        expect((await post(lax, { qty: 1 })).status).toBe(201);
        expect(orders.executions).toBe(2);
      });

      it("a 5xx releases the key so the retry runs the handler again", async () => {
        const url = await start();
        orders.failNext = true;
        expect((await post(url, { qty: 1 }, { "idempotency-key": "k-3" })).status).toBe(503);
        const retry = await post(url, { qty: 1 }, { "idempotency-key": "k-3" });
        expect(retry.status).toBe(201);
        expect(retry.headers.get("idempotent-replayed")).toBeNull();
        expect(orders.executions).toBe(2);
      });

      it("a 429 (not processed) releases the key too: the retry runs instead of replaying the 429", async () => {
        const url = await start();
        orders.rateLimitNext = true;
        expect((await post(url, { qty: 1 }, { "idempotency-key": "k-429" })).status).toBe(429);
        const retry = await post(url, { qty: 1 }, { "idempotency-key": "k-429" });
        expect(retry.status).toBe(201);
        expect(retry.headers.get("idempotent-replayed")).toBeNull();
      });

      it("keys are scoped per client: the same key from two clients runs twice", async () => {
        const url = await start();
        await post(url, { qty: 1 }, { "idempotency-key": "k-4", "x-client": "alice" });
        const bob = await post(url, { qty: 1 }, { "idempotency-key": "k-4", "x-client": "bob" });
        expect(bob.headers.get("idempotent-replayed")).toBeNull();
        expect(orders.executions).toBe(2);
      });

      it("a handler that outlives its lease keeps its key: a retry meanwhile gets 409, never a second run", async () => {
        // A 2 s lease renewed every ~0.7 s; the retry comes 1.5 leases in. (With a 1 s lease, one
        // renewal slower than 0.7 s on a loaded database let the lease run out: CI saw a 201.)
        const url = await start({ lease: "2s" });
        orders.delayMs = 5000;
        const headers = { "idempotency-key": "k-slow" };
        const first = post(url, { qty: 1 }, headers);
        await new Promise((r) => setTimeout(r, 3000));
        const during = await post(url, { qty: 1 }, headers);
        expect(during.status).toBe(409);
        expect(during.headers.get("retry-after")).toBe("1");
        const done = await first;
        expect(done.status).toBe(201);
        const body = await done.text();
        const after = await post(url, { qty: 1 }, headers);
        expect(after.headers.get("idempotent-replayed")).toBe("true");
        expect(await after.text()).toBe(body);
        expect(orders.executions).toBe(1);
      });

      it("storing the response fails (the database is down): the handler's own answer still goes out, never a 500 for work that was done", async () => {
        const failing = (store: SqlStore): SqlStore => {
          const idempotency = Object.create(store.idempotency) as SqlStore["idempotency"];
          idempotency.complete = () => Promise.reject(new Error("connection terminated"));
          return Object.assign(Object.create(store) as SqlStore, { idempotency });
        };
        const lines: string[] = [];
        const logger = createLogger({ level: "error", destination: { write: (l: string) => lines.push(l) } });
        const url = await start({ logger }, {}, failing);
        const res = await post(url, { qty: 1 }, { "idempotency-key": "k-unstored" });
        expect(res.status).toBe(201);
        expect(await res.json()).toMatchObject({ id: "order-1" });
        expect(orders.executions).toBe(1);
        // Fastify says so in the log; Node emits "idempotency-error" on the response.
        if (framework === "fastify") expect(lines.join("")).toContain("storing the response failed");
      });

      it.runIf(dbName === "SQLite" && framework === "node http")(
        "a holder whose renewals stop landing loses its key: the second run is reported at error level",
        async () => {
          const lines: string[] = [];
          const logger = createLogger({
            level: "error",
            destination: { write: (l: string) => lines.push(l) },
          });
          // A database that stalls the holder's renewals for 2 s (longer than the lease).
          const stalled = (store: SqlStore): SqlStore => {
            const idempotency = Object.create(store.idempotency) as SqlStore["idempotency"];
            idempotency.renew = async (...args) => {
              await new Promise((r) => setTimeout(r, 2000));
              return store.idempotency.renew(...args);
            };
            return Object.assign(Object.create(store) as SqlStore, { idempotency });
          };
          const url = await start({ lease: "1s", logger }, {}, stalled);
          orders.delayMs = 2500;
          const headers = { "idempotency-key": "k-stalled" };
          const first = post(url, { qty: 1 }, headers);
          await new Promise((r) => setTimeout(r, 1500));
          // The lease passed without a renewal landing: the retry takes the key over and runs.
          const retry = await post(url, { qty: 1 }, headers);
          expect(retry.status).toBe(201);
          await (await first).text();
          expect(orders.executions).toBe(2);
          const reported = lines.map((l) => JSON.parse(l) as { msg: string; key: string });
          expect(reported.filter((r) => r.msg.includes("lost its key"))).toHaveLength(1);
          expect(reported[0]?.key).toBe("k-stalled");
        },
      );

      it("a key whose holder is gone (no one renews it) is taken over once its lease has passed", async () => {
        const url = await start({ lease: "1s" });
        // A process that claimed the key and died: nothing renews its lease.
        const dead = db.make();
        await dead.open();
        cleanups.push(() => dead.close());
        const fingerprint = requestFingerprint("POST", "/orders", { qty: 1 });
        const claim = await dead.idempotency.claim({
          scope: "anonymous",
          key: "k-dead",
          fingerprint,
          lease: "1s",
        });
        expect(claim.outcome).toBe("claimed");
        expect((await post(url, { qty: 1 }, { "idempotency-key": "k-dead" })).status).toBe(409);
        await new Promise((r) => setTimeout(r, 1100));
        const taken = await post(url, { qty: 1 }, { "idempotency-key": "k-dead" });
        expect(taken.status).toBe(201);
        expect(taken.headers.get("idempotent-replayed")).toBeNull();
        expect(orders.executions).toBe(1);
      });

      it("a request that ends without a response (the handler dropped the connection) lets its key go once its lease passes: the retry runs, no 409 until the ttl", async () => {
        const url = await start({ lease: "1s" });
        orders.dropNext = true;
        const headers = { "idempotency-key": "k-dropped" };
        await expect(post(url, { qty: 1 }, headers)).rejects.toThrow();
        // The lease is no longer renewed: within it a retry is 409, after it the retry runs.
        let retry: Response | undefined;
        for (let i = 0; i < 80; i++) {
          retry = await post(url, { qty: 1 }, headers);
          if (retry.status !== 409) break;
          await new Promise((r) => setTimeout(r, 50));
        }
        expect(retry!.status).toBe(201);
        expect(orders.executions).toBe(2);
        // And it is stored now: a further retry replays it.
        const replay = await post(url, { qty: 1 }, headers);
        expect(replay.headers.get("idempotent-replayed")).toBe("true");
        expect(orders.executions).toBe(2);
      });

      it("a client that hangs up while its handler runs, then retries: 409 meanwhile, the replay after — the handler never runs twice", async () => {
        const url = await start();
        orders.delayMs = 600;
        const headers = { "idempotency-key": "k-hangup" };
        const gone = new AbortController();
        const first = fetch(`${url}/orders`, {
          method: "POST",
          headers: { "content-type": "application/json", ...headers },
          body: JSON.stringify({ qty: 1 }),
          signal: gone.signal,
        }).catch(() => undefined);
        await new Promise((r) => setTimeout(r, 150));
        gone.abort();
        await first;
        await new Promise((r) => setTimeout(r, 100));
        expect((await post(url, { qty: 1 }, headers)).status).toBe(409);
        let retry: Response | undefined;
        for (let i = 0; i < 60; i++) {
          retry = await post(url, { qty: 1 }, headers);
          if (retry.status !== 409) break;
          await new Promise((r) => setTimeout(r, 50));
        }
        expect(retry!.status).toBe(201);
        expect(retry!.headers.get("idempotent-replayed")).toBe("true");
        expect(orders.executions).toBe(1);
      });

      it.runIf(framework === "node http")(
        "a request body over maxRequestBytes is refused 413 as it streams in, never buffered whole; the handler does not run",
        async () => {
          const url = await start({ maxRequestBytes: 64 * 1024 });
          const big = JSON.stringify({ blob: "x".repeat(512 * 1024) });
          const res = await fetch(`${url}/orders`, {
            method: "POST",
            headers: { "content-type": "application/json", "idempotency-key": "k-big" },
            body: big,
          }).catch((e: unknown) => e);
          // The server may close the connection before the client finished sending.
          if (res instanceof Response) expect(res.status).toBe(413);
          expect(orders.executions).toBe(0);
          // A body within the limit goes through as before.
          expect((await post(url, { qty: 1 }, { "idempotency-key": "k-small" })).status).toBe(201);
        },
      );

      it("a stored response is replayed until its ttl, then the key runs afresh", async () => {
        const clock = new FakeClock(Date.UTC(2026, 0, 1));
        const url = await start({ ttl: "24h" }, { clock });
        await post(url, { qty: 1 }, { "idempotency-key": "k-5" });
        await clock.advance("23h");
        expect(
          (await post(url, { qty: 1 }, { "idempotency-key": "k-5" })).headers.get("idempotent-replayed"),
        ).toBe("true");
        await clock.advance("1h");
        expect(
          (await post(url, { qty: 1 }, { "idempotency-key": "k-5" })).headers.get("idempotent-replayed"),
        ).toBeNull();
        expect(orders.executions).toBe(2);
      });
    });
  }
}
