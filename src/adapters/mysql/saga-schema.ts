import type { Migration } from "../../store/migrations.js";

/** Tables of the saga runner: one row per instance, one per step and phase. */
export const mysqlSagaMigration = (version: number): Migration => ({
  version,
  name: "sagas",
  sql: `
    CREATE TABLE IF NOT EXISTS {{t}}saga_instances (
      id VARCHAR(255) NOT NULL PRIMARY KEY,
      name VARCHAR(255) NOT NULL,
      version INT NOT NULL,
      input JSON NOT NULL,
      status VARCHAR(16) NOT NULL CHECK (status IN ('running', 'completed', 'compensating', 'compensated', 'failed', 'resolved')),
      step INT NOT NULL,
      attempt INT NOT NULL,
      claim INT NOT NULL,
      owner TEXT,
      run_at BIGINT NOT NULL,
      deadline BIGINT,
      last_delay BIGINT,
      reason JSON,
      failure JSON,
      note TEXT,
      created_at BIGINT NOT NULL,
      updated_at BIGINT NOT NULL,
      INDEX saga_instances_due (status, run_at),
      INDEX saga_instances_status (status, created_at),
      INDEX saga_instances_created (created_at, id)
    ) {{options}};

    CREATE TABLE IF NOT EXISTS {{t}}saga_steps (
      saga_id VARCHAR(255) NOT NULL,
      idx INT NOT NULL,
      phase VARCHAR(16) NOT NULL CHECK (phase IN ('run', 'compensate')),
      name TEXT NOT NULL,
      status VARCHAR(16) NOT NULL CHECK (status IN ('running', 'retrying', 'succeeded', 'failed', 'skipped')),
      result JSON,
      error JSON,
      attempts INT NOT NULL,
      started_at BIGINT NOT NULL,
      finished_at BIGINT,
      note TEXT,
      PRIMARY KEY (saga_id, idx, phase)
    ) {{options}};
  `,
});
