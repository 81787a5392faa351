import type { Migration } from "../../store/migrations.js";

/** The record of every sync pipeline run (`patchbay sync status`). */
export const sqliteSyncMigration = (version: number): Migration => ({
  version,
  name: "sync-runs",
  sql: `
    CREATE TABLE patchbay_sync_runs (
      id TEXT PRIMARY KEY,
      pipeline TEXT NOT NULL,
      mode TEXT NOT NULL,
      status TEXT NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'cancelled', 'abandoned')),
      started_at INTEGER NOT NULL,
      finished_at INTEGER,
      rows_read INTEGER NOT NULL,
      rows_written INTEGER NOT NULL,
      rows_deleted INTEGER NOT NULL,
      rows_quarantined INTEGER NOT NULL,
      batches INTEGER NOT NULL,
      cursor_before TEXT,
      cursor_after TEXT,
      error TEXT,
      host TEXT NOT NULL,
      pid INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX patchbay_sync_runs_pipeline_started ON patchbay_sync_runs (pipeline, started_at);
    CREATE INDEX patchbay_sync_runs_started ON patchbay_sync_runs (started_at);
  `,
});
