/**
 * Assembles the shop on one `createPatchbay`: the store (SQLite under .patchbay/ by default,
 * PostgreSQL when PATCHBAY_PG_URL is set), the bus, the order saga, the partner webhooks and the
 * warehouse sync as its parts — one `pb.start()`, one `pb.stop()` — plus the payment provider
 * and the HTTP API.
 */
import { mkdirSync } from "node:fs";
import {
  createLogger,
  createPatchbay,
  failureRate,
  httpClient,
  type Patchbay,
  type SagaRunner,
  type SqlStore,
} from "patchbay";
import { postgres } from "patchbay/postgres";
import { nats } from "patchbay/nats";
import { rabbitmq } from "patchbay/rabbitmq";
import { sqlite } from "patchbay/sqlite";
import { registerShopConsumers, startShopApi } from "./app.js";
import { createShopSchema, sqlFor } from "./db.js";
import { OrderCreated, shopEvents } from "./events.js";
import { defineOrderSaga } from "./order-saga.js";
import { startPaymentProvider, type Chaos } from "./payment-provider.js";
import { startPartner } from "./partner.js";
import { createWarehouse } from "./warehouse.js";

export const INITIAL_STOCK: Record<string, number> = {
  "sku-apple": 100_000,
  "sku-pear": 100_000,
  "sku-plum": 100_000,
  "sku-fig": 100_000,
};

export interface ShopOptions {
  /** Folder for the SQLite files. Default `.patchbay`. */
  dir?: string;
  pgUrl?: string | undefined;
  /** RabbitMQ for the bus (default: the store's own queue). */
  amqpUrl?: string | undefined;
  /** Names of the shop's broker objects. Default `shop`. */
  amqpPrefix?: string;
  /** NATS JetStream for the bus instead (default: the store's own queue). */
  natsUrl?: string | undefined;
  /** Names of the shop's JetStream streams. Default `shop`. */
  natsPrefix?: string;
  /** PostgreSQL schema for Patchbay's tables (the shop's live in the database's search path). */
  pgSchema?: string;
  port?: number;
  chaos?: Partial<Chaos>;
  /** Lease of claimed messages and sagas (how soon a crashed process's work is taken over). Default 30 s. */
  lease?: string;
}

export interface RunningShop {
  pb: Patchbay;
  sagas: SagaRunner;
  urls: { shop: string; payments: string; partner: string; console: string };
  stop(): Promise<void>;
}

export async function startShop(options: ShopOptions = {}): Promise<RunningShop> {
  const dir = options.dir ?? ".patchbay";
  mkdirSync(dir, { recursive: true });
  const chaos: Chaos = { paymentFailure: 0, emailFailure: 0, ...options.chaos };
  const store: SqlStore = options.pgUrl
    ? postgres({ url: options.pgUrl, schema: options.pgSchema ?? "patchbay" })
    : sqlite({ file: `${dir}/patchbay.db` }); // the CLI's default: `npx patchbay status` just works
  // How long work claimed by a process that died waits before another takes it over.
  const lease = options.lease ?? "30s";
  // One logger for the bus and the sagas: a saga step refused by an open breaker says so (warn).
  const logger = createLogger({ name: "shop" });
  const pb = createPatchbay({
    store,
    logger,
    events: shopEvents,
    source: "/shop",
    localTransport: { lease },
    sagas: { concurrency: 16, lease },
    ...(options.amqpUrl
      ? { transport: rabbitmq({ url: options.amqpUrl, prefix: options.amqpPrefix ?? "shop" }) }
      : options.natsUrl
        ? {
            // The ack wait is the lease: a crashed process's deliveries come back after it.
            transport: nats({ url: options.natsUrl, prefix: options.natsPrefix ?? "shop", ackWait: lease }),
          }
        : {}),
  });
  await store.open();
  await createShopSchema(store, INITIAL_STOCK);

  // The payment provider is another company's service: its own process in real life, its own store here.
  const providerStore = sqlite({ file: `${dir}/payment-provider.db` });
  const provider = await startPaymentProvider({ store: providerStore, chaos, slowMs: 3000 });
  const payments = httpClient({
    baseUrl: provider.url,
    timeout: "2s",
    retry: { maxAttempts: 3 },
    // Open on a failure rate, not a handful of consecutive errors: 20 % flakiness is not an outage.
    breaker: {
      strategy: failureRate({ threshold: 0.6, minimumCalls: 20, window: "10s" }),
      halfOpenAfter: "2s",
    },
  });

  // The circuit's state goes to the store, so `patchbay status` (another process) can show it.
  const breaker = payments.breakerFor(new URL(provider.url).host);
  breaker?.onStateChange(() => {
    void store.state.set("breaker/payments", breaker.toJSON()).catch(() => undefined);
  });
  await store.state.set("breaker/payments", breaker?.toJSON() ?? { state: "closed" });
  const sagas = pb.sagas;
  const orders = pb.saga(defineOrderSaga({ payments, q: sqlFor(store) }));
  // The saga starts in the consumer's transaction: exactly one saga per order, whatever the redeliveries.
  pb.subscribe(OrderCreated, { group: "order-saga", concurrency: 4 }, async (event, { tx }) => {
    await orders.start(event.data, { id: event.data.orderId, tx });
  });
  registerShopConsumers(pb, chaos);

  // Partner webhooks: a receiver on loopback (allowlisted: outbound webhooks refuse private
  // addresses by default) subscribed to order.paid and order.cancelled, one endpoint kept by id.
  const hooks = pb.webhooks({
    allow: ["127.0.0.0/8"],
    retry: { delays: ["0s", "1s", "2s", "5s", "10s", "30s", "1m"] },
  });
  const existing = await hooks.endpoints.get("partner").catch(() => undefined);
  const secret = existing ? (await hooks.endpoints.secrets("partner")).current : undefined;
  const partnerStore = sqlite({ file: `${dir}/partner.db` });
  const partner = await startPartner({ store: partnerStore, secret: secret ?? "" });
  if (existing) {
    await hooks.endpoints.update("partner", { url: `${partner.url}/hooks` });
  } else {
    const created = await hooks.endpoints.create({
      id: "partner",
      url: `${partner.url}/hooks`,
      events: ["order.paid", "order.cancelled"],
      description: "partner: paid and cancelled orders",
    });
    partner.setSecret(created.secret);
  }

  const warehouse = await createWarehouse({
    pb,
    pgUrl: options.pgUrl,
    shopFile: `${dir}/patchbay.db`,
    sqliteFile: `${dir}/warehouse.db`,
  });

  await pb.start(); // the bus, the order saga's workers, the webhooks worker, the warehouse schedule
  // The web console over the facade's parts: on loopback only actions need a token, and only when
  // PATCHBAY_CONSOLE_TOKEN is set.
  const consoleHandler = pb.console({
    ...(process.env.PATCHBAY_CONSOLE_TOKEN ? { token: process.env.PATCHBAY_CONSOLE_TOKEN } : {}),
    // The payments circuit can be reset from the console (its state change is saved as above).
    ...(breaker ? { breakers: { payments: breaker } } : {}),
  });
  const api = await startShopApi({
    pb,
    chaos,
    console: consoleHandler,
    ...(options.port === undefined ? {} : { port: options.port }),
    orderTimeline: (id) => sagas.get(id),
    report: async () => ({
      initialStock: INITIAL_STOCK,
      warehouse: await warehouse.compare(),
      partner: await partner.received(),
      charges: await fetch(`${provider.url}/charges`).then((r) => r.json()),
      sagas: Object.fromEntries(
        await Promise.all(
          (["running", "compensating", "completed", "compensated", "failed"] as const).map(
            async (status) => [status, await sagas.count({ status })] as const,
          ),
        ),
      ),
    }),
  });

  let stopping: Promise<void> | undefined;
  return {
    pb,
    sagas,
    urls: { shop: api.url, payments: provider.url, partner: partner.url, console: `${api.url}/console/` },
    stop() {
      stopping ??= (async () => {
        await api.close();
        await consoleHandler.close();
        await pb.stop({ timeout: "10s" }); // the warehouse, webhooks, sagas, then the bus; then the store
        await provider.close();
        await providerStore.close();
        await partner.close();
        await partnerStore.close();
      })();
      return stopping;
    },
  };
}
