/** The errors of change data capture from PostgreSQL logical replication. */
import { PatchbayError, type PatchbayErrorOptions } from "../../../core/errors.js";

/** The server cannot decode its WAL logically: `wal_level` is not `logical`. */
export class CdcWalLevelError extends PatchbayError {
  constructor(readonly walLevel: string) {
    super(
      "CDC_WAL_LEVEL",
      `PostgreSQL runs with wal_level = ${walLevel}; change data capture needs wal_level = logical (ALTER SYSTEM SET wal_level = logical, then restart the server)`,
    );
  }
}

/** Every replication slot (`max_replication_slots`) or WAL sender (`max_wal_senders`) is in use. */
export class CdcNoSlotsError extends PatchbayError {
  constructor(message: string, options: PatchbayErrorOptions = {}) {
    super(
      "CDC_NO_SLOTS",
      `${message} (raise max_replication_slots / max_wal_senders, or drop unused slots)`,
      options,
    );
  }
}

/** A captured table has no replica identity: its updates and deletes cannot name the row. */
export class CdcReplicaIdentityError extends PatchbayError {
  constructor(readonly table: string) {
    super(
      "CDC_REPLICA_IDENTITY",
      `table ${table} has no primary key and no replica identity: its updates and deletes cannot be captured (add a primary key, or ALTER TABLE ${table} REPLICA IDENTITY FULL / USING INDEX)`,
    );
  }
}

/** The stored position needs a slot that no longer exists: changes since may be lost; reset to copy afresh. */
export class CdcSlotMissingError extends PatchbayError {
  constructor(readonly slot: string) {
    super(
      "CDC_SLOT_MISSING",
      `replication slot ${JSON.stringify(slot)} does not exist but a position is stored: changes made since are not retained; reset the capture to copy the tables again`,
    );
  }
}

/** The slot fell further behind than the configured limit: capture stopped before the WAL fills the disk. */
export class CdcLagExceededError extends PatchbayError {
  constructor(
    readonly slot: string,
    readonly lagBytes: number,
    readonly maxLagBytes: number,
  ) {
    super(
      "CDC_LAG_EXCEEDED",
      `replication slot ${JSON.stringify(slot)} is ${lagBytes} bytes behind (limit ${maxLagBytes}): capture stopped`,
    );
  }
}

/** The replication stream failed or sent something this client does not understand. Retryable. */
export class CdcStreamError extends PatchbayError {
  constructor(message: string, options: PatchbayErrorOptions = {}) {
    super("CDC_STREAM", message, { retryable: true, ...options });
  }
}

declare module "../../../core/errors.js" {
  interface PatchbayErrorCodes {
    CDC_WAL_LEVEL: CdcWalLevelError;
    CDC_NO_SLOTS: CdcNoSlotsError;
    CDC_REPLICA_IDENTITY: CdcReplicaIdentityError;
    CDC_SLOT_MISSING: CdcSlotMissingError;
    CDC_LAG_EXCEEDED: CdcLagExceededError;
    CDC_STREAM: CdcStreamError;
  }
}
