/**
 * `pipeline(name, options)`: a named data sync from a source to a destination, run on demand
 * (`run()`), on a cron schedule (`start()`/`stop()`), inspected (`status()`) and reset (`reset()`).
 */
import type { StandardSchemaV1 } from "@standard-schema/spec";
import { Cron } from "croner";
import { measure } from "../core/instruments.js";
import { systemClock, type Clock } from "../core/clock.js";
import { toMs, type Duration } from "../core/duration.js";
import { InvalidArgumentError } from "../core/errors.js";
import { createLifecycle, StoppedError, type Lifecycle, type StopOptions } from "../core/lifecycle.js";
import { isStandardSchema } from "../core/schema.js";
import { silentLogger, type Logger } from "../core/logger.js";
import { uuidv7 } from "../core/ids.js";
import type { SqlStore } from "../store/sql-store.js";
import type { JsonValue, QuarantinedRow, SyncDestination, SyncSource } from "./contracts.js";
import { errorInfo } from "./json.js";
import { acquireLease, isHeld, lockKey, type LeaseInfo } from "./lock.js";
import {
  executeRun,
  isExpected,
  type RunContext,
  type RunOptions,
  type SyncMode,
  type SyncRunReport,
} from "./run.js";
import { runRecords, type SyncRunRecord } from "./runs.js";
import type { DriftPolicy, Transform } from "./transform.js";

/** Options of {@link pipeline}. */
export interface PipelineOptions {
  /** Where locks and run records live (the destination keeps the checkpoint, with the rows). */
  store: SqlStore;
  source: SyncSource;
  destination: SyncDestination;
  /**
   * `"incremental"`: rows changed since the checkpoint (merge destination); `"full"`: every row
   * (a `replace` destination ends equal to the source, deletes included); `"append"`: only new
   * rows of an insert-only source (append destination).
   */
  mode: SyncMode;
  /** Row → row, rows, or nothing. A row that throws is quarantined. */
  transform?: Transform;
  /** A Standard Schema (zod, valibot, arktype) each output row must pass; failures are quarantined. */
  schema?: StandardSchemaV1;
  /** Columns the destination lacks: `"freeze"` (default) fails the run, `"evolve"` adds them, `"discard"` quarantines the rows. */
  drift?: DriftPolicy;
  /** Rows per batch (and per destination transaction). Default 5000. */
  batchSize?: number;
  /** A cron expression (croner syntax, e.g. `"0 2 * * *"`) for `start()`. */
  schedule?: string;
  /** Time zone of `schedule` (IANA name). Default the process's. */
  timezone?: string;
  /** Fail the run when more rows than this are quarantined in it. Default: no limit. */
  maxQuarantined?: number;
  /**
   * How long the pipeline lock is held without renewal (renewed every third of it), and a table
   * destination's claim without a committed batch (renewed with each). Default `"60s"`.
   */
  lease?: Duration;
  /** How long `stop()` waits for the batch in flight when it is given no `timeout`. Default `"30s"`. */
  stopTimeout?: Duration;
  clock?: Clock;
  logger?: Logger;
}

/** What {@link Pipeline.status} reports. */
export interface PipelineStatus {
  name: string;
  mode: SyncMode;
  source: string;
  destination: string;
  schedule: string | undefined;
  /** When the schedule fires next (after `start()`). */
  nextRunAt: Date | undefined;
  /** A run holds the lock (here or in another process). */
  running: boolean;
  lock: LeaseInfo | undefined;
  /** The checkpoint stored with the destination. */
  checkpoint: JsonValue | undefined;
  /** The newest runs, newest first. */
  runs: SyncRunRecord[];
}

/** A named data sync. */
export interface Pipeline extends Lifecycle {
  readonly name: string;
  readonly mode: SyncMode;
  /** The store holding its lock and run records (not closed by `close()`). */
  readonly store: SqlStore;
  /** Runs once now: resolves with the run record (`succeeded`/`cancelled`), rejects with the error when it failed. */
  run(options?: RunOptions): Promise<SyncRunReport>;
  /**
   * Starts the schedule. Each tick runs once; a tick while another run holds the lock is skipped.
   * A no-op when started; `INVALID_ARGUMENT` without a schedule; `STOPPED` after `stop()`.
   */
  start(): Promise<void>;
  /**
   * Stops the schedule and the run in progress after its current batch commits, waiting up to
   * `timeout` (default the `stopTimeout` option). Safe twice. `run()` still works after it.
   */
  stop(options?: StopOptions): Promise<void>;
  status(options?: { runs?: number }): Promise<PipelineStatus>;
  /**
   * Its quarantined rows, newest first (`limit`, default 50; `before`: a row's id, for the next
   * page), or `undefined` when its destination cannot list them (a file destination: read
   * `<path>.quarantine.ndjson`).
   */
  quarantined(options?: { limit?: number; before?: string }): Promise<QuarantinedRow[] | undefined>;
  /** Forgets the checkpoint: the next run reads from the start. Refused with `SYNC_LOCKED` while a run holds the lock. */
  reset(): Promise<void>;
  /** `stop()`, then closes the source and the destination. */
  close(): Promise<void>;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/;
const MODES: readonly SyncMode[] = ["full", "incremental", "append"];

function validate(name: string, o: PipelineOptions): void {
  if (typeof name !== "string" || !NAME.test(name)) {
    throw new InvalidArgumentError(
      "pipeline name must be 1-128 characters of letters, digits, _ . : - (starting with a letter or digit)",
      "name",
    );
  }
  if (!o || typeof o !== "object") throw new InvalidArgumentError("options are required", "options");
  for (const k of ["store", "source", "destination"] as const) {
    if (!o[k]) throw new InvalidArgumentError(`options.${k} is required`, `options.${k}`);
  }
  if (!MODES.includes(o.mode))
    throw new InvalidArgumentError(`mode must be one of ${MODES.join(", ")}`, "options.mode");
  const write = o.destination.write;
  if (o.mode !== "full" && write === "replace") {
    throw new InvalidArgumentError(
      `write "replace" needs mode "full" (it replaces the table with a full read)`,
      "options.mode",
    );
  }
  const readMode = o.mode === "full" ? "full" : "incremental";
  if (!o.source.capabilities.modes.includes(readMode)) {
    throw new InvalidArgumentError(
      `${o.source.description} cannot be read in ${readMode} mode (does it have cursor columns?)`,
      "options.mode",
    );
  }
  if (
    o.destination.key.length === 0 &&
    (write === "merge" || (write === "replace" && o.destination.capabilities.columns))
  ) {
    throw new InvalidArgumentError(`write "${write}" needs key columns`, "options.destination");
  }
  if (o.schema !== undefined && !isStandardSchema(o.schema)) {
    throw new InvalidArgumentError(
      "schema must be a Standard Schema (zod, valibot, arktype, ...)",
      "options.schema",
    );
  }
  if (o.drift !== undefined && !["evolve", "freeze", "discard"].includes(o.drift)) {
    throw new InvalidArgumentError(`drift must be "evolve", "freeze" or "discard"`, "options.drift");
  }
  if (
    o.batchSize !== undefined &&
    (!Number.isInteger(o.batchSize) || o.batchSize < 1 || o.batchSize > 1_000_000)
  ) {
    throw new InvalidArgumentError("batchSize must be an integer from 1 to 1000000", "options.batchSize");
  }
  if (o.maxQuarantined !== undefined && (!Number.isInteger(o.maxQuarantined) || o.maxQuarantined < 0)) {
    throw new InvalidArgumentError("maxQuarantined must be an integer >= 0", "options.maxQuarantined");
  }
  if (o.transform !== undefined && typeof o.transform !== "function") {
    throw new InvalidArgumentError("transform must be a function", "options.transform");
  }
}

/**
 * A data sync pipeline.
 *
 * @example
 * const orders = pipeline("orders", {
 *   store,
 *   source: postgresSource({ url, table: "public.orders", cursor: "updated_at", key: "id", lookback: "5m" }),
 *   destination: postgresDestination({ url: warehouseUrl, table: "warehouse.orders", key: "id", version: "updated_at" }),
 *   mode: "incremental",
 *   schedule: "0 2 * * *",
 * });
 * const report = await orders.run({ onProgress: (p) => console.log(p.rowsRead) });
 */
export function pipeline(name: string, options: PipelineOptions): Pipeline {
  validate(name, options);
  const clock = options.clock ?? systemClock;
  const logger = (options.logger ?? silentLogger).child({ pipeline: name });
  const leaseMs = toMs(options.lease ?? "60s", "lease");
  if (leaseMs < 1000) throw new InvalidArgumentError("lease must be at least 1s", "options.lease");
  const stopTimeout = options.stopTimeout ?? "30s";
  toMs(stopTimeout, "stopTimeout"); // refused now, not at stop()
  if (options.schedule !== undefined) {
    try {
      new Cron(options.schedule, {
        paused: true,
        ...(options.timezone ? { timezone: options.timezone } : {}),
      }).stop();
    } catch (e) {
      throw new InvalidArgumentError(
        `schedule ${JSON.stringify(options.schedule)} is not a cron expression: ${(e as Error).message}`,
        "options.schedule",
        { cause: e },
      );
    }
  }
  const ctx: RunContext = {
    name,
    store: options.store,
    source: options.source,
    destination: options.destination,
    mode: options.mode,
    transform: options.transform,
    schema: options.schema,
    drift: options.drift ?? "freeze",
    batchSize: options.batchSize ?? 5000,
    maxQuarantined: options.maxQuarantined ?? Number.POSITIVE_INFINITY,
    leaseMs,
    clock,
    logger,
    runs: runRecords(options.store),
  };
  const running = new Set<{ controller: AbortController; done: Promise<unknown> }>();
  let cron: Cron | undefined;

  const run = (runOptions: RunOptions = {}): Promise<SyncRunReport> => {
    const controller = new AbortController();
    const outer = runOptions.signal;
    const forward = () => controller.abort(outer?.reason);
    if (outer?.aborted) forward();
    outer?.addEventListener("abort", forward, { once: true });
    const done = executeRun(ctx, { ...runOptions, signal: controller.signal }).finally(() => {
      outer?.removeEventListener("abort", forward);
      running.delete(entry);
    });
    const entry = { controller, done };
    running.add(entry);
    return done;
  };

  const withDestination = async <T>(
    fn: (session: Awaited<ReturnType<SyncDestination["open"]>>) => Promise<T>,
  ) => {
    await options.store.open();
    const session = await options.destination.open({
      pipeline: name,
      runId: uuidv7(clock),
      state: options.store.state,
      logger,
    });
    try {
      return await fn(session);
    } finally {
      await session.close();
    }
  };

  const life = createLifecycle("pipeline", {
    start() {
      if (options.schedule === undefined) {
        throw new InvalidArgumentError(
          `pipeline ${JSON.stringify(name)} has no schedule to start`,
          "options.schedule",
        );
      }
      cron = new Cron(
        options.schedule,
        {
          protect: true,
          name: `patchbay-sync-${name}-${uuidv7(clock)}`,
          ...(options.timezone ? { timezone: options.timezone } : {}),
        },
        async () => {
          try {
            await run();
          } catch (e) {
            if (isExpected(e)) logger.info({ error: errorInfo(e) }, "patchbay sync: scheduled run skipped");
            else logger.error({ error: errorInfo(e) }, "patchbay sync: scheduled run failed");
          }
        },
      );
      return Promise.resolve();
    },
    async stop(timeoutMs) {
      cron?.stop();
      cron = undefined;
      for (const r of running) r.controller.abort(new StoppedError("pipeline", "pipeline stopped"));
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<"timeout">(
        (resolve) => (timer = setTimeout(() => resolve("timeout"), timeoutMs)),
      );
      const drained = Promise.allSettled([...running].map((r) => r.done));
      if ((await Promise.race([drained, timeout])) === "timeout") {
        logger.warn({ timeoutMs }, "patchbay sync: stop() timed out waiting for the batch in flight");
      }
      clearTimeout(timer);
    },
  });
  const stop = (stopOptions: StopOptions = {}) => life.stop({ timeout: stopOptions.timeout ?? stopTimeout });

  return {
    name,
    mode: options.mode,
    store: options.store,
    run,

    start: () => life.start(),
    stop,

    async status(statusOptions = {}) {
      await options.store.open();
      const lock = (await options.store.state.get<LeaseInfo>(lockKey(name)))?.value;
      const [runs, checkpoint] = await Promise.all([
        ctx.runs.list(name, statusOptions.runs ?? 10),
        withDestination((s) => s.readCheckpoint()),
      ]);
      return {
        name,
        mode: options.mode,
        source: options.source.description,
        destination: options.destination.description,
        schedule: options.schedule,
        nextRunAt: cron?.nextRun() ?? undefined,
        running: isHeld(lock, clock.now()),
        lock: isHeld(lock, clock.now()) ? lock : undefined,
        checkpoint,
        runs,
      };
    },

    async quarantined(quarantineOptions = {}) {
      return options.destination.quarantined?.(name, quarantineOptions);
    },

    async reset() {
      await options.store.open();
      const lease = await acquireLease(options.store.state, name, uuidv7(clock), leaseMs, clock);
      try {
        await withDestination((s) => s.reset());
      } finally {
        await lease.release();
      }
      measure("pipeline.cursor_time", Number.NaN, { pipeline: name });
      logger.info({}, "patchbay sync: checkpoint reset; the next run reads from the start");
    },

    async close() {
      await stop();
      await Promise.allSettled([options.source.close(), options.destination.close()]);
    },
  };
}
