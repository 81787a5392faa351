/**
 * A partner's webhook receiver, run beside the shop: it verifies Standard Webhooks signatures,
 * dedupes by webhook-id through its own store, and records what it received. The shop sends it
 * `order.paid` and `order.cancelled` through Patchbay's outbound webhooks.
 */
import { once } from "node:events";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { verifyWebhook, webhookReceiver, type SqlStore } from "patchbay";
import { sqlFor } from "./db.js";

export interface Partner {
  url: string;
  /** The endpoint's signing secret (known once the shop created the endpoint). */
  setSecret(secret: string): void;
  /** What arrived: per webhook-id, the type, the order and how many times it was processed. */
  received(): Promise<Array<{ webhookId: string; type: string; orderId: string; n: number }>>;
  close(): Promise<void>;
}

export async function startPartner(options: { store: SqlStore; secret: string }): Promise<Partner> {
  const { store } = options;
  const q = sqlFor(store);
  await store.query(
    `CREATE TABLE IF NOT EXISTS received (webhook_id TEXT NOT NULL, type TEXT NOT NULL, order_id TEXT NOT NULL, at BIGINT NOT NULL)`,
  );
  let secret = options.secret;
  const receive = webhookReceiver<{ type: string; data: { orderId: string } }>({
    // Read per request: the secret is set after the shop creates the endpoint.
    verify: (headers, body) => verifyWebhook(secret, headers, body),
    store, // dedupe by webhook-id, and the insert below commits with the dedupe record
    handler: async (event, { tx }) => {
      await tx!.query(q(`INSERT INTO received (webhook_id, type, order_id, at) VALUES (?, ?, ?, ?)`), [
        event.id,
        event.payload.type,
        event.payload.data.orderId,
        Date.now(),
      ]);
    },
  });
  const server = http.createServer((req, res) => {
    if (req.method === "GET" && req.url === "/received") {
      store
        .query(
          `SELECT webhook_id, type, order_id, COUNT(*) AS n FROM received GROUP BY webhook_id, type, order_id`,
        )
        .then(
          (r) => res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(r.rows)),
          () => res.writeHead(500).end(),
        );
      return;
    }
    receive(req, res);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    setSecret: (value) => void (secret = value),
    async received() {
      const { rows } = await store.query<{
        webhook_id: string;
        type: string;
        order_id: string;
        n: number | string;
      }>(
        `SELECT webhook_id, type, order_id, COUNT(*) AS n FROM received GROUP BY webhook_id, type, order_id`,
      );
      return rows.map((r) => ({
        webhookId: r.webhook_id,
        type: r.type,
        orderId: r.order_id,
        n: Number(r.n),
      }));
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
