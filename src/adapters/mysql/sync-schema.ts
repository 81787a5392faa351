import type { Migration } from "../../store/migrations.js";

/** The record of every sync pipeline run (`patchbay sync status`). */
export const mysqlSyncMigration = (version: number): Migration => ({
  version,
  name: "sync-runs",
  sql: `
    CREATE TABLE IF NOT EXISTS {{t}}sync_runs (
      id VARCHAR(255) NOT NULL PRIMARY KEY,
      pipeline VARCHAR(255) NOT NULL,
      mode VARCHAR(32) NOT NULL,
      status VARCHAR(16) NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'cancelled', 'abandoned')),
      started_at BIGINT NOT NULL,
      finished_at BIGINT,
      rows_read BIGINT NOT NULL,
      rows_written BIGINT NOT NULL,
      rows_deleted BIGINT NOT NULL,
      rows_quarantined BIGINT NOT NULL,
      batches INT NOT NULL,
      cursor_before JSON,
      cursor_after JSON,
      error JSON,
      host TEXT NOT NULL,
      pid INT NOT NULL,
      INDEX sync_runs_pipeline_started (pipeline, started_at),
      INDEX sync_runs_started (started_at)
    ) {{options}};
  `,
});
