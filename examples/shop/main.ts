/**
 * `npm start`: runs the shop on the embedded default (or PostgreSQL with PATCHBAY_PG_URL),
 * prints where it serves, and drains cleanly on Ctrl-C.
 */
import { writeFileSync } from "node:fs";
import { startShop } from "./shop.js";

const port = process.env.PORT ? Number(process.env.PORT) : 3000;
const shop = await startShop({
  pgUrl: process.env.PATCHBAY_PG_URL,
  amqpUrl: process.env.PATCHBAY_AMQP_URL,
  natsUrl: process.env.PATCHBAY_NATS_URL,
  ...(process.env.SHOP_NATS_PREFIX ? { natsPrefix: process.env.SHOP_NATS_PREFIX } : {}),
  ...(process.env.SHOP_AMQP_PREFIX ? { amqpPrefix: process.env.SHOP_AMQP_PREFIX } : {}),
  port,
  ...(process.env.SHOP_LEASE ? { lease: process.env.SHOP_LEASE } : {}),
});
writeFileSync(".patchbay/shop.json", JSON.stringify({ ...shop.urls, pid: process.pid }) + "\n");

const where =
  (process.env.PATCHBAY_PG_URL ? "PostgreSQL" : "embedded SQLite in .patchbay/") +
  (process.env.PATCHBAY_AMQP_URL
    ? ", events on RabbitMQ"
    : process.env.PATCHBAY_NATS_URL
      ? ", events on NATS JetStream"
      : "");
process.stdout.write(`
Patchbay shop running (${where}) on Node.js ${process.version}
  shop API          ${shop.urls.shop}
  payment provider  ${shop.urls.payments}
  partner webhooks  ${shop.urls.partner}/received
  console           ${shop.urls.console}
  metrics           ${shop.urls.shop}/metrics
  health            ${shop.urls.shop}/healthz  ${shop.urls.shop}/readyz

Try:
  curl -s -XPOST ${shop.urls.shop}/api/register -H 'content-type: application/json' \\
       -d '{"email":"ada@example.com","password":"correct horse","name":"Ada"}'
  curl -s -XPOST ${shop.urls.shop}/api/orders -H 'content-type: application/json' -H 'idempotency-key: first-order' \\
       -d '{"userId":"<userId>","items":[{"sku":"sku-apple","qty":2,"price":350}]}'
  curl -s ${shop.urls.shop}/api/orders/<orderId>
  npm run demo:load -- --orders 200 --payment-failure 0.2 --email-failure 0.1
  npx patchbay status

Ctrl-C stops it (in-flight work drains first).
`);

let signals = 0;
const shutdown = (signal: string) => {
  if (++signals > 1) {
    process.stderr.write(`${signal} again: exiting now\n`);
    process.exit(130);
  }
  process.stderr.write(`\n${signal}: draining…\n`);
  shop.stop().then(
    () => process.stderr.write("stopped cleanly\n"),
    (e: unknown) => {
      process.stderr.write(`stop failed: ${(e as Error).message}\n`);
      process.exitCode = 1;
    },
  );
};
process.on("SIGINT", () => shutdown("SIGINT"));
process.on("SIGTERM", () => shutdown("SIGTERM"));
