import type { Migration } from "../../store/migrations.js";

/** Tables of the event bus's local transport, inbox, dead letters and outbox. */
export const sqliteBusMigration = (version: number): Migration => ({
  version,
  name: "event-bus",
  sql: `
    CREATE TABLE patchbay_bus_bindings (
      grp TEXT NOT NULL,
      pattern TEXT NOT NULL,
      PRIMARY KEY (grp, pattern)
    ) WITHOUT ROWID;

    CREATE TABLE patchbay_bus_jobs (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      grp TEXT NOT NULL,
      message_id TEXT NOT NULL,
      type TEXT NOT NULL,
      key TEXT,
      body TEXT NOT NULL,
      headers TEXT NOT NULL,
      attempt INTEGER NOT NULL DEFAULT 0,
      run_at INTEGER NOT NULL,
      first_failed_at INTEGER,
      last_error TEXT,
      created_at INTEGER NOT NULL,
      UNIQUE (grp, message_id)
    );
    CREATE INDEX patchbay_bus_jobs_due ON patchbay_bus_jobs (grp, run_at, id);

    CREATE TABLE patchbay_bus_inbox (
      grp TEXT NOT NULL,
      message_id TEXT NOT NULL,
      processed_at INTEGER NOT NULL,
      PRIMARY KEY (grp, message_id)
    ) WITHOUT ROWID;
    CREATE INDEX patchbay_bus_inbox_processed_at ON patchbay_bus_inbox (processed_at);

    CREATE TABLE patchbay_bus_dead_letters (
      grp TEXT NOT NULL,
      message_id TEXT NOT NULL,
      type TEXT NOT NULL,
      key TEXT,
      body TEXT NOT NULL,
      headers TEXT NOT NULL,
      error TEXT NOT NULL,
      attempts INTEGER NOT NULL,
      first_failed_at INTEGER NOT NULL,
      last_failed_at INTEGER NOT NULL,
      PRIMARY KEY (grp, message_id)
    ) WITHOUT ROWID;

    CREATE TABLE patchbay_bus_outbox (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      message_id TEXT NOT NULL,
      type TEXT NOT NULL,
      key TEXT,
      body TEXT NOT NULL,
      headers TEXT NOT NULL,
      deliver_at INTEGER NOT NULL,
      created_at INTEGER NOT NULL
    );
  `,
});

/**
 * Whether a queued message was published once under an id made for it (`TransportMessage.fresh`):
 * its first delivery skips the inbox check. Rows queued before this migration count as not.
 */
export const sqliteBusFreshMigration = (version: number): Migration => ({
  version,
  name: "event-bus-fresh",
  sql: `ALTER TABLE patchbay_bus_jobs ADD COLUMN fresh INTEGER NOT NULL DEFAULT 0;`,
});

/**
 * Dead-letter bodies as bytes, as on PostgreSQL (where a text column refuses a NUL character):
 * new letters keep `body` empty and the body's UTF-8 bytes in `body_bytes`.
 */
export const sqliteBusDeadLetterBytesMigration = (version: number): Migration => ({
  version,
  name: "event-bus-dead-letter-bytes",
  sql: `ALTER TABLE patchbay_bus_dead_letters ADD COLUMN body_bytes BLOB;`,
});

/**
 * Which transport each dead letter came from (`Transport.name`), so a replay can refuse to send
 * it through another (`patchbay dlq replay` without the app's bus). Older rows keep NULL.
 */
export const sqliteBusDeadLetterTransportMigration = (version: number): Migration => ({
  version,
  name: "event-bus-dead-letter-transport",
  sql: `ALTER TABLE patchbay_bus_dead_letters ADD COLUMN transport TEXT;`,
});

/**
 * Indexes of the console's dead-letter list: in its order (`last_failed_at, grp, message_id`),
 * so a page, a time filter and a keyset cursor read only the rows shown instead of sorting the
 * whole table; and by group in that order, for a page filtered by group.
 */
export const sqliteBusDeadLetterOrderMigration = (version: number): Migration => ({
  version,
  name: "event-bus-dead-letter-order",
  sql: `
    CREATE INDEX patchbay_bus_dead_letters_failed ON patchbay_bus_dead_letters (last_failed_at, grp, message_id);
    CREATE INDEX patchbay_bus_dead_letters_group ON patchbay_bus_dead_letters (grp, last_failed_at, message_id);
  `,
});

/**
 * Consumer groups paused by hand (`bus.pause`, the console, `patchbay bus pause`): every bus
 * sharing the store stops consuming a group listed here until it is resumed.
 */
export const sqliteBusPausedGroupsMigration = (version: number): Migration => ({
  version,
  name: "event-bus-paused-groups",
  sql: `
    CREATE TABLE patchbay_bus_paused_groups (
      grp TEXT PRIMARY KEY,
      paused_at INTEGER NOT NULL,
      paused_by TEXT
    ) WITHOUT ROWID;
  `,
});
