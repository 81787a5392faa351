/**
 * `bind(group, patterns)` must leave exactly these patterns bound, but AMQP 0-9-1 cannot list a
 * queue's bindings (only the management plugin can, and it may not be there). So each group
 * keeps a record of its patterns in the broker itself: a one-message queue
 * (`<prefix>.bindings.<group>`, `x-max-length` 1). Binding first records the union of the old
 * and new patterns, then binds and unbinds, then records the new set: a crash at any point
 * leaves a record that covers every pattern actually bound, so the next `bind` removes strays.
 */
import type { ConfirmChannel, GetMessage } from "./load.js";
import { PublishError } from "../../bus/errors.js";
import type { TopologyNames } from "./topology.js";

async function readRecord(ch: ConfirmChannel, queue: string) {
  const got: GetMessage | false = await ch.get(queue, { noAck: false });
  if (!got) return { patterns: [] as string[], message: undefined };
  let patterns: string[] = [];
  try {
    const parsed = JSON.parse(got.content.toString("utf8")) as { patterns?: unknown };
    if (Array.isArray(parsed.patterns)) patterns = parsed.patterns.filter((p) => typeof p === "string");
  } catch {
    // An unreadable record: treat as empty; the new record replaces it.
  }
  return { patterns, message: got };
}

/** Replaces the record with `next(old patterns)`; returns the old patterns. */
async function replaceRecord(
  ch: ConfirmChannel,
  queue: string,
  next: (old: readonly string[]) => readonly string[],
): Promise<readonly string[]> {
  const previous = await readRecord(ch, queue);
  const patterns = next(previous.patterns);
  await new Promise<void>((resolve, reject) => {
    ch.publish(
      "",
      queue,
      Buffer.from(JSON.stringify({ patterns })),
      { persistent: true, contentType: "application/json" },
      (err: unknown) =>
        err
          ? reject(new PublishError("RabbitMQ did not confirm the bindings record", { cause: err }))
          : resolve(),
    );
  });
  // Only now drop the old record: the queue's length limit counts ready messages only.
  if (previous.message) ch.ack(previous.message);
  return previous.patterns;
}

/** Makes `patterns` the exact set of bindings of `group`'s queue to the topic exchange. */
export async function applyBindings(
  ch: ConfirmChannel,
  n: TopologyNames,
  group: string,
  patterns: readonly string[],
): Promise<void> {
  const record = n.bindings(group);
  await ch.assertQueue(record, {
    durable: true,
    arguments: { "x-queue-type": "classic", "x-max-length": 1 },
  });
  const old = await replaceRecord(ch, record, (previous) => [...new Set([...previous, ...patterns])]);
  for (const p of patterns) await ch.bindQueue(n.group(group), n.exchange, p);
  for (const p of old) if (!patterns.includes(p)) await ch.unbindQueue(n.group(group), n.exchange, p);
  await replaceRecord(ch, record, () => patterns);
}
