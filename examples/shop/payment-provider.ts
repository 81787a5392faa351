/**
 * A fake payment provider, run as its own HTTP service next to the shop. It misbehaves on
 * purpose — 503s, rate limits (429 + Retry-After), answers slower than the caller's timeout
 * after charging — so the shop's resilient client, idempotency keys and breaker are exercised.
 * It dedupes charges by Idempotency-Key with Patchbay's own middleware, like a real provider.
 */
import { once } from "node:events";
import http from "node:http";
import type { AddressInfo } from "node:net";
import express from "express";
import { idempotencyKey, uuidv7, type SqlStore } from "patchbay";
import { sqlFor } from "./db.js";

/** Failure ratios that can change while the system runs (the load driver sets them). */
export interface Chaos {
  /** Share of payment requests that fail (503, 429 or a slow answer after charging). */
  paymentFailure: number;
  /** Share of e-mail sends that fail (and are retried). */
  emailFailure: number;
}

export interface ProviderOptions {
  store: SqlStore;
  chaos: Chaos;
  /** How long a "slow" answer takes, ms (longer than the shop's timeout). Default 3000. */
  slowMs?: number;
  port?: number;
}

export interface Provider {
  url: string;
  close(): Promise<void>;
}

export async function startPaymentProvider(options: ProviderOptions): Promise<Provider> {
  const { store } = options;
  const q = sqlFor(store);
  await store.query(
    `CREATE TABLE IF NOT EXISTS charges (id TEXT PRIMARY KEY, order_id TEXT NOT NULL, amount INTEGER NOT NULL,
       status TEXT NOT NULL, refunded_at BIGINT, created_at BIGINT NOT NULL)`,
  );
  // The charge carries its Idempotency-Key, unique: the middleware's record and the charge are
  // two writes, so a provider killed between them (charged, response not yet recorded) would
  // charge again when a retry takes the key over. The key on the charge makes that retry find it.
  await store.query(`ALTER TABLE charges ADD COLUMN idempotency_key TEXT`).catch(() => undefined);
  await store.query(`CREATE UNIQUE INDEX IF NOT EXISTS charges_idempotency_key ON charges (idempotency_key)`);
  // An order once refunded takes no new charge: a charge request still queued here when the shop
  // gave up on it and refunded (its client timed out long before) must not take money afterwards.
  await store.query(
    `CREATE TABLE IF NOT EXISTS refunded_orders (order_id TEXT PRIMARY KEY, refunded_at BIGINT NOT NULL)`,
  );
  const app = express();
  app.use(express.json());
  // Every mutation needs a key: a retry of a charge must never charge again.
  app.use(idempotencyKey({ store, required: true, lease: "30s" }));

  const misbehave = (res: express.Response): "slow" | "done" | undefined => {
    const ratio = options.chaos.paymentFailure;
    const roll = Math.random();
    if (roll >= ratio) return undefined;
    const kind = roll / ratio;
    if (kind < 0.4) {
      res.status(503).json({ error: "temporarily_unavailable" });
      return "done";
    }
    if (kind < 0.7) {
      res.status(429).set("retry-after", "1").json({ error: "rate_limited" });
      return "done";
    }
    return "slow";
  };

  app.post("/charges", (req, res, next) => {
    const { orderId, amount, card } = req.body as { orderId?: string; amount?: number; card?: string };
    if (typeof orderId !== "string" || typeof amount !== "number" || typeof card !== "string") {
      res.status(400).json({ error: "invalid_request" });
      return;
    }
    const outcome = misbehave(res);
    if (outcome === "done") return;
    if (card === "tok_declined") {
      res.status(402).json({ error: "card_declined" });
      return;
    }
    const key = req.get("idempotency-key") ?? "";
    store
      .query(
        q(
          `INSERT INTO charges (id, order_id, amount, status, created_at, idempotency_key)
           SELECT ?, ?, ?, 'succeeded', ?, ? WHERE NOT EXISTS (SELECT 1 FROM refunded_orders WHERE order_id = ?)
           ON CONFLICT (idempotency_key) DO NOTHING`,
        ),
        [`ch_${uuidv7()}`, orderId, amount, Date.now(), key, orderId],
      )
      .then(async () => {
        const [charge] = (
          await store.query<{ id: string }>(q(`SELECT id FROM charges WHERE idempotency_key = ?`), [key])
        ).rows;
        if (!charge) {
          res.status(409).json({ error: "order_refunded" });
          return;
        }
        // Charged, then the answer comes too late: the caller times out and retries with the same key.
        if (outcome === "slow") await new Promise((r) => setTimeout(r, options.slowMs ?? 3000));
        res.status(201).json({ id: charge.id, status: "succeeded", amount });
      })
      .catch(next);
  });

  // Refunds every succeeded charge of an order and closes it to new charges (idempotent:
  // refunding twice changes nothing).
  app.post("/refunds", (req, res, next) => {
    const { orderId } = req.body as { orderId?: string };
    if (typeof orderId !== "string") {
      res.status(400).json({ error: "invalid_request" });
      return;
    }
    if (misbehave(res) === "done") return;
    const now = Date.now();
    store
      .transaction(async (tx) => {
        await tx.query(
          q(
            `INSERT INTO refunded_orders (order_id, refunded_at) VALUES (?, ?) ON CONFLICT (order_id) DO NOTHING`,
          ),
          [orderId, now],
        );
        return tx.query(
          q(
            `UPDATE charges SET status = 'refunded', refunded_at = ? WHERE order_id = ? AND status = 'succeeded'`,
          ),
          [now, orderId],
        );
      })
      .then((r) => res.status(201).json({ orderId, refunded: r.rowCount }), next);
  });

  app.get("/charges", (_req, res, next) => {
    store
      .query("SELECT id, order_id, amount, status FROM charges ORDER BY created_at")
      .then((r) => res.json(r.rows), next);
  });

  const server = http.createServer(app);
  server.listen(options.port ?? 0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
