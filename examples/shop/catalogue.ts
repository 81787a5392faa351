/**
 * The shop's contract: its events, the consumer groups that read them, the transports they travel
 * on and the events its partner receives as webhooks. `patchbay contracts export --config
 * examples/shop/patchbay.config.ts --out examples/shop/asyncapi.json` writes it as AsyncAPI, the
 * published document kept beside it; test/shop-contracts.test.ts checks each change against that
 * document (as `patchbay contracts check --against examples/shop/asyncapi.json` would in CI).
 */
import { defineCatalogue } from "patchbay";
import {
  OrderCancelled,
  OrderConfirmed,
  OrderCreated,
  OrderPaid,
  shopEvents,
  UserRegistered,
} from "./events.js";

export const catalogue = defineCatalogue({
  title: "Patchbay shop",
  version: "1.0.0",
  description: "The reference shop: registrations, orders and their saga, payments, partner webhooks.",
  events: shopEvents,
  transports: { local: true, rabbitmq: { prefix: "shop" } },
  consumers: [
    { group: "order-saga", events: [OrderCreated], description: "starts the order saga, one per order" },
    { group: "welcome-email", events: [UserRegistered] },
    { group: "default-settings", events: [UserRegistered] },
    { group: "confirmation-email", events: [OrderConfirmed] },
  ],
  webhooks: [OrderPaid, OrderCancelled],
});
