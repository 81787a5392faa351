/**
 * The webhook receiver under plain Node `http`, Express and Fastify, deduping through real
 * stores: signed requests run the handler once (its ctx.tx effect committed with the dedupe
 * record), duplicates are acknowledged without running it, forged / stale / unsigned ones are
 * refused with typed errors, a failing handler lets the sender retry.
 */
import { createHmac } from "node:crypto";
import { once } from "node:events";
import http from "node:http";
import type { AddressInfo } from "node:net";
import express from "express";
import Fastify from "fastify";
import { afterEach, beforeEach, describe, expect, inject, it } from "vitest";
import type { SqlStore } from "../src/store/sql-store.js";
import {
  generateSecret,
  signatureHeaders,
  webhookReceiver,
  webhookReceiverFastify,
  type WebhookReceiverOptions,
} from "../src/webhooks/index.js";
import { postgresDatabase, sqliteDatabase, type IsolatedDatabase } from "./support/stores.js";

const { postgres: pgService } = inject("services");

type Options = WebhookReceiverOptions<{ data: { n: number } }>;
type Server = { url: string; close(): Promise<void> };

async function listen(server: http.Server): Promise<Server> {
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/webhooks`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

const frameworks: Record<string, (options: Options) => Promise<Server>> = {
  "node http": (options) => listen(http.createServer(webhookReceiver(options))),
  express: (options) => {
    const app = express();
    app.post("/webhooks", webhookReceiver(options)); // before the app's JSON parser: the raw bytes are signed
    app.use(express.json());
    return listen(http.createServer(app));
  },
  "express (after express.raw)": (options) => {
    const app = express();
    app.post("/webhooks", express.raw({ type: "*/*" }), webhookReceiver(options));
    return listen(http.createServer(app));
  },
  fastify: async (options) => {
    const app = Fastify();
    await app.register(webhookReceiverFastify(options), { prefix: "/webhooks" });
    await app.listen({ port: 0, host: "127.0.0.1" });
    const { port } = app.server.address() as AddressInfo;
    return { url: `http://127.0.0.1:${port}/webhooks`, close: () => app.close() };
  },
};

const stores: Array<[string, () => IsolatedDatabase]> = [["SQLite", sqliteDatabase]];
if (pgService.reachable) stores.push(["PostgreSQL", () => postgresDatabase(pgService.url)]);

for (const [storeName, makeDb] of stores) {
  for (const [framework, serve] of Object.entries(frameworks)) {
    describe(`webhook receiver: ${framework} on ${storeName}`, () => {
      let db: IsolatedDatabase;
      let store: SqlStore;
      let server: Server;
      let calls: number;
      let failNext: boolean;
      const secret = generateSecret();
      const errors: unknown[] = [];

      const post = (body: string, headers: Record<string, string>) =>
        fetch(server.url, {
          method: "POST",
          body,
          headers: { "content-type": "application/json", ...headers },
        });
      const signed = (id: string, body: string, timestamp = Math.floor(Date.now() / 1000)) =>
        signatureHeaders(secret, { id, timestamp, body });
      const effects = async () =>
        (await store.query<{ id: string }>("SELECT id FROM effects ORDER BY id")).rows.map((r) => r.id);

      beforeEach(async () => {
        db = makeDb();
        store = db.make();
        await store.open();
        await store.query("CREATE TABLE effects (id TEXT NOT NULL)");
        calls = 0;
        failNext = false;
        errors.length = 0;
        server = await serve({
          secret,
          store,
          maxBodyBytes: 4096,
          onError: (e) => errors.push(e),
          handler: async (event, { tx }) => {
            calls++;
            await tx!.query(`INSERT INTO effects (id) VALUES (${db.p(1)})`, [
              `${event.id}:${event.payload.data.n}`,
            ]);
            if (failNext) {
              failNext = false;
              throw new Error("handler failed");
            }
          },
        });
      });
      afterEach(async () => {
        await server.close();
        await store.close();
        await db.cleanup();
      });

      it("runs the handler once per message id; a duplicate is acknowledged without running it", async () => {
        const body = JSON.stringify({ type: "order.paid", data: { n: 1 } });
        const headers = signed("msg_1", body);
        const first = await post(body, headers);
        expect(first.status).toBe(200);
        expect(await first.json()).toEqual({ ok: true });
        const again = await post(body, headers);
        expect(again.status).toBe(200);
        expect(await again.json()).toEqual({ ok: true, duplicate: true });
        expect(calls).toBe(1);
        expect(await effects()).toEqual(["msg_1:1"]);
      });

      it("concurrent copies of one message: the effect is applied exactly once", async () => {
        const body = JSON.stringify({ type: "order.paid", data: { n: 2 } });
        const headers = signed("msg_2", body);
        const statuses = await Promise.all(
          Array.from({ length: 6 }, () => post(body, headers).then((r) => r.status)),
        );
        expect(statuses.filter((s) => s === 200).length).toBeGreaterThanOrEqual(1);
        expect(statuses.every((s) => s === 200 || s === 409)).toBe(true);
        expect(await effects()).toEqual(["msg_2:2"]);
      });

      it("refuses forged, stale, future and unsigned requests with typed errors, running nothing", async () => {
        const body = JSON.stringify({ type: "order.paid", data: { n: 3 } });
        const now = Math.floor(Date.now() / 1000);
        const forged = signatureHeaders(generateSecret(), { id: "m", timestamp: now, body });
        const cases: Array<[Record<string, string>, string, number, string]> = [
          [forged, body, 401, "WEBHOOK_SIGNATURE_INVALID"],
          [signed("m", body), JSON.stringify(JSON.parse(body), null, 2), 401, "WEBHOOK_SIGNATURE_INVALID"],
          [signed("m", body, now - 600), body, 401, "WEBHOOK_TIMESTAMP_TOO_OLD"],
          [signed("m", body, now + 600), body, 401, "WEBHOOK_TIMESTAMP_TOO_NEW"],
          [{ "webhook-id": "m" }, body, 400, "WEBHOOK_HEADER_MISSING"],
        ];
        for (const [headers, sent, status, code] of cases) {
          const res = await post(sent, headers);
          expect(res.status, code).toBe(status);
          expect(((await res.json()) as { error: string }).error).toBe(code);
        }
        expect(calls).toBe(0);
        expect(await effects()).toEqual([]);
        expect(errors).toHaveLength(cases.length);
      });

      it("a failing handler answers 500 and leaves no trace, so the sender's retry runs it", async () => {
        const body = JSON.stringify({ type: "order.paid", data: { n: 4 } });
        failNext = true;
        expect((await post(body, signed("msg_4", body))).status).toBe(500);
        expect(await effects()).toEqual([]);
        expect((await post(body, signed("msg_4", body))).status).toBe(200);
        expect(calls).toBe(2);
        expect(await effects()).toEqual(["msg_4:4"]);
      });

      it("refuses a body over maxBodyBytes with 413", async () => {
        const body = JSON.stringify({ type: "big", data: { n: 5, pad: "x".repeat(5000) } });
        const res = await post(body, signed("msg_5", body));
        expect(res.status).toBe(413);
        expect(calls).toBe(0);
      });
    });
  }
}

describe("webhook receiver without a transaction", () => {
  it("holds the id while the handler runs (409 to a concurrent copy), releases it when the handler fails", async () => {
    const db = sqliteDatabase();
    const store = db.make();
    const secret = generateSecret();
    let calls = 0;
    let fail = true;
    const server = await listen(
      http.createServer(
        webhookReceiver({
          secret,
          store,
          transaction: false,
          handler: async () => {
            calls++;
            await new Promise((r) => setTimeout(r, 200));
            if (fail) {
              fail = false;
              throw new Error("downstream unavailable");
            }
          },
        }),
      ),
    );
    try {
      const body = JSON.stringify({ type: "t", data: { n: 1 } });
      const headers = signatureHeaders(secret, {
        id: "msg_nt",
        timestamp: Math.floor(Date.now() / 1000),
        body,
      });
      const post = () => fetch(server.url, { method: "POST", body, headers });
      const [first, second] = await Promise.all([post(), new Promise((r) => setTimeout(r, 50)).then(post)]);
      expect([first.status, second.status]).toEqual([500, 409]);
      expect(second.headers.get("retry-after")).toBe("5");
      expect((await post()).status).toBe(200); // released after the failure: the retry runs it
      expect(await (await post()).json()).toEqual({ ok: true, duplicate: true });
      expect(calls).toBe(2);
    } finally {
      await server.close();
      await store.close();
      await db.cleanup();
    }
  });
});

describe("webhook receiver: misuse", () => {
  it("behind express.json() it refuses to verify a re-parsed body and says why", async () => {
    const errors: unknown[] = [];
    const app = express();
    app.use(express.json());
    app.post("/webhooks", webhookReceiver({ secret: generateSecret(), handler: () => undefined }));
    app.use((e: unknown, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
      errors.push(e);
      res.status(500).end();
    });
    const server = await listen(http.createServer(app));
    try {
      const res = await fetch(server.url, {
        method: "POST",
        body: "{}",
        headers: { "content-type": "application/json" },
      });
      expect(res.status).toBe(500);
      expect(errors[0]).toMatchObject({ code: "INVALID_ARGUMENT" });
      expect(String((errors[0] as Error).message)).toMatch(/express\.raw/);
    } finally {
      await server.close();
    }
  });
});

describe("webhook receiver: GitHub and Stripe signatures", () => {
  let server: Server;
  afterEach(() => server.close());

  it("verifies X-Hub-Signature-256 and dedupes by X-GitHub-Delivery", async () => {
    const db = sqliteDatabase();
    const store = db.make();
    const seen: string[] = [];
    server = await listen(
      http.createServer(
        webhookReceiver<{ action: string }>({
          scheme: "github",
          secret: "gh-secret",
          store,
          handler: (event) => void seen.push(event.payload.action),
        }),
      ),
    );
    const body = JSON.stringify({ action: "opened" });
    const sig = `sha256=${createHmac("sha256", "gh-secret").update(body).digest("hex")}`;
    const send = (signature: string) =>
      fetch(server.url, {
        method: "POST",
        body,
        headers: { "x-hub-signature-256": signature, "x-github-delivery": "d-1", "x-github-event": "issues" },
      });
    expect((await send(sig)).status).toBe(200);
    expect((await send(sig)).status).toBe(200);
    expect((await send(sig.replace(/.$/, "0"))).status).toBe(401);
    expect(seen).toEqual(["opened"]);
    await store.close();
    await db.cleanup();
  });

  it("verifies Stripe-Signature and dedupes by the event id", async () => {
    const seen: string[] = [];
    server = await listen(
      http.createServer(
        webhookReceiver<{ type: string }>({
          scheme: "stripe",
          secret: "whsec_stripe",
          handler: (event) => void seen.push(`${event.id}:${event.payload.type}`),
        }),
      ),
    );
    const body = JSON.stringify({ id: "evt_9", type: "charge.succeeded" });
    const t = Math.floor(Date.now() / 1000);
    const v1 = createHmac("sha256", "whsec_stripe").update(`${t}.${body}`).digest("hex");
    const res = await fetch(server.url, {
      method: "POST",
      body,
      headers: { "stripe-signature": `t=${t},v1=${v1}` },
    });
    expect(res.status).toBe(200);
    const stale = createHmac("sha256", "whsec_stripe")
      .update(`${t - 900}.${body}`)
      .digest("hex");
    const old = await fetch(server.url, {
      method: "POST",
      body,
      headers: { "stripe-signature": `t=${t - 900},v1=${stale}` },
    });
    expect(old.status).toBe(401);
    expect(seen).toEqual(["evt_9:charge.succeeded"]);
  });
});
