import { PatchbayError, type PatchbayErrorOptions } from "../core/errors.js";

/** Another run of the pipeline holds its lock (here or in another process). Retryable. */
export class SyncLockedError extends PatchbayError {
  constructor(
    readonly pipeline: string,
    /** Who holds it: `host:pid`. */
    readonly holder: string,
    /** When the holder's lease runs out (ms since epoch), unless renewed. */
    readonly until: number,
  ) {
    super(
      "SYNC_LOCKED",
      `pipeline ${JSON.stringify(pipeline)} is running elsewhere (${holder}, lease until ${new Date(until).toISOString()})`,
      { retryable: true },
    );
  }
}

/**
 * This run lost its lock (its lease ran out and another run took over): the batch being written
 * was rolled back, nothing of it was applied. Retryable.
 */
export class SyncLockLostError extends PatchbayError {
  constructor(
    readonly pipeline: string,
    message: string,
  ) {
    super("SYNC_LOCK_LOST", `pipeline ${JSON.stringify(pipeline)}: ${message}`, { retryable: true });
  }
}

/**
 * Another pipeline holds the destination table (a run writing it has not finished): two pipelines
 * writing one table must not interleave, or a `full` + `replace` run would undo what an
 * incremental run wrote meanwhile. Nothing was written. Retryable: run again after it ends.
 */
export class SyncDestinationBusyError extends PatchbayError {
  constructor(
    readonly pipeline: string,
    readonly table: string,
    /** The pipeline holding the table. */
    readonly holder: string,
    /** Where its run lives: `host:pid`. */
    readonly process: string,
    /** When its claim runs out (ms since epoch) unless a batch renews it. */
    readonly until: number,
  ) {
    super(
      "SYNC_DESTINATION_BUSY",
      `pipeline ${JSON.stringify(pipeline)}: ${table} is being written by pipeline ${JSON.stringify(holder)} (${process}, claim until ${new Date(until).toISOString()}); run again after it ends`,
      { retryable: true },
    );
  }
}

/** Rows have columns the destination lacks and the drift policy is `freeze`. Nothing of the batch was written. */
export class SyncSchemaDriftError extends PatchbayError {
  constructor(
    readonly pipeline: string,
    /** The columns the destination does not have. */
    readonly columns: readonly string[],
    readonly table: string,
  ) {
    super(
      "SYNC_SCHEMA_DRIFT",
      `pipeline ${JSON.stringify(pipeline)}: rows have columns ${columns.map((c) => JSON.stringify(c)).join(", ")} that ${table} lacks, and drift is "freeze"; add them, or use drift "evolve" or "discard"`,
    );
  }
}

/** A cursor or checkpoint a source cannot use: from another source, or a cursor column holding NULL. */
export class SyncCursorError extends PatchbayError {
  constructor(message: string, options: PatchbayErrorOptions = {}) {
    super("SYNC_CURSOR_INVALID", message, options);
  }
}

/** The destination table does not exist and the drift policy is not `evolve` (which would create it). */
export class SyncDestinationMissingError extends PatchbayError {
  constructor(readonly table: string) {
    super(
      "SYNC_DESTINATION_MISSING",
      `destination table ${table} does not exist; create it, or use drift "evolve" to create it from the rows`,
    );
  }
}

/** More rows were quarantined in one run than `maxQuarantined` allows: the run stops. */
export class SyncQuarantineLimitError extends PatchbayError {
  constructor(
    readonly pipeline: string,
    readonly quarantined: number,
    readonly limit: number,
  ) {
    super(
      "SYNC_QUARANTINE_LIMIT",
      `pipeline ${JSON.stringify(pipeline)}: ${quarantined} rows quarantined in this run, more than maxQuarantined (${limit}); the batches written so far were committed`,
    );
  }
}

/** A source changed in a way that makes its cursor meaningless (a file shorter than the stored offset). */
export class SyncSourceChangedError extends PatchbayError {
  constructor(message: string) {
    super("SYNC_SOURCE_CHANGED", message);
  }
}

/** A source answered with something it cannot read as rows (an HTTP page without an items array). */
export class SyncSourceError extends PatchbayError {
  constructor(message: string, options: PatchbayErrorOptions = {}) {
    super("SYNC_SOURCE_INVALID", message, options);
  }
}

/** A destination file no longer matches its checkpoint (shorter than the bytes committed). */
export class SyncDestinationChangedError extends PatchbayError {
  constructor(message: string) {
    super("SYNC_DESTINATION_CHANGED", message);
  }
}

declare module "../core/errors.js" {
  interface PatchbayErrorCodes {
    SYNC_LOCKED: SyncLockedError;
    SYNC_LOCK_LOST: SyncLockLostError;
    SYNC_DESTINATION_BUSY: SyncDestinationBusyError;
    SYNC_SCHEMA_DRIFT: SyncSchemaDriftError;
    SYNC_CURSOR_INVALID: SyncCursorError;
    SYNC_DESTINATION_MISSING: SyncDestinationMissingError;
    SYNC_QUARANTINE_LIMIT: SyncQuarantineLimitError;
    SYNC_SOURCE_CHANGED: SyncSourceChangedError;
    SYNC_SOURCE_INVALID: SyncSourceError;
    SYNC_DESTINATION_CHANGED: SyncDestinationChangedError;
  }
}
