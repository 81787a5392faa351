/**
 * The data sync contracts: a {@link SyncSource} yields batches of rows from a cursor, a
 * {@link SyncDestination} writes each batch together with the checkpoint that lets the next run
 * resume after it. Adapters (`patchbay/postgres`, `patchbay/sqlite`, `patchbay/mysql`, the file and
 * HTTP sources here) implement them; the runner (`pipeline()`) depends on nothing else. The
 * conformance suite (`defineSyncConformance` in `patchbay/adapter/conformance`) checks these
 * invariants against every adapter.
 */
import type { Logger } from "../core/logger.js";
import type { StateStore } from "../store/contracts.js";

/** One row: column name to value. */
export type Row = Record<string, unknown>;

/** A JSON value: what checkpoints and cursors are made of. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/**
 * A position in a source, owned and interpreted by that source alone (a keyset position, a byte
 * offset, a page token, a replication LSN). JSON, so it can be stored in a checkpoint.
 */
export type SourceCursor = JsonValue;

/**
 * How a source is read: `full` reads every row (in key order); `incremental` reads the rows after
 * the cursor (in cursor order), up to the source's upper bound for this run.
 */
export type ReadMode = "full" | "incremental";

/**
 * An encoding of rows that a source and a destination of the same kind can pass through untouched
 * (no parsing into JS objects, no re-encoding): `"postgres-copy-text"` is PostgreSQL's COPY text
 * format. Negotiated from the capabilities; only used when no transform or schema needs the rows.
 */
export type RowEncoding = "postgres-copy-text";

/** Rows in a {@link RowEncoding}, one line per row. */
export interface EncodedRows {
  encoding: RowEncoding;
  /** The columns of each line, in order. */
  columns: readonly string[];
  /** The lines, each ending with a newline, split into chunks anywhere between lines. */
  chunks: readonly Buffer[];
  /** How many rows (lines). */
  count: number;
}

/** What the runner asks a source for. */
export interface ReadRequest {
  mode: ReadMode;
  /** The cursor of the last batch that committed, or `undefined` to start from the beginning. */
  cursor: SourceCursor | undefined;
  /** Rows per batch (a source may return fewer; never more). */
  batchSize: number;
  /** Aborted when the run stops: stop reading (the batch being written still commits). */
  signal: AbortSignal;
  /**
   * The source may deliver batches in this encoding (as `encoded`, with `rows` empty) when it
   * lists it in `capabilities.encodings`. Such rows are loaded as they are: key columns must not
   * be NULL (a NULL key fails the batch instead of being quarantined).
   */
  encoding?: RowEncoding;
}

/** One batch read from a source. */
export interface SourceBatch {
  rows: Row[];
  /**
   * Rows deleted at the source, given by their key columns (a change-data-capture source; table
   * sources never fill it). Destinations in merge mode delete them in the batch's transaction.
   */
  deletes?: Row[];
  /**
   * Records the source could not turn into rows (a malformed line, an item that is not an
   * object): quarantined with the batch, so the run goes on and nothing is silently dropped.
   */
  rejected?: QuarantineRecord[];
  /**
   * The batch's rows in the requested {@link ReadRequest.encoding}. `rows` is then empty, except from
   * a change stream: its rows that could not be encoded (an unchanged TOAST value not sent) are there.
   */
  encoded?: EncodedRows;
  /**
   * Reading again with this cursor continues with the first row after this batch. It is stored
   * with the batch, so it must never point past a row the batch does not contain.
   */
  cursor: SourceCursor;
}

/** What a source can do, as data. */
export interface SourceCapabilities {
  /** The read modes it supports. */
  readonly modes: readonly ReadMode[];
  /** It never runs out of rows by itself (a change stream): a run ends when it is stopped. */
  readonly streaming: boolean;
  /** Encodings it can deliver batches in (see {@link RowEncoding}). */
  readonly encodings?: readonly RowEncoding[];
}

/**
 * Where rows come from.
 *
 * Invariants (checked by the conformance suite):
 * - Reading from a batch's `cursor` yields exactly the rows after that batch, in the same order:
 *   no row of a committed batch comes again and no row between two batches is skipped, whatever
 *   happens to the process between the two reads. (Rows *changed* at the source since may come
 *   again: that is the point of an incremental read.)
 * - In `incremental` mode the read ends at an upper bound fixed when the read starts, so a run
 *   ends even while the source keeps changing; rows beyond it are read by the next run.
 * - A read never changes the source. A cursor from another source (or an unreadable one) is
 *   refused with `SYNC_CURSOR_INVALID` before anything is read.
 * - Batches are never empty, except possibly the last one. A source whose unit is a page (an
 *   HTTP API) yields one batch per page, whatever `batchSize` says.
 */
export interface SyncSource {
  /** For logs and run records: `postgres table "public"."orders"`. */
  readonly description: string;
  readonly capabilities: SourceCapabilities;
  /** Reads batches from `request.cursor` on. */
  read(request: ReadRequest): AsyncIterable<SourceBatch>;
  /** How many rows the read would yield, when the source can tell cheaply (for progress and ETA). */
  count?(request: Omit<ReadRequest, "signal" | "batchSize">): Promise<number | undefined>;
  /**
   * The time (ms since the epoch) a cursor of this source stands at, when its position is a time
   * (a keyset source whose first cursor column is a timestamp or epoch-ms); `undefined` otherwise.
   * Feeds `patchbay_pipeline_cursor_lag_seconds`.
   */
  cursorTime?(cursor: SourceCursor): number | undefined;
  /**
   * Called after a batch and its cursor committed at the destination. A streaming source
   * acknowledges upstream here (PostgreSQL logical replication: confirm the LSN); others ignore it.
   */
  committed?(cursor: SourceCursor): Promise<void>;
  /** Releases connections and file handles. Safe to call twice. */
  close(): Promise<void>;
}

/** How a destination applies rows. */
export type WriteMode = "append" | "merge" | "replace";

/** A row that could not be loaded, and why. It is stored beside the destination; the run goes on. */
export interface QuarantineRecord {
  /**
   * What went wrong: `"transform"`, `"schema"`, `"drift"`, `"key"`, `"column"`, `"parse"`,
   * `"value"` (a value its destination column would store changed).
   */
  reason: string;
  /** The error, JSON-safe: `{ code?, message }`. */
  error: { code?: string; message: string };
  /** The row as read from the source (or produced by the transform), JSON-safe. */
  row: JsonValue;
}

/** A quarantined row as a destination stored it. */
export interface QuarantinedRow extends QuarantineRecord {
  /** Its position in the quarantine (newest first; `before` pages on it). */
  id: string;
  /** The run that set it aside. */
  runId: string;
  /** When (ms since the epoch). */
  at: number;
}

/** One batch for a destination. */
export interface DestinationBatch {
  rows: Row[];
  /** The rows in an encoding the destination accepts (a pass-through); `rows` holds any others. */
  encoded?: EncodedRows;
  /**
   * Keys of rows to delete (merge mode only), applied before the rows: a change stream nets its
   * changes by the source's key, which may be finer than the destination's, so a row of `rows`
   * may share its destination key with a delete (an update sent as delete-old, upsert-new).
   */
  deletes: Row[];
  quarantine: QuarantineRecord[];
  /** The pipeline's checkpoint after this batch: stored with it, atomically when transactional. */
  checkpoint: JsonValue;
}

/** What a write did. */
export interface WriteResult {
  written: number;
  deleted: number;
  /**
   * Rows the destination refused and quarantined with the batch (a value its column would not
   * store exactly: `SYNC_VALUE_INEXACT`). Not counted in `written`.
   */
  quarantined?: number;
}

/** A column the destination should have, with a sample value to choose its type from. */
export interface ColumnSample {
  name: string;
  sample: unknown;
}

/** Everything a destination session gets from the runner. */
export interface DestinationContext {
  pipeline: string;
  runId: string;
  /** The pipeline Store's state, for destinations that keep their checkpoint there (files). */
  state: StateStore;
  logger: Logger;
  /**
   * How long the run's claim on the destination outlives its last write (the pipeline's `lease`).
   * A table destination renews it with every batch; once it runs out, another pipeline may take
   * the table and this run's next write fails with `SYNC_LOCK_LOST`.
   */
  leaseMs?: number;
}

/** What a destination can do, as data. */
export interface DestinationCapabilities {
  /** Rows, quarantine and checkpoint of a batch commit together (a database). */
  readonly transactional: boolean;
  /** It has a fixed set of columns (a table), so schema drift applies; a file takes any row. */
  readonly columns: boolean;
  /** Encodings it loads as they are (see {@link RowEncoding}). */
  readonly encodings?: readonly RowEncoding[];
}

/**
 * Where rows go.
 *
 * Invariants (checked by the conformance suite):
 * - `write` stores the rows, the quarantine records and the checkpoint **atomically**: after a
 *   crash at any point, `claim()` returns the checkpoint of the last batch whose rows are all there,
 *   and none of a later batch's rows are. (A file destination gets the same effect by truncating
 *   what an unfinished batch appended.)
 * - `claim()` fences out every earlier session of the pipeline: once it returned, their writes fail
 *   with `SYNC_LOCK_LOST` and change nothing.
 * - A table destination's `claim()` also holds the table against every other pipeline until the
 *   session closes (renewed by each write): another pipeline's `claim()` meanwhile fails with
 *   `SYNC_DESTINATION_BUSY`, and a `replace` stage kept across sessions is not swapped in after
 *   another pipeline wrote the table (`beginReplace(true)` resolves `false`: stage again).
 * - `merge` applies a row only when its `version` column is newer than the stored row's (or no
 *   version column is configured), so replaying a batch changes nothing. `append` inserts.
 *   `replace` loads into a stage and `commitReplace` makes the table equal to the stage in one
 *   transaction: readers see the old table or the new one, never an empty or half one.
 * - Table and column names are validated before any SQL is built: a name is never SQL.
 */
export interface SyncDestination {
  /** For logs and run records: `postgres table "warehouse"."orders" (merge)`. */
  readonly description: string;
  readonly write: WriteMode;
  /** The columns that identify a row (merge and replace match on them). */
  readonly key: readonly string[];
  readonly capabilities: DestinationCapabilities;
  /** Opens a session for one run. */
  open(context: DestinationContext): Promise<DestinationSession>;
  /**
   * A pipeline's quarantined rows, newest first: `limit` of them (default 50), those older than
   * the row `before` when given. Optional: the SQL destinations have it; a file destination's
   * quarantine is a file beside it (`<path>.quarantine.ndjson`).
   */
  quarantined?(pipeline: string, options?: { limit?: number; before?: string }): Promise<QuarantinedRow[]>;
  /** Releases connections. Safe to call twice. */
  close(): Promise<void>;
}

/** One run's connection to a destination. */
export interface DestinationSession {
  /**
   * Takes ownership for this run (fencing earlier sessions out) and returns the stored checkpoint.
   * A table destination also claims the table against other pipelines for the whole run, or
   * throws `SYNC_DESTINATION_BUSY` while another pipeline's run holds it.
   */
  claim(): Promise<JsonValue | undefined>;
  /** The stored checkpoint, without claiming anything (for status). */
  readCheckpoint(): Promise<JsonValue | undefined>;
  /** The table's columns, or `undefined` when the table does not exist. Not called for files. */
  columns(): Promise<readonly string[] | undefined>;
  /** Creates the table (key columns first, as its primary key) or adds the missing columns. */
  evolve(columns: readonly ColumnSample[]): Promise<void>;
  /**
   * `replace` only: prepares the stage. With `resume`, keeps what an interrupted run staged and
   * resolves `true`; `false` means the stage is new and empty (the read must start over).
   */
  beginReplace(resume: boolean): Promise<boolean>;
  /** Writes a batch (into the stage in `replace` mode) and its checkpoint, atomically. */
  write(batch: DestinationBatch): Promise<WriteResult>;
  /** `replace` only: swaps the stage in (rows not staged are deleted), atomically with `checkpoint`. */
  commitReplace(checkpoint: JsonValue): Promise<WriteResult>;
  /** Forgets the checkpoint (and any stage). The rows stay. */
  reset(): Promise<void>;
  close(): Promise<void>;
}
