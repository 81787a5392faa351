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

/**
 * The inbox keyed by message id first. A check looks up many ids of one group at once
 * (`grp = $1 AND message_id = ANY($2)`). With the group first, a table whose statistics are stale
 * — a new one, or one that grew since autovacuum last analysed it — is planned, from about 40 ids
 * on, as a scan of the group's whole index range filtered by id: 3 ms instead of 0.3 ms for 52
 * ids among 20,000 rows, and growing with the table. With the id first, every plan is a probe
 * per id. `ON CONFLICT (grp, message_id)` still finds the key (column order does not matter).
 */
export const postgresBusInboxKeyMigration = (version: number): Migration => ({
  version,
  name: "event-bus-inbox-key",
  sql: `
    ALTER TABLE {{schema}}.bus_inbox
      DROP CONSTRAINT bus_inbox_pkey,
      ADD PRIMARY KEY (message_id, grp);
  `,
});

/**
 * Whether a queued message was published once under an id made for it (`TransportMessage.fresh`):
 * its first delivery skips the inbox check. Rows queued before this migration count as not.
 */
export const postgresBusFreshMigration = (version: number): Migration => ({
  version,
  name: "event-bus-fresh",
  sql: `ALTER TABLE {{schema}}.bus_jobs ADD COLUMN fresh smallint NOT NULL DEFAULT 0;`,
});

/**
 * Dead-letter bodies as bytes: a message that failed can hold what no text column can (a NUL
 * character from a foreign producer), and its dead letter must still be written — a letter that
 * cannot be stored would be retried forever. New letters keep `body` empty and the body's UTF-8
 * bytes in `body_bytes`; letters written before keep their text in `body`.
 */
export const postgresBusDeadLetterBytesMigration = (version: number): Migration => ({
  version,
  name: "event-bus-dead-letter-bytes",
  sql: `ALTER TABLE {{schema}}.bus_dead_letters ADD COLUMN body_bytes bytea;`,
});

/**
 * Which transport each dead letter came from (`Transport.name`), so a replay can refuse to send
 * it through another (`patchbay dlq replay` without the app's bus). Older rows keep NULL.
 */
export const postgresBusDeadLetterTransportMigration = (version: number): Migration => ({
  version,
  name: "event-bus-dead-letter-transport",
  sql: `ALTER TABLE {{schema}}.bus_dead_letters ADD COLUMN transport text;`,
});

/**
 * Indexes of the console's dead-letter list: in its order (`last_failed_at, grp, message_id`),
 * so a page, a time filter and a keyset cursor read only the rows shown instead of sorting the
 * whole table; and by group in that order, for a page filtered by group.
 */
export const postgresBusDeadLetterOrderMigration = (version: number): Migration => ({
  version,
  name: "event-bus-dead-letter-order",
  sql: `
    CREATE INDEX bus_dead_letters_failed ON {{schema}}.bus_dead_letters (last_failed_at, grp, message_id);
    CREATE INDEX bus_dead_letters_group ON {{schema}}.bus_dead_letters (grp, last_failed_at, message_id);
  `,
});

/**
 * Consumer groups paused by hand (`bus.pause`, the console, `patchbay bus pause`): every bus
 * sharing the store stops consuming a group listed here until it is resumed.
 */
export const postgresBusPausedGroupsMigration = (version: number): Migration => ({
  version,
  name: "event-bus-paused-groups",
  sql: `
    CREATE TABLE {{schema}}.bus_paused_groups (
      grp text PRIMARY KEY,
      paused_at bigint NOT NULL,
      paused_by text
    );
  `,
});
