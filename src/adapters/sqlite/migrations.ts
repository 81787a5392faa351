import { assertMigrationList, type Migration } from "../../store/migrations.js";
import { sqliteSyncMigration } from "./sync-schema.js";

/** SQLite schema, numbered. Tables are prefixed `patchbay_` so they can share a file with the app's own. */
export const sqliteMigrations: readonly Migration[] = [
  {
    version: 1,
    name: "state-and-idempotency",
    sql: `
      CREATE TABLE patchbay_state (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        version INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
      ) WITHOUT ROWID;

      CREATE TABLE patchbay_idempotency (
        scope TEXT NOT NULL,
        key TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('in_flight', 'complete')),
        response TEXT,
        token TEXT NOT NULL,
        generation INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        locked_until INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        PRIMARY KEY (scope, key)
      ) WITHOUT ROWID;
      CREATE INDEX patchbay_idempotency_expires_at ON patchbay_idempotency (expires_at);
    `,
  },
  sqliteSyncMigration(2),
];
assertMigrationList(sqliteMigrations);
