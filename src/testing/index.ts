/** Test helpers for Patchbay users and adapter authors (`patchbay/testing`). */
export { FakeClock } from "./fake-clock.js";
export { memoryTransport, type MemoryTransportOptions } from "./memory-transport.js";
export { createHarness, type ConsumedRecord, type Harness, type HarnessOptions } from "./harness.js";
export {
  createFault,
  FaultInjectedError,
  withFault,
  withStoreFaults,
  withTransportFaults,
  type Fault,
  type FaultOptions,
} from "./faults.js";
export {
  httpFaultServer,
  type HttpFault,
  type HttpFaultHandler,
  type HttpFaultServer,
  type RecordedRequest,
} from "./http-fault-server.js";
