import { PatchbayError, type PatchbayErrorOptions } from "../core/errors.js";

/**
 * A statement failed in the database. `sqlState` carries the driver's code (PostgreSQL SQLSTATE
 * such as `23505`, or SQLite's `SQLITE_CONSTRAINT_UNIQUE`) so callers can branch on it; transient
 * failures (serialization conflicts, deadlocks, busy database, lost connection) are `retryable`.
 */
export class StoreQueryError extends PatchbayError {
  constructor(
    message: string,
    readonly sqlState: string | undefined,
    options: PatchbayErrorOptions = {},
  ) {
    super("QUERY_FAILED", message, options);
  }
}

/**
 * A transaction's COMMIT did not commit: the database had already rolled it back, because a
 * statement inside it failed and the caller caught that error and went on. PostgreSQL answers
 * the `COMMIT` of such a transaction with `ROLLBACK` and no error; SQLite rolls back on some
 * errors by itself. Nothing the transaction wrote was kept. `cause` is the first statement
 * error seen inside it, when the store saw one; retryable when that error is.
 */
export class TransactionRolledBackError extends PatchbayError {
  constructor(message: string, options: PatchbayErrorOptions = {}) {
    super("TRANSACTION_ROLLED_BACK", message, options);
  }

  /** The error for a transaction that `database` rolled back after `firstFailure` (if known). */
  static after(database: string, firstFailure: unknown): TransactionRolledBackError {
    const why =
      firstFailure instanceof Error
        ? `a statement inside it failed and the error was caught: ${firstFailure.message}`
        : "it was aborted";
    return new TransactionRolledBackError(
      `the transaction did not commit: ${database} rolled it back because ${why}. Nothing it wrote was kept; ` +
        "let the statement's error propagate, or avoid the failure in SQL (e.g. INSERT ... ON CONFLICT DO NOTHING)",
      {
        ...(firstFailure === undefined ? {} : { cause: firstFailure }),
        retryable: (firstFailure as { retryable?: unknown } | undefined)?.retryable === true,
      },
    );
  }
}

/** The store could not be reached or opened (bad URL, server down, unreadable file). */
export class StoreUnavailableError extends PatchbayError {
  constructor(message: string, options: PatchbayErrorOptions = {}) {
    super("STORE_UNAVAILABLE", message, { retryable: true, ...options });
  }
}

/** The store was used after `close()`, or a transaction handle after its transaction ended. */
export class StoreClosedError extends PatchbayError {
  constructor(message: string) {
    super("STORE_CLOSED", message);
  }
}

/** `store.transaction()` (or a store method) was called from inside a transaction of the same store. */
export class NestedTransactionError extends PatchbayError {
  constructor(
    message = "store method called inside one of its own transactions; use the `tx` handle you were given (tx.query, tx.state, tx.idempotency)",
  ) {
    super("TRANSACTION_NESTED", message);
  }
}

/** The database schema does not match the migrations this version of Patchbay knows. */
export class MigrationError extends PatchbayError {
  constructor(
    code: "SCHEMA_TOO_NEW" | "SCHEMA_OUTDATED" | "MIGRATION_MISMATCH" | "MIGRATION_FAILED",
    message: string,
    /** The schema version found in the database. */
    readonly currentVersion: number,
    /** The newest version this code knows. */
    readonly knownVersion: number,
    options: PatchbayErrorOptions = {},
  ) {
    super(code, message, options);
  }
}

/** A compare-and-set on the state table found another version than the one expected. */
export class StateVersionConflictError extends PatchbayError {
  constructor(
    readonly key: string,
    readonly expectedVersion: number,
    readonly actualVersion: number | undefined,
  ) {
    super(
      "STATE_VERSION_CONFLICT",
      `state ${JSON.stringify(key)} is at version ${actualVersion ?? "(absent)"}, expected ${expectedVersion}`,
      { retryable: true },
    );
  }
}

/** An idempotency record was completed or released by a caller that no longer owns it. */
export class IdempotencyOwnershipError extends PatchbayError {
  constructor(
    readonly scope: string,
    readonly key: string,
  ) {
    super(
      "IDEMPOTENCY_NOT_OWNER",
      `idempotency record ${JSON.stringify(scope)}/${JSON.stringify(key)} is no longer held by this caller (its lease expired and another caller took it over, or it was completed)`,
    );
  }
}

declare module "../core/errors.js" {
  interface PatchbayErrorCodes {
    QUERY_FAILED: StoreQueryError;
    TRANSACTION_ROLLED_BACK: TransactionRolledBackError;
    STORE_UNAVAILABLE: StoreUnavailableError;
    STORE_CLOSED: StoreClosedError;
    TRANSACTION_NESTED: NestedTransactionError;
    SCHEMA_TOO_NEW: MigrationError;
    SCHEMA_OUTDATED: MigrationError;
    MIGRATION_MISMATCH: MigrationError;
    MIGRATION_FAILED: MigrationError;
    STATE_VERSION_CONFLICT: StateVersionConflictError;
    IDEMPOTENCY_NOT_OWNER: IdempotencyOwnershipError;
    IDEMPOTENCY_CONTENDED: PatchbayError;
  }
}
