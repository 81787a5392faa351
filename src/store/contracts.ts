/**
 * The Store contracts: small interfaces split by role. Adapters (`patchbay/sqlite`,
 * `patchbay/postgres`) implement them; every pattern module (bus, saga, sync, webhooks, http)
 * depends only on these. The conformance suite in `src/testing/store-conformance.ts` checks
 * every invariant written here against every adapter, on the real database.
 */
import type { Duration } from "../core/duration.js";

/** Rows and the number of rows a statement changed. */
export interface QueryResult<Row> {
  rows: Row[];
  /** Rows inserted, updated or deleted by the statement (0 for plain selects on most drivers). */
  rowCount: number;
}

/**
 * Runs SQL in the adapter's own dialect and placeholder style (`?` on SQLite, `$1` on
 * PostgreSQL). This is the escape hatch that lets business writes share Patchbay's transaction.
 *
 * Invariant: a failing statement rejects with a `StoreQueryError` (`QUERY_FAILED`) carrying the
 * driver's code in `sqlState` and the driver error as `cause`; it never half-applies a statement.
 */
export interface SqlExecutor {
  query<Row = Record<string, unknown>>(
    sql: string,
    params?: readonly unknown[],
    options?: QueryOptions,
  ): Promise<QueryResult<Row>>;
}

/** Hints for one statement; a backend that cannot follow one ignores it. */
export interface QueryOptions {
  /**
   * The statement runs often with this exact text: keep it prepared. PostgreSQL makes it a named
   * prepared statement on each connection (parsed once, still planned on every run for the
   * tables as they are then), unless the store was made with `prepareStatements: false`
   * (PgBouncer before 1.21 in transaction mode cannot route those) or on an app's own pool.
   */
  prepare?: boolean;
  /**
   * Patchbay's own statement sets only (a backend's roles set it for the text they build): the
   * text is several statements, each ending `;` at the end of a line, that run as one transaction
   * in one round trip — all of them or, on any error, none. `rowCount` is the first statement's.
   * Only a backend whose roles build such text sees it (MariaDB/MySQL); never for user SQL.
   */
  atomicScript?: boolean;
}

/** What differs between backends, stated as data rather than discovered by `instanceof`. */
export interface StoreCapabilities {
  /** SQL dialect of `query()` (`sqlite`, `postgres`, `mysql`, or an outside adapter's): decides placeholders and syntax for user SQL. */
  readonly dialect: string;
  /** Several processes may write at the same moment (PostgreSQL), or writers queue (SQLite). */
  readonly concurrentWriters: boolean;
  /** `SELECT ... FOR UPDATE SKIP LOCKED` is available for queue claims. */
  readonly skipLocked: boolean;
  /** `LISTEN/NOTIFY`-style wake-ups are available. */
  readonly notifications: boolean;
}

/** Result of {@link StoreLifecycle.health}. */
export interface StoreHealth {
  ok: boolean;
  dialect: StoreCapabilities["dialect"];
  /** Where the data lives: a file path, or host/database/schema. Never contains a password. */
  location: string;
  /** Newest applied migration. */
  schemaVersion: number;
  /** Newest migration this code knows. */
  knownSchemaVersion: number;
  /** Round trip of a trivial query, in ms. */
  latencyMs: number;
  /** Set when `ok` is false. */
  error?: string;
}

/**
 * Connection lifecycle.
 *
 * Invariants: `open()` connects and (unless `migrate: false`) applies pending migrations under a
 * cross-process lock; it is safe to call twice. `close()` waits for running transactions, then
 * releases every connection; it is safe to call twice; any use afterwards rejects with
 * `STORE_CLOSED`. `health()` never throws for an unreachable database: it reports `ok: false`.
 */
export interface StoreLifecycle {
  open(): Promise<void>;
  close(): Promise<void>;
  health(): Promise<StoreHealth>;
}

/** Options of {@link Transactor.transaction}. */
export interface TransactionOptions {
  /** Defaults to the database's default (READ COMMITTED on PostgreSQL; SQLite is always serializable). */
  isolation?: "read committed" | "repeatable read" | "serializable";
}

/**
 * Atomic units of work.
 *
 * Invariants:
 * - Everything done through `tx` (Patchbay's own rows and the user's `tx.query`) commits together
 *   when `fn` resolves, or not at all when it rejects; the rejection is rethrown unchanged.
 * - `tx` is dead once `fn` settles: using it later rejects with `STORE_CLOSED`, so a forgotten
 *   `await` cannot write outside the transaction.
 * - Calling the store (not `tx`) from inside `fn` rejects with `TRANSACTION_NESTED` rather than
 *   deadlocking or silently escaping the transaction.
 * - Transactions from concurrent callers are isolated: on SQLite they run one at a time, on
 *   PostgreSQL concurrently on separate connections.
 */
export interface Transactor {
  transaction<T>(fn: (tx: StoreTx) => Promise<T>, options?: TransactionOptions): Promise<T>;
}

/** A value in the state table, with its version for compare-and-set. */
export interface StateEntry<T = unknown> {
  key: string;
  value: T;
  /** Starts at 1 and grows by one on every write. */
  version: number;
  /** ms since epoch, by the store's clock. */
  updatedAt: number;
}

/**
 * Durable key/value state for checkpoints, cursors and leases.
 *
 * Invariants: values are JSON (objects, arrays, strings, numbers, booleans, null) and read back
 * equal; `set` with `expectedVersion` is an atomic compare-and-set (0 means "must not exist") and
 * throws `STATE_VERSION_CONFLICT` without writing when the version differs; keys are 1–512 chars.
 */
export interface StateStore {
  get<T = unknown>(key: string): Promise<StateEntry<T> | undefined>;
  set<T = unknown>(key: string, value: T, options?: { expectedVersion?: number }): Promise<StateEntry<T>>;
  /** Removes the key; true when it existed. */
  delete(key: string): Promise<boolean>;
  /** Entries whose key starts with `prefix`, in key order. */
  list<T = unknown>(prefix: string): Promise<StateEntry<T>[]>;
}

/** Identifies an idempotency record. `scope` separates clients or features; defaults to `"default"`. */
export interface IdempotencyRef {
  scope?: string;
  key: string;
}

/** A stored idempotency record. */
export interface IdempotencyRecord<R = unknown> {
  scope: string;
  key: string;
  /** Hash of the request the key was first used with (method + path + body, say). */
  fingerprint: string;
  status: "in_flight" | "complete";
  /** The stored outcome once complete. */
  response: R | undefined;
  createdAt: number;
  /** While in flight: when another caller may take the record over (the holder is presumed dead). */
  lockedUntil: number;
  /** When the record stops counting and the key may be used afresh. */
  expiresAt: number;
}

/** Options of {@link IdempotencyStore.claim}. */
export interface ClaimOptions extends IdempotencyRef {
  fingerprint: string;
  /** How long the record (and a stored response) is kept. Default 24 h. */
  ttl?: Duration;
  /** How long an in-flight claim is held before others may take it over. Default 60 s. */
  lease?: Duration;
}

/** The outcome of a claim. Only `claimed` lets the caller do the work. */
export type IdempotencyClaim<R = unknown> =
  | {
      outcome: "claimed";
      /** Proves ownership to `complete`/`release`. */
      token: string;
      /** True when an expired record or a dead holder's lease was replaced. */
      replaced: boolean;
    }
  | { outcome: "in_flight"; record: IdempotencyRecord<R> }
  | { outcome: "completed"; record: IdempotencyRecord<R> }
  | { outcome: "mismatch"; record: IdempotencyRecord<R> };

/**
 * Idempotency records: the first caller of a key claims it, does the work, then completes it
 * with the response; later callers get that response (or learn it is still in flight, or that
 * they reused the key for a different request).
 *
 * Invariants: among any number of concurrent claims of one live key, exactly one is `claimed`;
 * a reused key with another fingerprint is `mismatch` (checked before `in_flight`/`completed`);
 * an expired record, or an in-flight one whose lease ran out with the same fingerprint, can be
 * claimed again (`replaced: true`); `renew` moves a held lease's end to `now + lease`, so a holder
 * that keeps renewing is not taken over before the record expires (its `ttl`); `complete`/`release`/`renew` with a stale token throw
 * `IDEMPOTENCY_NOT_OWNER` and change nothing.
 */
export interface IdempotencyStore {
  claim<R = unknown>(options: ClaimOptions): Promise<IdempotencyClaim<R>>;
  /**
   * Extends the lease of an in-flight claim this caller holds to `now + lease` (default 60 s): the
   * heartbeat of a holder whose work outlasts its lease. Throws `IDEMPOTENCY_NOT_OWNER` when the
   * claim is no longer this caller's (taken over, completed or released).
   */
  renew(ref: IdempotencyRef, token: string, lease?: Duration): Promise<void>;
  /** Stores the response and marks the record complete (kept until its expiry). */
  complete<R = unknown>(ref: IdempotencyRef, token: string, response: R): Promise<void>;
  /** Deletes an in-flight record so the key can be retried (the work failed and left no effect). */
  release(ref: IdempotencyRef, token: string): Promise<void>;
  get<R = unknown>(ref: IdempotencyRef): Promise<IdempotencyRecord<R> | undefined>;
  /** Deletes expired records; returns how many. */
  purgeExpired(): Promise<number>;
}

/** The handle inside a transaction: user SQL and Patchbay's roles, all in one commit. */
export interface StoreTx extends SqlExecutor {
  readonly state: StateStore;
  readonly idempotency: IdempotencyStore;
  /**
   * Runs `callback` once the transaction has committed (never if it rolls back), e.g. to wake a
   * consumer for rows the transaction wrote. A throwing callback is ignored: the commit stands.
   */
  afterCommit(callback: () => void): void;
}

/**
 * A durable store: the sum of the roles. Outside a transaction each call commits on its own.
 */
export interface Store extends StoreLifecycle, Transactor, SqlExecutor {
  readonly capabilities: StoreCapabilities;
  readonly state: StateStore;
  readonly idempotency: IdempotencyStore;
}
