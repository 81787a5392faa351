/**
 * `changeCapture()`: runs a change stream (a streaming source such as `postgresChanges()`) into a
 * destination, with the sync pipeline's machinery — the same destinations, transform, schema,
 * drift policy, quarantine, lock and run records. Each batch (whole source transactions, in
 * commit order) is written with its position in one destination transaction, and the source is
 * told to acknowledge that position only after the commit.
 */
import type { StandardSchemaV1 } from "@standard-schema/spec";
import { systemClock, type Clock } from "../core/clock.js";
import type { Duration } from "../core/duration.js";
import { toMs } from "../core/duration.js";
import { InvalidArgumentError } from "../core/errors.js";
import { silentLogger, type Logger } from "../core/logger.js";
import type { SqlStore } from "../store/sql-store.js";
import type { SyncDestination, SyncSource } from "../sync/contracts.js";
import { runRestarting } from "./restart-loop.js";
import { pipeline, type Pipeline, type PipelineStatus } from "../sync/pipeline.js";
import type { RunOptions, SyncRunReport } from "../sync/run.js";
import type { DriftPolicy, Transform } from "../sync/transform.js";

/** Options of {@link changeCapture}. */
export interface ChangeCaptureOptions {
  /** Names the capture: its checkpoint, lock and run records (letters, digits, `_ . : -`). */
  name: string;
  /** Where the lock and run records live (the position is stored by the destination, with the rows). */
  store: SqlStore;
  /** A streaming source: `postgresChanges({ ... })`. */
  source: SyncSource;
  /** Any sync destination in `merge` mode (deletes remove rows), or an append-only one (NDJSON). */
  destination: SyncDestination;
  transform?: Transform;
  schema?: StandardSchemaV1;
  /** Columns added at the source: `"freeze"` (default) stops, `"evolve"` adds them, `"discard"` quarantines. */
  drift?: DriftPolicy;
  /** About how many changes per destination transaction (whole source transactions). Default 5000. */
  batchSize?: number;
  maxQuarantined?: number;
  lease?: Duration;
  /** After a retryable failure (the connection dropped), `start()` runs again after this. Default `"2s"`. */
  restartDelay?: Duration;
  clock?: Clock;
  logger?: Logger;
}

/** A change stream's server-side state (a PostgreSQL replication slot), for status and cleanup. */
export interface ChangeSlotStatus {
  slot: string;
  active: boolean;
  /** The position confirmed to the server (everything before it is stored at the destination). */
  confirmedLsn: string | null;
  /** WAL the server keeps for the slot, in bytes. */
  retainedBytes: number;
  /** How far the confirmed position is behind the server's WAL, in bytes. */
  lagBytes: number;
  walStatus: string | null;
}

/** What a change stream source may add to {@link SyncSource}: its slot. */
export interface ChangeSlotControl {
  slotStatus(): Promise<ChangeSlotStatus | undefined>;
  dropSlot(): Promise<boolean>;
}

const hasSlot = (source: SyncSource): source is SyncSource & ChangeSlotControl =>
  typeof (source as Partial<ChangeSlotControl>).slotStatus === "function" &&
  typeof (source as Partial<ChangeSlotControl>).dropSlot === "function";

/** A running change capture. */
export interface ChangeCapture {
  readonly name: string;
  readonly pipeline: Pipeline;
  /** Runs until `signal` aborts (then resolves `cancelled`) or it fails (rejects with the error). */
  run(options?: RunOptions): Promise<SyncRunReport>;
  /** Runs in the background, again after retryable failures, until `stop()` or a non-retryable error. */
  start(): void;
  /** Stops after the batch in flight commits. Safe to call twice. */
  stop(): Promise<void>;
  /** The non-retryable error that ended `start()`, if any. */
  readonly failure: unknown;
  /** The pipeline's status (position stored with the destination, lock, runs) and the slot's. */
  status(): Promise<PipelineStatus & { slot: ChangeSlotStatus | undefined }>;
  /** Drops the source's slot (refused while the capture runs: the server keeps an active slot). */
  dropSlot(): Promise<boolean>;
  /** Forgets the stored position: the next run copies the tables again (drop the slot first). */
  reset(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Captures changes into a destination, exactly once in effect.
 *
 * @example
 * const cdc = changeCapture({
 *   name: "orders_changes",
 *   store,
 *   source: postgresChanges({ url, slot: "pb_orders", publication: "pb_orders", tables: "public.orders" }),
 *   destination: postgresDestination({ url: warehouseUrl, table: "warehouse.orders", key: "id" }),
 * });
 * cdc.start();
 */
export function changeCapture(options: ChangeCaptureOptions): ChangeCapture {
  if (!options?.source?.capabilities?.streaming) {
    throw new InvalidArgumentError("source must be a change stream (postgresChanges)", "source");
  }
  const logger = (options.logger ?? silentLogger).child({ cdc: options.name });
  const restartMs = toMs(options.restartDelay ?? "2s", "restartDelay");
  const p = pipeline(options.name, {
    store: options.store,
    source: options.source,
    destination: options.destination,
    mode: "incremental",
    ...(options.transform ? { transform: options.transform } : {}),
    ...(options.schema ? { schema: options.schema } : {}),
    ...(options.drift ? { drift: options.drift } : {}),
    ...(options.batchSize !== undefined ? { batchSize: options.batchSize } : {}),
    ...(options.maxQuarantined !== undefined ? { maxQuarantined: options.maxQuarantined } : {}),
    ...(options.lease !== undefined ? { lease: options.lease } : {}),
    clock: options.clock ?? systemClock,
    logger,
  });
  let controller: AbortController | undefined;
  let loop: Promise<void> | undefined;
  let failure: unknown;

  const stop = async () => {
    controller?.abort();
    await loop;
    loop = undefined;
  };

  return {
    name: options.name,
    pipeline: p,
    get failure() {
      return failure;
    },
    run: (runOptions) => p.run(runOptions),
    start() {
      if (loop) return;
      const c = (controller = new AbortController());
      failure = undefined;
      loop = runRestarting((o) => p.run(o), {
        signal: c.signal,
        restartMs,
        logger,
        what: "patchbay cdc",
      }).then((e) => {
        failure = e;
      });
    },
    stop,
    async status() {
      const [status, slot] = await Promise.all([
        p.status(),
        hasSlot(options.source) ? options.source.slotStatus() : Promise.resolve(undefined),
      ]);
      return { ...status, slot };
    },
    async dropSlot() {
      if (!hasSlot(options.source)) return false;
      return options.source.dropSlot();
    },
    reset: () => p.reset(),
    async close() {
      await stop();
      await p.close();
    },
  };
}
