/**
 * `patchbay/adapter/conformance`: the suites an adapter runs against its real database, under
 * vitest (the adapter author's dev dependency; an optional peer of Patchbay).
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
