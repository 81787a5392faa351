import type { Migration } from "../../store/migrations.js";

/** The record of every sync pipeline run (`patchbay sync status`). `{{schema}}` is replaced. */
export const postgresSyncMigration = (version: number): Migration => ({
  version,
  name: "sync-runs",
  sql: `
    CREATE TABLE {{schema}}.sync_runs (
      id text PRIMARY KEY,
      pipeline text NOT NULL,
      mode text NOT NULL,
      status text NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'cancelled', 'abandoned')),
      started_at bigint NOT NULL,
      finished_at bigint,
      rows_read bigint NOT NULL,
      rows_written bigint NOT NULL,
      rows_deleted bigint NOT NULL,
      rows_quarantined bigint NOT NULL,
      batches integer NOT NULL,
      cursor_before jsonb,
      cursor_after jsonb,
      error jsonb,
      host text NOT NULL,
      pid integer NOT NULL
    );
    CREATE INDEX sync_runs_pipeline_started ON {{schema}}.sync_runs (pipeline, started_at);
    CREATE INDEX sync_runs_started ON {{schema}}.sync_runs (started_at);
  `,
});
