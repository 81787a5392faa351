import type { Migration } from "../../store/migrations.js";

/** Tables of the saga runner: one row per instance, one per step and phase. */
export const sqliteSagaMigration = (version: number): Migration => ({
  version,
  name: "sagas",
  sql: `
    CREATE TABLE patchbay_saga_instances (
      id TEXT PRIMARY KEY,
      name TEXT NOT NULL,
      version INTEGER NOT NULL,
      input TEXT NOT NULL,
      status TEXT NOT NULL CHECK (status IN ('running', 'completed', 'compensating', 'compensated', 'failed', 'resolved')),
      step INTEGER NOT NULL,
      attempt INTEGER NOT NULL,
      claim INTEGER NOT NULL,
      owner TEXT,
      run_at INTEGER NOT NULL,
      deadline INTEGER,
      last_delay INTEGER,
      reason TEXT,
      failure TEXT,
      note TEXT,
      created_at INTEGER NOT NULL,
      updated_at INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX patchbay_saga_instances_due ON patchbay_saga_instances (run_at)
      WHERE status IN ('running', 'compensating');
    CREATE INDEX patchbay_saga_instances_status ON patchbay_saga_instances (status, created_at);

    CREATE TABLE patchbay_saga_steps (
      saga_id TEXT NOT NULL,
      idx INTEGER NOT NULL,
      phase TEXT NOT NULL CHECK (phase IN ('run', 'compensate')),
      name TEXT NOT NULL,
      status TEXT NOT NULL CHECK (status IN ('running', 'retrying', 'succeeded', 'failed', 'skipped')),
      result TEXT,
      error TEXT,
      attempts INTEGER NOT NULL,
      started_at INTEGER NOT NULL,
      finished_at INTEGER,
      note TEXT,
      PRIMARY KEY (saga_id, idx, phase)
    ) WITHOUT ROWID;
  `,
});

/**
 * The saga list's order without a status filter (`created_at DESC, id DESC`, the console's
 * cursor): an index of its own, so the newest page reads 50 rows instead of sorting every instance.
 */
export const sqliteSagaCreatedMigration = (version: number): Migration => ({
  version,
  name: "sagas-created",
  sql: `CREATE INDEX patchbay_saga_instances_created ON patchbay_saga_instances (created_at, id);`,
});
