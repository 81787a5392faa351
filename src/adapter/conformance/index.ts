/**
 * `patchbay/adapter/conformance`: the suites an adapter runs against its real database or broker,
 * under vitest (the adapter author's dev dependency; an optional peer of Patchbay). One per
 * contract: Store, Transport, and the patterns a store's roles serve — the event bus (on a store
 * and a transport), sagas, webhooks and sync. Each `defineXConformance(harness)` declares vitest
 * `describe` blocks; the harness gives a fresh, isolated database (or transport) per test.
 */
export { defineStoreConformance, type ConformanceDatabase, type StoreHarness } from "./store.js";
export { defineTransportConformance, until, type TransportHarness } from "./transport.js";
export { defineBusConformance, type BusDatabase, type BusHarness } from "./bus.js";
export { defineSagaConformance, type SagaHarness } from "./saga.js";
export { defineWebhooksConformance, type WebhooksHarness } from "./webhooks.js";
export { startReceiver, type ReceivedRequest, type TestReceiver } from "./webhook-receiver.js";
export {
  defineSyncConformance,
  testRows,
  type StoredRow,
  type SyncDatabase,
  type SyncHarness,
  type TestRow,
} from "./sync.js";
