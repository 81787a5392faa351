/**
 * Run records: one row per pipeline run in the Store's `sync_runs` table (migration 2), written
 * when the run starts, updated as batches commit, and finished with its outcome.
 */
import { int, run } from "../store/dialect.js";
import type { SqlStore } from "../store/sql-store.js";
import { raw, sql } from "../store/sql.js";
import type { JsonValue } from "./contracts.js";

/** How a run ended (`running` while it runs; `abandoned` when its process died). */
export type RunStatus = "running" | "succeeded" | "failed" | "cancelled" | "abandoned";

/** One recorded run. */
export interface SyncRunRecord {
  id: string;
  pipeline: string;
  /** The pipeline's mode: `full`, `incremental` or `append`. */
  mode: string;
  status: RunStatus;
  startedAt: number;
  finishedAt: number | undefined;
  durationMs: number | undefined;
  rowsRead: number;
  rowsWritten: number;
  rowsDeleted: number;
  rowsQuarantined: number;
  batches: number;
  cursorBefore: JsonValue | undefined;
  cursorAfter: JsonValue | undefined;
  error: { code?: string; message: string } | undefined;
  host: string;
  pid: number;
}

interface RunRow {
  id: string;
  pipeline: string;
  mode: string;
  status: RunStatus;
  started_at: unknown;
  finished_at: unknown;
  rows_read: unknown;
  rows_written: unknown;
  rows_deleted: unknown;
  rows_quarantined: unknown;
  batches: unknown;
  cursor_before: unknown;
  cursor_after: unknown;
  error: unknown;
  host: string;
  pid: unknown;
}

const COLUMNS = raw(
  "id, pipeline, mode, status, started_at, finished_at, rows_read, rows_written, rows_deleted, rows_quarantined, batches, cursor_before, cursor_after, error, host, pid",
);

/** The run-record repository of one store. */
export function runRecords(store: SqlStore) {
  const d = store.dialect;
  const t = raw(d.table("sync_runs"));
  const json = (value: unknown) => (value === undefined || value === null ? null : d.encodeJson(value));
  const unjson = (value: unknown) =>
    value === null || value === undefined ? undefined : d.decodeJson(value);
  const toRecord = (r: RunRow): SyncRunRecord => {
    const finishedAt = r.finished_at === null ? undefined : int(r.finished_at);
    return {
      id: r.id,
      pipeline: r.pipeline,
      mode: r.mode,
      status: r.status,
      startedAt: int(r.started_at),
      finishedAt,
      durationMs: finishedAt === undefined ? undefined : finishedAt - int(r.started_at),
      rowsRead: int(r.rows_read),
      rowsWritten: int(r.rows_written),
      rowsDeleted: int(r.rows_deleted),
      rowsQuarantined: int(r.rows_quarantined),
      batches: int(r.batches),
      cursorBefore: unjson(r.cursor_before) as JsonValue | undefined,
      cursorAfter: unjson(r.cursor_after) as JsonValue | undefined,
      error: unjson(r.error) as SyncRunRecord["error"],
      host: r.host,
      pid: int(r.pid),
    };
  };

  return {
    async insert(r: SyncRunRecord): Promise<void> {
      await run(
        store,
        d,
        sql`INSERT INTO ${t} (${COLUMNS}) VALUES (${r.id}, ${r.pipeline}, ${r.mode}, ${r.status}, ${r.startedAt}, NULL, 0, 0, 0, 0, 0, ${json(r.cursorBefore)}, NULL, NULL, ${r.host}, ${r.pid})`,
      );
    },

    /** Writes the counters and cursor so far (and the outcome once `finishedAt` is set). */
    async update(r: SyncRunRecord): Promise<void> {
      await run(
        store,
        d,
        sql`UPDATE ${t} SET status = ${r.status}, finished_at = ${r.finishedAt ?? null}, rows_read = ${r.rowsRead},
            rows_written = ${r.rowsWritten}, rows_deleted = ${r.rowsDeleted}, rows_quarantined = ${r.rowsQuarantined},
            batches = ${r.batches}, cursor_after = ${json(r.cursorAfter)}, error = ${json(r.error)}
            WHERE id = ${r.id}`,
      );
    },

    /** Marks runs of `pipeline` still `running` as abandoned: called by the lock holder, so they are dead. */
    async abandon(pipeline: string, now: number): Promise<number> {
      const error = json({
        code: "SYNC_RUN_ABANDONED",
        message: "the process running it stopped without finishing it (crash or kill)",
      });
      const { rowCount } = await run(
        store,
        d,
        sql`UPDATE ${t} SET status = 'abandoned', finished_at = ${now}, error = ${error} WHERE pipeline = ${pipeline} AND status = 'running'`,
      );
      return rowCount;
    },

    /** The newest runs of a pipeline (or of all pipelines), newest first. */
    async list(pipeline: string | undefined, limit = 10): Promise<SyncRunRecord[]> {
      const { rows } = await run<RunRow>(
        store,
        d,
        pipeline === undefined
          ? sql`SELECT ${COLUMNS} FROM ${t} ORDER BY started_at DESC, id DESC LIMIT ${limit}`
          : sql`SELECT ${COLUMNS} FROM ${t} WHERE pipeline = ${pipeline} ORDER BY started_at DESC, id DESC LIMIT ${limit}`,
      );
      return rows.map(toRecord);
    },
  };
}

/** The repository type. */
export type RunRecords = ReturnType<typeof runRecords>;
