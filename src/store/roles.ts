/**
 * The statement sets a SQL backend provides for Patchbay's patterns (the local queue, the inbox,
 * sagas, webhooks). Pattern modules describe what they need — which rows, which changes — and
 * the adapter writes it in its database's SQL: how rows are claimed without blocking on rows
 * another worker holds, how a duplicate insert is ignored, how changed rows are read back, how
 * other processes are woken. Pattern modules never branch on a backend's name.
 *
 * Adapter authors: `src/adapters/shared/roles.ts` has implementations for backends with
 * `INSERT ... ON CONFLICT` and `UPDATE ... RETURNING` (SQLite, PostgreSQL) to start from.
 */
import type { QueryOptions, SqlExecutor, Transactor } from "./contracts.js";
import type { RawSql, SqlStatement } from "./sql.js";

/** A claimed queue row: its id and the attempt that claimed it (the claim's token). */
export interface JobRef {
  id: number;
  attempt: number;
}

/** What {@link RowRoles.claim} takes: due rows of one table, oldest first, up to a limit. */
export interface ClaimSpec {
  table: RawSql;
  /** The table's key column (unquoted, a plain name). */
  key: string;
  /** Which rows are due (a condition on the table's columns, no alias). */
  where: SqlStatement;
  /** Their order (`run_at, id`); the claim takes the first `limit`. */
  orderBy: string;
  limit: number;
  /** The claim's changes (`run_at = …, attempt = attempt + 1`). */
  set: SqlStatement;
  /**
   * One more column for every claimed row (`(SELECT …) AS name`: a scalar over the table as it
   * was before the claim), where the backend can return it with the rows; one that cannot leaves
   * it out.
   */
  also?: SqlStatement;
}

/** What {@link RowRoles.updateReturning} takes. */
export interface UpdateSpec {
  table: RawSql;
  /** The table's key column (unquoted). */
  key: string;
  set: SqlStatement;
  where: SqlStatement;
  /** Columns to read back (`seq, message_id`), unqualified. */
  columns: string;
}

/** What {@link RowRoles.upsertWhen} takes: one row to insert, or an existing row to change. */
export interface UpsertWhenSpec {
  table: RawSql;
  /** The existing row's alias in `set` and `when` (`r`: `r.version + 1`). */
  alias: string;
  /** The columns of `row` (quoted where needed). */
  columns: string;
  /** One parenthesised value list. */
  row: SqlStatement;
  /** The unique key that clashes (its columns, quoted where needed). */
  conflict: string;
  /** The clashing row by its key values, unqualified (`scope = … AND "key" = …`). */
  match: SqlStatement;
  /**
   * Assignments for the existing row: unqualified column names on the left; on the right the new
   * values as parameters and the row's current values through `alias`. No assignment may read a
   * column an earlier one sets (MySQL applies them left to right, PostgreSQL all at once).
   */
  set: SqlStatement;
  /** When the existing row is changed (a condition on it, through `alias`); always when absent. */
  when?: SqlStatement;
  /** Columns to read back, unqualified. */
  returning: string;
  /**
   * Keep the statement prepared where the backend can (`PREPARED`): for a caller whose statement
   * text never varies and runs often (a state write).
   */
  prepare?: boolean;
}

/** Claiming, inserting and reading back rows. */
export interface RowRoles {
  /**
   * Claims due rows: picks up to `limit` rows matching `where` in `orderBy` order, skipping rows
   * another transaction holds where the backend can (so concurrent claimers never wait on or
   * take the same row), applies `set` and returns every column of each claimed row as it is after
   * the change. Atomic: a row is claimed by one caller only. Runs on `store` (in its own
   * transaction when the backend needs more than one statement).
   */
  claim<Row>(store: SqlExecutor & Transactor, spec: ClaimSpec, options?: QueryOptions): Promise<Row[]>;
  /**
   * Updates the rows `where` selects and returns `columns` of each after the update. Call it in a
   * transaction: a backend without `UPDATE ... RETURNING` locks and reads the rows in it.
   */
  updateReturning<Row>(tx: SqlExecutor, spec: UpdateSpec): Promise<Row[]>;
  /**
   * An INSERT of `rows` (each a parenthesised value list for `columns`) that keeps the existing
   * row, without an error, where one clashes on the unique key `conflict` (its columns).
   */
  insertIgnore(table: RawSql, columns: string, rows: readonly SqlStatement[], conflict: string): SqlStatement;
  /**
   * An INSERT of one row that overwrites the columns `update` of the existing row where one
   * clashes on the unique key `conflict`.
   */
  upsert(
    table: RawSql,
    columns: string,
    row: SqlStatement,
    conflict: string,
    update: readonly string[],
  ): SqlStatement;
  /**
   * Inserts `row`, or where it clashes on `conflict`, applies `set` to the existing row when
   * `when` holds; returns `returning` of the row when this call inserted or changed it, and no
   * row when it changed nothing. Atomic: of concurrent calls whose `when` excludes the others'
   * changes, one wins. A backend that needs several statements runs them in a transaction of
   * `executor` when it has one (it is the store), and as they are inside one already.
   */
  upsertWhen<Row>(executor: SqlExecutor & Partial<Transactor>, spec: UpsertWhenSpec): Promise<Row[]>;
  /** A JSON document already encoded as text, as the value of a JSON column (`NULL` for null). */
  jsonText(text: string | null): SqlStatement;
}

/** Row locks inside a transaction. */
export interface LockRoles {
  /** Appended to a SELECT: locks the rows read until commit (empty where a transaction holds the whole database). */
  readonly forUpdate: SqlStatement;
  /**
   * Appended to a SELECT: locks the rows read, skipping rows other transactions hold (empty
   * where writers are serial). `of` names the alias whose rows to lock when the SELECT joins.
   */
  skipLocked(of?: string): SqlStatement;
}

/** A row the local queue enqueues (`headers` as the dialect's `encodeJson` made it). */
export interface QueuedRow {
  grp: string;
  messageId: string;
  type: string;
  key: string | null;
  body: string;
  headers: unknown;
  fresh: boolean;
  runAt: number;
  createdAt: number;
}

/** The local queue's batched enqueues, acknowledgements and hand-backs. */
export interface QueueRoles {
  /**
   * One INSERT of `rows` into the queue table, a row already there (same group and message id)
   * ignored, whose text does not change with the number of rows (array parameters), so it stays
   * prepared. Optional: without it, a multi-row `insertIgnore` (one placeholder per value).
   */
  enqueue?(jobs: RawSql, rows: readonly QueuedRow[]): SqlStatement;
  /**
   * Publishes without reading the bindings first: the caller keeps the bindings it last read,
   * and one statement checks them against the table and inserts only when they still match.
   * Optional: without it, every publish reads the bindings, then inserts.
   */
  bound?: BoundEnqueueRoles;
  /** Deletes each row whose id and attempt match a ref (a ref whose claim was lost matches nothing). */
  ack(jobs: RawSql, refs: readonly JobRef[]): SqlStatement;
  /** Makes each matching row due at `now` and takes back the attempt its claim counted. */
  release(jobs: RawSql, refs: readonly JobRef[], now: number): SqlStatement;
  /**
   * A consumer's lease heartbeat: sets `run_at` to `until` on each row whose id and attempt match
   * a ref (all its deliveries in flight at once), on `store`. Where rows are locked, it must not
   * wait on one another transaction holds (an ack of the same rows, a batch handler's transaction
   * acking several): such a row is skipped (`SKIP LOCKED`) and extended at the next beat — a
   * heartbeat that waited while holding the rows before it could close a deadlock. Optional:
   * without it, one `UPDATE ... WHERE (id, attempt) IN (...)` (serial writers: nothing is held).
   */
  extend?(
    store: SqlExecutor & Transactor,
    jobs: RawSql,
    refs: readonly JobRef[],
    until: number,
  ): Promise<void>;
}

/**
 * Bindings as a text (a JSON array of `[group, pattern]` pairs) and its fingerprint: both come
 * from the database in one form, so two reads of the same bindings give the same fingerprint.
 */
export interface BoundEnqueueRoles {
  /** A SELECT of one row: `list` (the bindings) and `fp` (its fingerprint). */
  read(bindings: RawSql): SqlStatement;
  /**
   * One statement: when the bindings' fingerprint is still `fp`, inserts `rows` (as `enqueue`
   * does) and, with `notify`, signals its channel if any row was inserted; returns one row whose
   * `list` and `fp` are null then, or the bindings as they are now (nothing inserted).
   */
  enqueue(
    jobs: RawSql,
    bindings: RawSql,
    rows: readonly QueuedRow[],
    fp: string,
    notify?: { channel: string; payload: string },
  ): SqlStatement;
}

/** The bus inbox: message ids a group has processed. */
export interface InboxRoles {
  /** A SELECT of `grp, message_id` for those of `ids` recorded for `group`. */
  processed(inbox: RawSql, group: string, ids: readonly string[]): SqlStatement;
  /** Records one id; returns one row when it was recorded now and none when it was already. */
  record(inbox: RawSql, group: string, messageId: string, now: number): SqlStatement;
  /**
   * Records several ids in one statement (a batch's claims); returns one row per id recorded now.
   * Optional: without it, a batch records its ids one `record` at a time.
   */
  recordMany?(inbox: RawSql, group: string, messageIds: readonly string[], now: number): SqlStatement;
}

/** A saga step record, ready to write. */
export interface StepValues {
  index: number;
  phase: string;
  name: string;
  status: string;
  /** Already encoded JSON text, or null. */
  resultJson: string | null;
  /** Encoded for a JSON parameter (the dialect's `encodeJson`), or null. */
  error: unknown;
  attempts: number;
  startedAt: number;
  finishedAt: number | null;
  note: string | null;
}

/** Saga records. */
export interface SagaRoles {
  /**
   * Optional: one statement (or, with {@link outcomeOptions} `atomicScript`, one atomic script)
   * that runs `update` (an instance update fenced by `fence.claim`) and writes `step` into `steps`
   * only when the update changed a row; its row count is 0 exactly when the fence did not hold
   * (nothing written). Without it, the two statements run in a transaction.
   */
  outcome?(update: SqlStatement, steps: RawSql, step: StepValues, fence: OutcomeFence): SqlStatement;
  /** How {@link outcome}'s statement runs (default: kept prepared). */
  readonly outcomeOptions?: QueryOptions;
  /**
   * Optional: inserts one instance row on its own (autocommit, outside any transaction) in one
   * round trip; false when a row with its key exists (nothing written). Without it, the insert
   * is `rows.insertIgnore`.
   */
  insertAlone?(ex: SqlExecutor, table: RawSql, columns: string, row: SqlStatement): Promise<boolean>;
}

/** What fences a saga outcome: the instance and the claim its update is fenced by. */
export interface OutcomeFence {
  instances: RawSql;
  id: string;
  claim: number;
}

/** Wake-ups of other processes (`LISTEN/NOTIFY`), for backends that have them. */
export interface NotifyRoles {
  /** A statement that notifies `channel` with `payload` when its transaction commits. */
  signal(channel: string, payload: string): SqlStatement;
  /** `statement` (an INSERT/UPDATE/DELETE), and in the same round trip the notification of `signal`. */
  after(statement: SqlStatement, channel: string, payload: string): SqlStatement;
}

/** Every statement set a SQL backend provides. */
export interface StoreRoles {
  readonly rows: RowRoles;
  readonly locks: LockRoles;
  readonly queue: QueueRoles;
  readonly inbox: InboxRoles;
  readonly saga: SagaRoles;
  /** Absent when the backend cannot wake other processes (they poll). */
  readonly notify?: NotifyRoles;
}
