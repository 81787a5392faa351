import type { Migration } from "../../store/migrations.js";

/** Tables of the event bus's local transport, inbox, dead letters and outbox. `{{schema}}` is replaced. */
export const postgresBusMigration = (version: number): Migration => ({
  version,
  name: "event-bus",
  sql: `
    CREATE TABLE {{schema}}.bus_bindings (
      grp text NOT NULL,
      pattern text NOT NULL,
      PRIMARY KEY (grp, pattern)
    );

    CREATE TABLE {{schema}}.bus_jobs (
      id bigserial PRIMARY KEY,
      grp text NOT NULL,
      message_id text NOT NULL,
      type text NOT NULL,
      key text,
      body text NOT NULL,
      headers jsonb NOT NULL,
      attempt integer NOT NULL DEFAULT 0,
      run_at bigint NOT NULL,
      first_failed_at bigint,
      last_error jsonb,
      created_at bigint NOT NULL,
      UNIQUE (grp, message_id)
    );
    CREATE INDEX bus_jobs_due ON {{schema}}.bus_jobs (grp, run_at, id);

    CREATE TABLE {{schema}}.bus_inbox (
      grp text NOT NULL,
      message_id text NOT NULL,
      processed_at bigint NOT NULL,
      PRIMARY KEY (grp, message_id)
    );
    CREATE INDEX bus_inbox_processed_at ON {{schema}}.bus_inbox (processed_at);

    CREATE TABLE {{schema}}.bus_dead_letters (
      grp text NOT NULL,
      message_id text NOT NULL,
      type text NOT NULL,
      key text,
      body text NOT NULL,
      headers jsonb NOT NULL,
      error jsonb NOT NULL,
      attempts integer NOT NULL,
      first_failed_at bigint NOT NULL,
      last_failed_at bigint NOT NULL,
      PRIMARY KEY (grp, message_id)
    );

    CREATE TABLE {{schema}}.bus_outbox (
      id bigserial PRIMARY KEY,
      message_id text NOT NULL,
      type text NOT NULL,
      key text,
      body text NOT NULL,
      headers jsonb NOT NULL,
      deliver_at bigint NOT NULL,
      created_at bigint NOT NULL
    );
  `,
});
