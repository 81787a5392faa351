/**
 * `amqplib`, imported when the transport first connects, and the part of its API this adapter
 * uses, declared here as structural types under amqplib's own names: Patchbay's published types
 * name no driver type, so an app's strict `tsc` needs no `@types/amqplib`. The loader below
 * checks, at our compile time, that the real module fits these types.
 */
import { driverLoader } from "../load-driver.js";

/** A message as the broker delivers it (the parts Patchbay reads). */
export interface Message {
  content: Buffer;
  fields: { deliveryTag: number; redelivered: boolean; exchange: string; routingKey: string };
  properties: { headers?: Record<string, unknown> | undefined; messageId?: unknown; type?: unknown };
}

/** A message fetched with `basic.get`. */
export type GetMessage = Message;

/** A message delivered to a consumer. */
export type ConsumeMessage = Message;

/** The properties of a publish (amqplib's `Options.Publish`). */
export interface PublishOptions {
  persistent?: boolean;
  mandatory?: boolean;
  messageId?: string;
  type?: string;
  contentType?: string;
  headers?: Record<string, unknown>;
  expiration?: string | number;
}

/** A channel (amqplib's promise API). */
export interface Channel {
  close(): Promise<void>;
  assertQueue(
    queue: string,
    options?: { durable?: boolean; arguments?: Record<string, unknown> },
  ): Promise<unknown>;
  bindQueue(queue: string, source: string, pattern: string, args?: Record<string, unknown>): Promise<unknown>;
  unbindQueue(
    queue: string,
    source: string,
    pattern: string,
    args?: Record<string, unknown>,
  ): Promise<unknown>;
  assertExchange(
    exchange: string,
    type: string,
    options?: { durable?: boolean; alternateExchange?: string },
  ): Promise<unknown>;
  bindExchange(
    destination: string,
    source: string,
    pattern: string,
    args?: Record<string, unknown>,
  ): Promise<unknown>;
  publish(exchange: string, routingKey: string, content: Buffer, options?: PublishOptions): boolean;
  consume(
    queue: string,
    onMessage: (msg: ConsumeMessage | null) => void,
    options?: { noAck?: boolean },
  ): Promise<{ consumerTag: string }>;
  cancel(consumerTag: string): Promise<unknown>;
  get(queue: string, options?: { noAck?: boolean }): Promise<GetMessage | false>;
  ack(message: Message, allUpTo?: boolean): void;
  nack(message: Message, allUpTo?: boolean, requeue?: boolean): void;
  prefetch(count: number): Promise<unknown>;
  on(event: "error", listener: (err: unknown) => void): unknown;
  on(event: "close", listener: () => void): unknown;
}

/** A channel in confirm mode: each publish is confirmed (or not) through its callback. */
export interface ConfirmChannel extends Channel {
  publish(
    exchange: string,
    routingKey: string,
    content: Buffer,
    options?: PublishOptions,
    callback?: (err: unknown) => void,
  ): boolean;
  on(event: "error", listener: (err: unknown) => void): unknown;
  on(event: "close" | "drain", listener: () => void): unknown;
  on(event: "return", listener: (msg: Message) => void): unknown;
  off(event: "close" | "drain", listener: () => void): unknown;
}

/** A connection (amqplib's `ChannelModel`). */
export interface ChannelModel {
  close(): Promise<void>;
  createChannel(): Promise<Channel>;
  createConfirmChannel(): Promise<ConfirmChannel>;
  on(event: "error" | "blocked", listener: (reason: unknown) => void): unknown;
  on(event: "close" | "unblocked", listener: () => void): unknown;
}

/** The `amqplib` module. */
export interface Amqplib {
  connect(url: string, socketOptions?: Record<string, unknown>): Promise<ChannelModel>;
}

/**
 * Imports `amqplib` (once); `DRIVER_MISSING` with `npm install amqplib` when it is not installed.
 * Typed against `@types/amqplib` here: the compiler checks that amqplib fits {@link Amqplib}.
 */
export const loadAmqplib = driverLoader<Amqplib>({
  driver: "amqplib",
  range: ">= 0.10",
  neededBy: "the RabbitMQ transport (patchbay/rabbitmq)",
  load: async () => (await import("amqplib")).default,
});
