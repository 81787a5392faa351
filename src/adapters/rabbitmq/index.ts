/**
 * `patchbay/rabbitmq`: the event bus's transport on RabbitMQ (via `amqplib`). Install `amqplib`
 * (>= 0.10) next to `patchbay`; RabbitMQ 3.10 or later.
 */
export { rabbitmq } from "./transport.js";
export type { RabbitmqTransportOptions } from "./options.js";
export { RabbitmqError } from "./errors.js";
