/** Test helpers for Patchbay users and adapter authors (`patchbay/testing`). */
export { FakeClock } from "./fake-clock.js";
export { memoryTransport, type MemoryTransportOptions } from "./memory-transport.js";
