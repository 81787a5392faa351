/**
 * `patchbay/nats`: the event bus's transport on NATS JetStream. Install `@nats-io/transport-node`
 * and `@nats-io/jetstream` (3.x) next to `patchbay`; nats-server 2.9 or later with JetStream.
 */
export { nats } from "./transport.js";
export type { NatsTransportOptions } from "./options.js";
export type { NatsInspection } from "./transport.js";
export { NatsError } from "./errors.js";
