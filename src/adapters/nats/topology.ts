/**
 * The JetStream objects of a prefix, made idempotently:
 * - the stream `<prefix>` on `<prefix>.ev.>` (published events, subject = `ev.` + type) and
 *   `<prefix>.to.>` (messages for one group: replays, retries), interest retention: a message
 *   stays until every group's consumer acked it;
 * - one durable pull consumer per group, named by its group token, reading the whole stream
 *   (nats-server 2.9 gives a consumer one filter subject; a group's patterns and its own
 *   `to.<group>` subject need several): the consumer matches patterns itself and acks at once
 *   what is not for it. The patterns live in the consumer's description, so every process of the
 *   group reads the same binding;
 * - the delay stream `<prefix>_delay` (`<prefix>.delay.>`, work queue) with one durable
 *   consumer `forwarder`: a retry or a delayed publish waits there, nak'ed with its remaining
 *   delay, and is published on to its subject when due;
 * - the parked stream `<prefix>_parked` (`<prefix>.parked.<group>`): messages whose dead letter
 *   the store refused;
 * - the suspects stream `<prefix>_suspects` (`<prefix>.suspect.<group>.<seq>`, the last value per
 *   subject, kept a day): how many times a redelivered message of the main stream (sequence
 *   `seq`) started running alone in its process (see consumer.ts).
 */
import type { JetStreamManager } from "./load.js";
import { NatsError } from "./errors.js";
import { groupToken } from "./options.js";

const NS = 1_000_000;
const DAY = 24 * 3600 * 1000;

export function topologyNames(prefix: string) {
  return {
    stream: prefix,
    delayStream: `${prefix}_delay`,
    parkedStream: `${prefix}_parked`,
    suspectsStream: `${prefix}_suspects`,
    /** Every stream of the prefix. */
    streams: [prefix, `${prefix}_delay`, `${prefix}_parked`, `${prefix}_suspects`],
    forwarder: "forwarder",
    typePrefix: `${prefix}.ev.`,
    event: (type: string) => `${prefix}.ev.${subjectTokens(type)}`,
    direct: (group: string) => `${prefix}.to.${groupToken(group)}`,
    delay: (group: string | undefined) =>
      `${prefix}.delay.${group === undefined ? "_all" : groupToken(group)}`,
    parked: (group: string) => `${prefix}.parked.${groupToken(group)}`,
    suspect: (group: string, seq: number) => `${prefix}.suspect.${groupToken(group)}.${seq}`,
    consumer: (group: string) => groupToken(group),
  };
}
export type TopologyNames = ReturnType<typeof topologyNames>;

const TOKEN = /^[A-Za-z0-9_-]+$/;

/** An event type as subject tokens: as it is when every segment is a plain name, else `_` (the type travels in a header anyway). */
function subjectTokens(type: string): string {
  const parts = type.split(".");
  return parts.length > 0 && parts.every((p) => TOKEN.test(p)) ? type : "_";
}

const isNotFound = (e: unknown) => {
  const code = (e as { code?: unknown })?.code;
  return code === 10059 || code === 10014;
};

/** Makes the stream unless it exists; a stream of that name with other subjects is a conflict. */
async function ensureStream(
  jsm: JetStreamManager,
  name: string,
  subjects: string[],
  retention: "interest" | "workqueue" | "limits",
  duplicateWindowMs: number,
  extra: { max_msgs_per_subject?: number; max_age?: number } = {},
): Promise<void> {
  try {
    const info = await jsm.streams.info(name);
    const have = info.config.subjects ?? [];
    if (!subjects.every((s) => have.includes(s))) {
      throw new NatsError(
        "NATS_TOPOLOGY_CONFLICT",
        `the JetStream stream ${name} exists with subjects ${have.join(", ")}, not ${subjects.join(", ")}`,
      );
    }
    return;
  } catch (e) {
    if (!isNotFound(e)) throw e;
  }
  try {
    await jsm.streams.add({
      name,
      subjects,
      retention,
      storage: "file",
      duplicate_window: duplicateWindowMs * NS,
      ...extra,
    });
  } catch (e) {
    // Made by another process meanwhile, the same way: fine.
    const info = await jsm.streams.info(name).catch(() => undefined);
    if (!info) throw e;
  }
}

export async function declareStreams(
  jsm: JetStreamManager,
  n: TopologyNames,
  prefix: string,
  duplicateWindowMs: number,
): Promise<void> {
  await ensureStream(jsm, n.stream, [`${prefix}.ev.>`, `${prefix}.to.>`], "interest", duplicateWindowMs);
  await ensureStream(jsm, n.delayStream, [`${prefix}.delay.>`], "workqueue", duplicateWindowMs);
  await ensureStream(jsm, n.parkedStream, [`${prefix}.parked.>`], "limits", duplicateWindowMs);
  await ensureStream(
    jsm,
    n.suspectsStream,
    [`${prefix}.suspect.>`],
    "limits",
    Math.min(duplicateWindowMs, DAY),
    {
      max_msgs_per_subject: 1,
      max_age: DAY * NS,
    },
  );
}

/** A group's binding as kept in its consumer's description. */
export interface Binding {
  patterns: string[];
}

const describe = (group: string, patterns: readonly string[]) =>
  JSON.stringify({ patchbay: 1, group, patterns });

/** The group and patterns a consumer's description names, if it is one of ours. */
export function describedGroup(
  description: string | undefined,
): { group: string; patterns: string[] } | undefined {
  try {
    const b = JSON.parse(description ?? "") as { patchbay?: unknown; group?: unknown };
    if (b.patchbay === 1 && typeof b.group === "string")
      return { group: b.group, ...readBinding(description) };
  } catch {
    // not ours
  }
  return undefined;
}

export function readBinding(description: string | undefined): Binding {
  try {
    const b = JSON.parse(description ?? "") as { patterns?: unknown };
    if (Array.isArray(b.patterns) && b.patterns.every((p) => typeof p === "string")) {
      return { patterns: b.patterns };
    }
  } catch {
    // not ours, or bound to nothing yet
  }
  return { patterns: [] };
}

/**
 * Makes the group's durable consumer unless it exists; with `patterns`, (re)writes its binding.
 * `max_deliver` stays unlimited: the transport caps deliveries itself (`deliveryLimit`) and turns
 * the last into a dead letter, where the server would only drop the message with an advisory.
 */
export async function declareGroup(
  jsm: JetStreamManager,
  n: TopologyNames,
  group: string,
  ackWaitMs: number,
  patterns?: readonly string[],
): Promise<void> {
  const name = n.consumer(group);
  let existing: { description?: string | undefined } | undefined;
  try {
    existing = (await jsm.consumers.info(n.stream, name)).config;
  } catch (e) {
    if (!isNotFound(e)) throw e;
  }
  if (!existing) {
    try {
      await jsm.consumers.add(n.stream, {
        durable_name: name,
        description: describe(group, patterns ?? []),
        ack_policy: "explicit",
        deliver_policy: "new",
        ack_wait: ackWaitMs * NS,
        max_deliver: -1,
        // No delayed nak ever happens on it (nats-server#6093 cannot stall it): this only
        // bounds the deliveries in flight across every process of the group.
        max_ack_pending: 20_000,
      });
      return;
    } catch (e) {
      existing = (await jsm.consumers.info(n.stream, name).catch(() => undefined))?.config;
      if (!existing) throw e;
    }
  }
  if (patterns && existing.description !== describe(group, patterns)) {
    await jsm.consumers.update(n.stream, name, { description: describe(group, patterns) });
  }
}

/** The delay stream's one consumer, shared by every process of the prefix. */
export async function declareForwarder(jsm: JetStreamManager, n: TopologyNames): Promise<void> {
  try {
    await jsm.consumers.info(n.delayStream, n.forwarder);
    return;
  } catch (e) {
    if (!isNotFound(e)) throw e;
  }
  try {
    await jsm.consumers.add(n.delayStream, {
      durable_name: n.forwarder,
      ack_policy: "explicit",
      ack_wait: 30 * 1000 * NS,
      max_deliver: -1,
      // Every waiting retry is a message nak'ed with a delay, which counts as ack pending
      // (nats-server#6093): unlimited here, so waiting retries never stall the forwarder.
      max_ack_pending: -1,
    });
  } catch (e) {
    if (!(await jsm.consumers.info(n.delayStream, n.forwarder).catch(() => undefined))) throw e;
  }
}
