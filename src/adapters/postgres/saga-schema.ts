import type { Migration } from "../../store/migrations.js";

/** Tables of the saga runner: one row per instance, one per step and phase. `{{schema}}` is replaced. */
export const postgresSagaMigration = (version: number): Migration => ({
  version,
  name: "sagas",
  sql: `
    CREATE TABLE {{schema}}.saga_instances (
      id text PRIMARY KEY,
      name text NOT NULL,
      version integer NOT NULL,
      input jsonb NOT NULL,
      status text NOT NULL CHECK (status IN ('running', 'completed', 'compensating', 'compensated', 'failed', 'resolved')),
      step integer NOT NULL,
      attempt integer NOT NULL,
      claim integer NOT NULL,
      owner text,
      run_at bigint NOT NULL,
      deadline bigint,
      last_delay bigint,
      reason jsonb,
      failure jsonb,
      note text,
      created_at bigint NOT NULL,
      updated_at bigint NOT NULL
    ) WITH (fillfactor = 80);
    CREATE INDEX saga_instances_due ON {{schema}}.saga_instances (run_at)
      WHERE status IN ('running', 'compensating');
    CREATE INDEX saga_instances_status ON {{schema}}.saga_instances (status, created_at);

    CREATE TABLE {{schema}}.saga_steps (
      saga_id text NOT NULL,
      idx integer NOT NULL,
      phase text NOT NULL CHECK (phase IN ('run', 'compensate')),
      name text NOT NULL,
      status text NOT NULL CHECK (status IN ('running', 'retrying', 'succeeded', 'failed', 'skipped')),
      result jsonb,
      error jsonb,
      attempts integer NOT NULL,
      started_at bigint NOT NULL,
      finished_at bigint,
      note text,
      PRIMARY KEY (saga_id, idx, phase)
    );
  `,
});

/**
 * The saga list's order without a status filter (`created_at DESC, id DESC`, the console's
 * cursor): an index of its own, so the newest page reads 50 rows instead of sorting every instance.
 */
export const postgresSagaCreatedMigration = (version: number): Migration => ({
  version,
  name: "sagas-created",
  sql: `CREATE INDEX saga_instances_created ON {{schema}}.saga_instances (created_at, id);`,
});
