/**
 * `@nats-io/transport-node` and `@nats-io/jetstream` (optional peers), imported when the
 * transport first connects, and the part of their API this adapter uses, declared here as
 * structural types: Patchbay's published types name no driver type. The loaders below check, at
 * our compile time, that the real modules fit these types.
 */
import { DriverMissingError, isPatchbayError } from "../../core/errors.js";
import { driverLoader } from "../load-driver.js";

/** Message headers (the whole interface: publish options take the driver's own). */
export interface MsgHdrs extends Iterable<[string, string[]]> {
  hasError: boolean;
  status: string;
  code: number;
  description: string;
  get(name: string): string;
  set(name: string, value: string): void;
  append(name: string, value: string): void;
  has(name: string): boolean;
  keys(): string[];
  values(name: string): string[];
  delete(name: string): void;
  last(name: string): string;
}

/** A message delivered by a JetStream consumer. */
export interface JsMsg {
  subject: string;
  data: Uint8Array;
  /** Its sequence in the stream. */
  seq: number;
  headers: MsgHdrs | undefined;
  /** `deliveryCount`: deliveries of this message to this consumer, this one included (kept by the server). */
  info: { deliveryCount: number; streamSequence: number };
  ack(): void;
  nak(millis?: number): void;
  working(): void;
  term(reason?: string): void;
}

/** The messages of one pull (`fetch`). */
export interface ConsumerMessages extends AsyncIterable<JsMsg> {
  stop(err?: Error): void;
}

export interface PullConsumer {
  fetch(opts: { max_messages: number; expires: number }): Promise<ConsumerMessages>;
}

export interface JetStreamClient {
  publish(
    subject: string,
    payload: Uint8Array,
    opts: { headers?: MsgHdrs; msgID?: string; timeout?: number },
  ): Promise<{ seq: number; duplicate: boolean }>;
  consumers: { get(stream: string, name: string): Promise<PullConsumer> };
}

export interface StreamInfo {
  config: { name: string; subjects?: string[] };
  state: { messages: number; bytes: number; consumer_count: number; subjects?: Record<string, number> };
}

export interface ConsumerInfo {
  name: string;
  config: { description?: string | undefined };
  num_pending: number;
  num_ack_pending: number;
  num_redelivered: number;
  num_waiting: number;
}

export interface StreamConfigLike {
  name: string;
  subjects: string[];
  retention: "limits" | "interest" | "workqueue";
  storage: "file" | "memory";
  duplicate_window: number;
  max_msgs_per_subject?: number;
  /** Nanoseconds. */
  max_age?: number;
}

export interface ConsumerConfigLike {
  durable_name: string;
  description?: string;
  ack_policy: "explicit";
  deliver_policy?: "new" | "all";
  ack_wait: number;
  max_deliver: number;
  max_ack_pending: number;
}

export interface JetStreamManager {
  streams: {
    info(name: string, opts?: { subjects_filter?: string }): Promise<StreamInfo>;
    add(config: StreamConfigLike): Promise<unknown>;
    delete(name: string): Promise<boolean>;
    /** The last message on a subject; null when there is none. */
    getMessage(stream: string, query: { last_by_subj: string }): Promise<{ data: Uint8Array } | null>;
    purge(stream: string, opts: { filter: string }): Promise<unknown>;
  };
  consumers: {
    info(stream: string, name: string): Promise<ConsumerInfo>;
    add(stream: string, config: ConsumerConfigLike): Promise<unknown>;
    update(stream: string, name: string, config: { description: string }): Promise<unknown>;
    list(stream: string): { next(): Promise<ConsumerInfo[]> };
  };
}

export interface NatsConnection {
  close(): Promise<void>;
  drain(): Promise<void>;
  status(): AsyncIterable<{ type: string }>;
}

export interface ConnectOptions {
  servers: string[];
  name: string;
  timeout: number;
  reconnect: boolean;
  maxReconnectAttempts: number;
  reconnectTimeWait: number;
  pingInterval: number;
  maxPingOut: number;
}

/** `@nats-io/transport-node`. */
export interface NatsModule {
  connect(opts: ConnectOptions): Promise<NatsConnection>;
  headers(): MsgHdrs;
}

/** `@nats-io/jetstream`. */
export interface JetstreamModule {
  jetstream(nc: NatsConnection, opts: { timeout: number }): JetStreamClient;
  jetstreamManager(nc: NatsConnection, opts: { timeout: number }): Promise<JetStreamManager>;
}

/** Imports `@nats-io/transport-node` once; `DRIVER_MISSING` with its install hint when absent. */
export const loadNats = driverLoader<NatsModule>({
  driver: "@nats-io/transport-node",
  range: ">= 3.0",
  neededBy: "the NATS JetStream transport (patchbay/nats)",
  load: () => import("@nats-io/transport-node"),
});

/** Imports `@nats-io/jetstream` once; `DRIVER_MISSING` with its install hint when absent. */
export const loadJetstream = driverLoader<JetstreamModule>({
  driver: "@nats-io/jetstream",
  range: ">= 3.0",
  neededBy: "the NATS JetStream transport (patchbay/nats)",
  load: () => import("@nats-io/jetstream"),
});

/** The command that installs what the transport needs: both packages, always together. */
export const NATS_INSTALL_HINT = "npm install @nats-io/transport-node @nats-io/jetstream";

/**
 * Both drivers, loaded together. When either is absent: `DRIVER_MISSING` naming the first absent
 * one (`driver`, in the order transport-node, jetstream, whatever import failed first) with a hint
 * that installs both, so one `npm install` suffices even when neither is there. Other load errors
 * pass unchanged.
 */
export async function loadNatsDrivers(
  loaders: { nats: () => Promise<NatsModule>; jetstream: () => Promise<JetstreamModule> } = {
    nats: loadNats,
    jetstream: loadJetstream,
  },
): Promise<[NatsModule, JetstreamModule]> {
  const [a, b] = await Promise.allSettled([loaders.nats(), loaders.jetstream()]);
  if (a.status === "fulfilled" && b.status === "fulfilled") return [a.value, b.value];
  const failures = [a, b].flatMap((r) => (r.status === "rejected" ? [r.reason as unknown] : []));
  const missing = failures.filter((e): e is DriverMissingError => isPatchbayError(e, "DRIVER_MISSING"));
  const first = missing[0];
  if (first === undefined) throw failures[0];
  throw new DriverMissingError(
    `the NATS JetStream transport (patchbay/nats) needs the packages "@nats-io/transport-node" and "@nats-io/jetstream" (>= 3.0); ` +
      `${missing.map((e) => `"${e.driver}"`).join(" and ")} could not be loaded: ${NATS_INSTALL_HINT}`,
    first.driver,
    NATS_INSTALL_HINT,
    { cause: first },
  );
}
