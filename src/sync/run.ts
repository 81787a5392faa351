/**
 * One run of a pipeline: take the lock, claim the destination, read batches from the checkpoint,
 * transform, check drift, write each batch with its checkpoint, record the run. The source is
 * read one batch ahead while the current batch is written, so both databases work at once.
 */
import { hostname } from "node:os";
import type { StandardSchemaV1 } from "@standard-schema/spec";
import type { Clock } from "../core/clock.js";
import { isPatchbayError } from "../core/errors.js";
import { uuidv7 } from "../core/ids.js";
import { measure, measuring } from "../core/instruments.js";
import type { Logger } from "../core/logger.js";
import type { SqlStore } from "../store/sql-store.js";
import type {
  DestinationSession,
  JsonValue,
  ReadMode,
  SourceBatch,
  SourceCursor,
  SyncDestination,
  SyncSource,
} from "./contracts.js";
import {
  SyncCursorError,
  SyncDestinationMissingError,
  SyncQuarantineLimitError,
  SyncSchemaDriftError,
} from "./errors.js";
import { errorInfo } from "./json.js";
import { acquireLease, type Lease } from "./lock.js";
import type { RunRecords, SyncRunRecord } from "./runs.js";
import { discardDrift, prepareBatch, unknownColumns, type DriftPolicy, type Transform } from "./transform.js";

/** How a pipeline reads: everything, the rows changed since the checkpoint, or only new rows. */
export type SyncMode = "full" | "incremental" | "append";

/** Progress after each committed batch. */
export interface SyncProgress {
  runId: string;
  pipeline: string;
  rowsRead: number;
  rowsWritten: number;
  rowsDeleted: number;
  rowsQuarantined: number;
  batches: number;
  elapsedMs: number;
  /** Rows read per second so far. */
  rowsPerSecond: number;
  /** Rows the run will read, when the source can count them (for an ETA). */
  total: number | undefined;
  /** The checkpoint's source cursor after this batch. */
  cursor: JsonValue | undefined;
}

/** Options of one run. */
export interface RunOptions {
  /** Stops the run after the batch being written commits; the run ends `cancelled`. */
  signal?: AbortSignal;
  /**
   * Called after each committed batch; a returned promise is awaited before the next batch (so a
   * slow consumer slows the run rather than piling up). What it throws is logged and ignored.
   */
  onProgress?: (progress: SyncProgress) => void | Promise<void>;
}

/** What a run did: its record. */
export type SyncRunReport = SyncRunRecord;

/** The pipeline's own checkpoint, stored by the destination with every batch. */
export interface PipelineCheckpoint {
  v: 1;
  /** Incremental/append: the source cursor after the last committed row. */
  cursor: SourceCursor;
  /** Set while a full run is in progress: its read position and run. */
  full: { cursor: SourceCursor; runId: string } | null;
}

/** Everything a run needs, resolved by `pipeline()`. */
export interface RunContext {
  name: string;
  store: SqlStore;
  source: SyncSource;
  destination: SyncDestination;
  mode: SyncMode;
  transform: Transform | undefined;
  schema: StandardSchemaV1 | undefined;
  drift: DriftPolicy;
  batchSize: number;
  maxQuarantined: number;
  leaseMs: number;
  clock: Clock;
  logger: Logger;
  runs: RunRecords;
}

function parseCheckpoint(value: JsonValue | undefined, pipeline: string): PipelineCheckpoint {
  if (value === undefined || value === null) return { v: 1, cursor: null, full: null };
  const c = value as Partial<PipelineCheckpoint>;
  if (typeof value !== "object" || c.v !== 1) {
    throw new SyncCursorError(
      `pipeline ${JSON.stringify(pipeline)}: the stored checkpoint is not one this version reads; reset the pipeline`,
    );
  }
  return { v: 1, cursor: c.cursor ?? null, full: c.full ?? null };
}

/** Reads one batch ahead: `next()` of the following batch runs while the caller writes this one. */
async function* readAhead(
  source: AsyncIterable<SourceBatch>,
  signal: AbortSignal,
): AsyncGenerator<SourceBatch> {
  const it = source[Symbol.asyncIterator]();
  let pending: Promise<IteratorResult<SourceBatch>> | undefined = it.next();
  try {
    while (pending) {
      const result: IteratorResult<SourceBatch> = await pending;
      pending = undefined;
      if (result.done) return;
      if (!signal.aborted) {
        pending = it.next();
        // Handled later by the await above; this only keeps a failure from counting as unhandled meanwhile.
        pending.catch(() => undefined);
      }
      yield result.value;
    }
  } finally {
    await pending?.catch(() => undefined);
    await it.return?.();
  }
}

/** Runs the pipeline once. Resolves with the run record (`succeeded` or `cancelled`); rejects when it failed. */
export async function executeRun(ctx: RunContext, options: RunOptions): Promise<SyncRunReport> {
  const { clock, store, name } = ctx;
  await store.open();
  const runId = uuidv7(clock);
  const lease: Lease = await acquireLease(store.state, name, runId, ctx.leaseMs, clock);
  const stopped = new AbortController();
  const onAbort = () => stopped.abort(options.signal?.reason);
  if (options.signal?.aborted) onAbort();
  options.signal?.addEventListener("abort", onAbort, { once: true });
  let lockLost: unknown;
  const heartbeat = setInterval(
    () => {
      lease.renew().catch((e: unknown) => {
        lockLost = e;
        stopped.abort(e);
      });
    },
    Math.max(1000, Math.floor(ctx.leaseMs / 3)),
  );
  heartbeat.unref();

  const started = clock.now();
  const record: SyncRunRecord = {
    id: runId,
    pipeline: name,
    mode: ctx.mode,
    status: "running",
    startedAt: started,
    finishedAt: undefined,
    durationMs: undefined,
    rowsRead: 0,
    rowsWritten: 0,
    rowsDeleted: 0,
    rowsQuarantined: 0,
    batches: 0,
    cursorBefore: undefined,
    cursorAfter: undefined,
    error: undefined,
    host: hostname(),
    pid: process.pid,
  };
  let failure: unknown;
  try {
    const abandoned = await ctx.runs.abandon(name, started);
    if (abandoned > 0)
      ctx.logger.warn(
        { pipeline: name, abandoned },
        "patchbay sync: earlier run(s) died unfinished; resuming from their last committed batch",
      );
    await ctx.runs.insert(record);
    const session = await ctx.destination.open({
      pipeline: name,
      runId,
      state: store.state,
      logger: ctx.logger,
      leaseMs: ctx.leaseMs,
    });
    try {
      await runBatches(ctx, session, record, stopped.signal, options);
    } finally {
      await session.close();
    }
  } catch (e) {
    failure = lockLost ?? e;
  } finally {
    clearInterval(heartbeat);
    options.signal?.removeEventListener("abort", onAbort);
  }
  // Losing the lease stops the run after its batch: that is a failure, not a cancellation.
  failure ??= lockLost;
  record.finishedAt = clock.now();
  record.durationMs = record.finishedAt - record.startedAt;
  record.status = failure !== undefined ? "failed" : stopped.signal.aborted ? "cancelled" : "succeeded";
  if (failure !== undefined) record.error = errorInfo(failure);
  try {
    await ctx.runs.update(record);
  } finally {
    await lease.release();
  }
  measureRun(name, record);
  ctx.logger[failure ? "error" : "info"](
    {
      pipeline: name,
      runId,
      status: record.status,
      rowsRead: record.rowsRead,
      rowsWritten: record.rowsWritten,
      rowsQuarantined: record.rowsQuarantined,
      durationMs: record.durationMs,
      error: record.error,
    },
    `patchbay sync: run ${record.status}`,
  );
  // The error as raised (a PatchbayError with its code, or the driver's), after it was recorded.
  // eslint-disable-next-line @typescript-eslint/only-throw-error
  if (failure !== undefined) throw failure;
  return record;
}

/** Reports the time of the committed incremental cursor, when the source can read one from it. */
function reportCursorTime(ctx: RunContext, cursor: SourceCursor | null | undefined): void {
  if (!ctx.source.cursorTime || cursor === null || cursor === undefined) return;
  let at: number | undefined;
  try {
    at = ctx.source.cursorTime(cursor);
  } catch {
    return; // metrics never fail a run
  }
  if (at !== undefined && Number.isFinite(at)) measure("pipeline.cursor_time", at, { pipeline: ctx.name });
}

async function runBatches(
  ctx: RunContext,
  session: DestinationSession,
  record: SyncRunRecord,
  signal: AbortSignal,
  options: RunOptions,
): Promise<void> {
  const { destination, source, clock } = ctx;
  const stored = parseCheckpoint(await session.claim(), ctx.name);
  const readMode: ReadMode = ctx.mode === "full" ? "full" : "incremental";
  const replace = destination.write === "replace";
  let resumeFrom: SourceCursor | undefined =
    readMode === "full" ? (stored.full?.cursor ?? undefined) : (stored.cursor ?? undefined);
  let staged = false;
  // The stage is made like the table, so a missing table is created (evolve) first, from the
  // first batch; the read then starts from the beginning anyway.
  const stage = async () => {
    if (staged || !replace) return;
    staged = true;
    await session.beginReplace(false);
  };
  if (replace) {
    if ((await session.columns()) !== undefined) {
      staged = true;
      const kept = await session.beginReplace(stored.full !== null);
      if (!kept) resumeFrom = undefined;
    } else {
      resumeFrom = undefined;
    }
  }
  record.cursorBefore = readMode === "full" ? (stored.full?.cursor ?? null) : stored.cursor;
  if (readMode === "incremental") reportCursorTime(ctx, stored.cursor);
  record.cursorAfter = record.cursorBefore;
  await ctx.runs.update(record);

  const total = options.onProgress
    ? await source.count?.({ mode: readMode, cursor: resumeFrom }).catch(() => undefined)
    : undefined;
  let known: Set<string> | undefined;
  let columnsRead = false;
  let lastRecordUpdate = clock.now();
  const checkpoint = stored;

  // Pass-through: with nothing to do per row, a source and destination that share an encoding
  // move the rows as they are (PostgreSQL to PostgreSQL: COPY text, never parsed into objects).
  const encoding =
    ctx.transform === undefined && ctx.schema === undefined && ctx.drift === "freeze"
      ? source.capabilities.encodings?.find((e) => destination.capabilities.encodings?.includes(e))
      : undefined;
  const batches = readAhead(
    source.read({
      mode: readMode,
      cursor: resumeFrom,
      batchSize: ctx.batchSize,
      signal,
      ...(encoding ? { encoding } : {}),
    }),
    signal,
  );
  for await (const batch of batches) {
    // Stopped: the batch read ahead is dropped (it was not written, so the checkpoint is before it).
    if (signal.aborted) break;
    const encoded = batch.encoded;
    record.rowsRead += (encoded?.count ?? 0) + batch.rows.length;
    // An encoded batch may also hold rows (a change stream's rows lacking an unchanged TOAST value).
    const prepared =
      batch.rows.length === 0
        ? { rows: [], quarantine: [], dropped: 0 }
        : await prepareBatch(batch.rows, {
            transform: ctx.transform,
            schema: ctx.schema,
            key: destination.key,
            sqlNames: destination.capabilities.columns,
            context: { pipeline: ctx.name, runId: record.id },
          });
    if (batch.rejected?.length) prepared.quarantine.push(...batch.rejected);
    if (destination.capabilities.columns && (prepared.rows.length > 0 || (encoded?.count ?? 0) > 0)) {
      if (!columnsRead) {
        const columns = await session.columns();
        known = columns && new Set(columns);
        columnsRead = true;
      }
      const unknown = unknownColumns(prepared.rows, known);
      for (const name of encoded?.columns ?? [])
        if (!known?.has(name) && !unknown.some((c) => c.name === name)) unknown.push({ name, sample: null });
      if (known === undefined || unknown.length > 0) {
        if (ctx.drift === "evolve") {
          await session.evolve(unknown);
          known = new Set((await session.columns()) ?? []);
        } else if (known === undefined) {
          throw new SyncDestinationMissingError(destination.description);
        } else if (ctx.drift === "freeze") {
          throw new SyncSchemaDriftError(
            ctx.name,
            unknown.map((c) => c.name),
            destination.description,
          );
        } else {
          discardDrift(prepared, known);
        }
      }
    }
    if (record.rowsQuarantined + prepared.quarantine.length > ctx.maxQuarantined) {
      throw new SyncQuarantineLimitError(
        ctx.name,
        record.rowsQuarantined + prepared.quarantine.length,
        ctx.maxQuarantined,
      );
    }
    await stage();
    if (readMode === "full") checkpoint.full = { cursor: batch.cursor, runId: record.id };
    else checkpoint.cursor = batch.cursor;
    const result = await session.write({
      rows: prepared.rows,
      ...(encoded ? { encoded } : {}),
      deletes: batch.deletes ?? [],
      quarantine: prepared.quarantine,
      checkpoint: checkpoint as unknown as JsonValue,
    });
    await source.committed?.(batch.cursor);
    record.batches++;
    record.rowsWritten += result.written;
    record.rowsDeleted += result.deleted;
    record.rowsQuarantined += prepared.quarantine.length + (result.quarantined ?? 0);
    record.cursorAfter = batch.cursor;
    if (readMode === "incremental") reportCursorTime(ctx, batch.cursor);
    // Rows the destination refused while writing (values its columns would change) are only
    // known now: the batch is in, and the run stops here.
    if (record.rowsQuarantined > ctx.maxQuarantined) {
      throw new SyncQuarantineLimitError(ctx.name, record.rowsQuarantined, ctx.maxQuarantined);
    }
    const now = clock.now();
    if (now - lastRecordUpdate >= 1000) {
      lastRecordUpdate = now;
      await ctx.runs.update(record);
    }
    if (options.onProgress) {
      const elapsedMs = now - record.startedAt;
      try {
        await options.onProgress({
          runId: record.id,
          pipeline: ctx.name,
          rowsRead: record.rowsRead,
          rowsWritten: record.rowsWritten,
          rowsDeleted: record.rowsDeleted,
          rowsQuarantined: record.rowsQuarantined,
          batches: record.batches,
          elapsedMs,
          rowsPerSecond: elapsedMs > 0 ? (record.rowsRead * 1000) / elapsedMs : 0,
          total,
          cursor: batch.cursor,
        });
      } catch (e) {
        ctx.logger.warn({ error: errorInfo(e) }, "patchbay sync: onProgress threw; ignored");
      }
    }
  }
  if (signal.aborted || readMode !== "full") return;
  // The full read is complete: end it, atomically with its final checkpoint.
  checkpoint.full = null;
  const final = checkpoint as unknown as JsonValue;
  if (replace && staged) {
    const result = await session.commitReplace(final);
    record.rowsDeleted += result.deleted;
  } else {
    await session.write({ rows: [], deletes: [], quarantine: [], checkpoint: final });
  }
}

/** True for errors a scheduled run should just log and retry at its next tick. */
export const isExpected = (e: unknown) =>
  isPatchbayError(e, "SYNC_LOCKED") || isPatchbayError(e, "SYNC_DESTINATION_BUSY");

/** Reports a finished run to the measurement listeners (Prometheus metrics when the app serves them). */
function measureRun(pipeline: string, record: SyncRunRecord) {
  if (!measuring()) return;
  const labels = { pipeline };
  measure("pipeline.run", (record.durationMs ?? 0) / 1000, { pipeline, status: record.status });
  measure("pipeline.rows_read", record.rowsRead, labels);
  measure("pipeline.rows_written", record.rowsWritten, labels);
  measure("pipeline.rows_quarantined", record.rowsQuarantined, labels);
}
