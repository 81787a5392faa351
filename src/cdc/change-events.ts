/**
 * `changeEvents()`: publishes each change of a change stream (`postgresChanges()`) on the bus as
 * a CloudEvent. Each batch (whole source transactions, in commit order) is published through the
 * outbox in one store transaction that also stores the batch's position; the source acknowledges
 * that position (the slot may drop its WAL) only after that commit. So an event is published
 * exactly once per change: a crash before the commit publishes nothing and the slot replays the
 * batch; a crash after it resumes past the batch.
 */
import type { StandardSchemaV1 } from "@standard-schema/spec";
import type { Duration } from "../core/duration.js";
import { toMs } from "../core/duration.js";
import { InvalidArgumentError } from "../core/errors.js";
import { defineEvent, type EventDefinition } from "../core/events.js";
import { silentLogger, type Logger } from "../core/logger.js";
import type { BusTx, PublishEntry } from "../bus/bus.js";
import type { JsonValue, Row, SourceBatch, SourceCursor, SyncSource } from "../sync/contracts.js";
import { specialDouble } from "../sync/exact.js";
import { toJsonSafe } from "../sync/json.js";
import { runRestarting } from "./restart-loop.js";
import type { ChangeSlotControl, ChangeSlotStatus } from "./change-capture.js";

/** One change as a change stream delivers it, for destinations that want each (the bus). */
export interface CapturedChange {
  schema: string;
  table: string;
  /** A row copied by the initial snapshot comes as an `insert` (with `snapshot: true`). */
  op: "insert" | "update" | "delete";
  /** The row after the change (insert, update: unchanged TOAST columns absent), or its key (delete). */
  row: Row;
  /** The row's key columns. */
  key: Row;
  /** From the initial copy rather than the stream. */
  snapshot: boolean;
  /** Unique in the stream and the same on every read: `<commit end LSN>:<index in the transaction>`. */
  position: string;
}

/** What one change becomes on the bus (the default: `<schema>.<table>.<op>` with the row as data). */
export interface ChangeEventMapping {
  type: string;
  data: JsonValue;
  /** Ordering key. Default: the row's key, so the changes of one row keep their order. */
  key?: string;
  subject?: string;
}

/** Options of {@link changeEvents}. */
export interface ChangeEventsOptions {
  /** Names the stored position (letters, digits, `_ . : -`). */
  name: string;
  /** The bus (or `createPatchbay()`): its store keeps the position, its outbox the events. */
  bus: { transaction<R>(fn: (tx: BusTx) => Promise<R>): Promise<R> };
  /** A change stream: `postgresChanges({ ... })`. */
  source: SyncSource;
  /** Maps a change to an event; return `null` to publish nothing for it. */
  map?: (change: CapturedChange) => ChangeEventMapping | null;
  /** About how many changes per store transaction (whole source transactions). Default 1000. */
  batchSize?: number;
  /** After a retryable failure, `start()` reads again after this. Default `"2s"`. */
  restartDelay?: Duration;
  logger?: Logger;
}

/** A running change-to-event publisher. */
export interface ChangeEvents {
  readonly name: string;
  /** Publishes until `signal` aborts (resolves) or a failure (rejects). */
  run(options?: { signal?: AbortSignal }): Promise<void>;
  /** Runs in the background, again after retryable failures, until `stop()` or a non-retryable error. */
  start(): void;
  /** Stops after the batch in flight commits. Safe to call twice. */
  stop(): Promise<void>;
  /** The non-retryable error that ended `start()`, if any. */
  readonly failure: unknown;
  /** The stored position (the source's cursor of the last published batch). */
  position(): Promise<SourceCursor | undefined>;
  /** The stored position and the source's slot (its lag and retained WAL), for `patchbay cdc status`. */
  status(): Promise<{ name: string; position: SourceCursor | undefined; slot: ChangeSlotStatus | undefined }>;
  /** Drops the source's slot (the stored position becomes unusable). */
  dropSlot(): Promise<boolean>;
  /** Stops and closes the source. */
  close(): Promise<void>;
}

const NAME = /^[A-Za-z0-9_.:-]{1,100}$/;

const hasSlot = (source: SyncSource): source is SyncSource & ChangeSlotControl =>
  typeof (source as Partial<ChangeSlotControl>).slotStatus === "function" &&
  typeof (source as Partial<ChangeSlotControl>).dropSlot === "function";

/** Accepts any data: a change's row is what the table holds. */
const anyData: StandardSchemaV1<JsonValue, JsonValue> = {
  "~standard": { version: 1, vendor: "patchbay", validate: (value) => ({ value: value as JsonValue }) },
};

/**
 * A row as event data, as the NDJSON destination and quarantine write it: bigints as text, bytes
 * as `{ base64 }` (JSON.stringify would give Node's `{ type: "Buffer", data: [0, 1, ...] }`). A
 * double JSON has no number for (`NaN`, `Infinity`, `-Infinity`: null otherwise) is PostgreSQL's
 * text for it, as a numeric's `NaN` already is.
 */
const jsonRow = (row: Row): JsonValue =>
  toJsonSafe(Object.fromEntries(Object.entries(row).map(([k, v]) => [k, specialDouble(v) ?? v])));

/** The default mapping: type `<schema>.<table>.<op>`, the row (or the deleted key) as data. */
export const defaultChangeEvent = (change: CapturedChange): ChangeEventMapping => ({
  type: `${change.schema}.${change.table}.${change.op}`,
  data: jsonRow(change.row),
  key: JSON.stringify(Object.values(jsonRow(change.key) as Record<string, JsonValue>)),
});

/**
 * Publishes every change of a change stream on the bus, exactly once, in commit order.
 *
 * @example
 * const events = changeEvents({
 *   name: "orders_events",
 *   bus: pb,
 *   source: postgresChanges({ url, slot: "pb_orders_ev", publication: "pb_orders_ev", tables: "public.orders", snapshot: false }),
 * });
 * events.start(); // "public.orders.insert", "public.orders.update", "public.orders.delete"
 */
export function changeEvents(options: ChangeEventsOptions): ChangeEvents {
  if (!options?.source?.capabilities?.streaming) {
    throw new InvalidArgumentError("source must be a change stream (postgresChanges)", "source");
  }
  if (typeof options.name !== "string" || !NAME.test(options.name)) {
    throw new InvalidArgumentError("name must be 1-100 characters of letters, digits, _ . : -", "name");
  }
  const batchSize = options.batchSize ?? 1000;
  if (!Number.isSafeInteger(batchSize) || batchSize < 1)
    throw new InvalidArgumentError("batchSize must be a positive integer", "batchSize");
  const logger = (options.logger ?? silentLogger).child({ cdcEvents: options.name });
  const restartMs = toMs(options.restartDelay ?? "2s", "restartDelay");
  const stateKey = `patchbay.cdc-events.${options.name}`;
  const map = options.map ?? defaultChangeEvent;
  const definitions = new Map<string, EventDefinition<JsonValue, JsonValue>>();
  const definition = (type: string) => {
    let def = definitions.get(type);
    if (!def) definitions.set(type, (def = defineEvent(type, { version: 1, schema: anyData })));
    return def;
  };
  const source = options.source;
  let controller: AbortController | undefined;
  let loop: Promise<void> | undefined;
  let failure: unknown;

  const readPosition = () =>
    options.bus.transaction((tx) => tx.state.get<{ cursor: SourceCursor }>(stateKey));

  async function publishBatch(batch: SourceBatch, version: number): Promise<number> {
    const changes = (batch as SourceBatch & { changes?: CapturedChange[] }).changes ?? [];
    const entries: PublishEntry<JsonValue, JsonValue>[] = [];
    for (const change of changes) {
      const event = map(change);
      if (!event) continue;
      entries.push({
        event: definition(event.type),
        data: event.data,
        options: {
          // The same change always gets the same id, so consumers' inboxes dedupe a replay.
          id: `cdc:${options.name}:${change.position}`,
          ...(event.key !== undefined ? { key: event.key } : {}),
          ...(event.subject !== undefined ? { subject: event.subject } : {}),
        },
      });
    }
    return options.bus.transaction(async (tx) => {
      // The whole batch in one write (one multi-row insert, one wake-up), not a round trip per change.
      await tx.publishMany(entries);
      // Compare-and-set: a second process publishing the same capture fails here and rolls back.
      const entry = await tx.state.set(stateKey, { cursor: batch.cursor }, { expectedVersion: version });
      return entry.version;
    });
  }

  async function run(runOptions: { signal?: AbortSignal } = {}): Promise<void> {
    const signal = runOptions.signal ?? new AbortController().signal;
    const stored = await readPosition();
    let version = stored?.version ?? 0;
    for await (const batch of source.read({
      mode: "incremental",
      cursor: stored?.value.cursor,
      batchSize,
      signal,
    })) {
      version = await publishBatch(batch, version);
      // Only now, with the events and the position committed, may the slot let go of the WAL.
      await source.committed?.(batch.cursor);
    }
  }

  const stop = async () => {
    controller?.abort();
    await loop;
    loop = undefined;
  };

  return {
    name: options.name,
    get failure() {
      return failure;
    },
    run,
    start() {
      if (loop) return;
      const c = (controller = new AbortController());
      failure = undefined;
      loop = runRestarting(run, { signal: c.signal, restartMs, logger, what: "patchbay cdc events" }).then(
        (e) => {
          failure = e;
        },
      );
    },
    stop,
    async position() {
      return (await readPosition())?.value.cursor;
    },
    async status() {
      const [stored, slot] = await Promise.all([
        readPosition(),
        hasSlot(source) ? source.slotStatus() : Promise.resolve(undefined),
      ]);
      return { name: options.name, position: stored?.value.cursor, slot };
    },
    dropSlot: () => (hasSlot(source) ? source.dropSlot() : Promise.resolve(false)),
    async close() {
      await stop();
      await source.close();
    },
  };
}
