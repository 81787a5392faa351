import type { Migration } from "../../store/migrations.js";

/**
 * Tables of the event bus's local transport, inbox, dead letters and outbox. Bodies are
 * `LONGTEXT` (a message may hold up to the bus's `maxMessageBytes`, 1 MiB by default; `TEXT`
 * stops at 64 KiB); a dead letter's body is kept as bytes (`body_bytes`), as on the other stores.
 */
export const mysqlBusMigration = (version: number): Migration => ({
  version,
  name: "event-bus",
  sql: `
    CREATE TABLE IF NOT EXISTS {{t}}bus_bindings (
      grp VARCHAR(255) NOT NULL,
      pattern VARCHAR(255) NOT NULL,
      PRIMARY KEY (grp, pattern)
    ) {{options}};

    CREATE TABLE IF NOT EXISTS {{t}}bus_jobs (
      id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
      grp VARCHAR(255) NOT NULL,
      message_id VARCHAR(255) NOT NULL,
      type TEXT NOT NULL,
      \`key\` TEXT,
      body LONGTEXT NOT NULL,
      headers JSON NOT NULL,
      attempt INT NOT NULL DEFAULT 0,
      fresh SMALLINT NOT NULL DEFAULT 0,
      run_at BIGINT NOT NULL,
      first_failed_at BIGINT,
      last_error JSON,
      created_at BIGINT NOT NULL,
      UNIQUE KEY bus_jobs_message (grp, message_id),
      INDEX bus_jobs_due (grp, run_at, id)
    ) {{options}};

    CREATE TABLE IF NOT EXISTS {{t}}bus_inbox (
      grp VARCHAR(255) NOT NULL,
      message_id VARCHAR(255) NOT NULL,
      processed_at BIGINT NOT NULL,
      PRIMARY KEY (message_id, grp),
      INDEX bus_inbox_processed_at (processed_at)
    ) {{options}};

    CREATE TABLE IF NOT EXISTS {{t}}bus_dead_letters (
      grp VARCHAR(255) NOT NULL,
      message_id VARCHAR(255) NOT NULL,
      type TEXT NOT NULL,
      \`key\` TEXT,
      body LONGTEXT NOT NULL,
      body_bytes LONGBLOB,
      headers JSON NOT NULL,
      error JSON NOT NULL,
      attempts INT NOT NULL,
      first_failed_at BIGINT NOT NULL,
      last_failed_at BIGINT NOT NULL,
      transport TEXT,
      PRIMARY KEY (grp, message_id),
      INDEX bus_dead_letters_failed (last_failed_at, grp, message_id),
      INDEX bus_dead_letters_group (grp, last_failed_at, message_id)
    ) {{options}};

    CREATE TABLE IF NOT EXISTS {{t}}bus_outbox (
      id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
      message_id VARCHAR(255) NOT NULL,
      type TEXT NOT NULL,
      \`key\` TEXT,
      body LONGTEXT NOT NULL,
      headers JSON NOT NULL,
      deliver_at BIGINT NOT NULL,
      created_at BIGINT NOT NULL
    ) {{options}};
  `,
});

/**
 * Consumer groups paused by hand (`bus.pause`, the console, `patchbay bus pause`): every bus
 * sharing the store stops consuming a group listed here until it is resumed.
 */
export const mysqlBusPausedGroupsMigration = (version: number): Migration => ({
  version,
  name: "event-bus-paused-groups",
  sql: `
    CREATE TABLE IF NOT EXISTS {{t}}bus_paused_groups (
      grp VARCHAR(255) NOT NULL PRIMARY KEY,
      paused_at BIGINT NOT NULL,
      paused_by TEXT
    ) {{options}};
  `,
});
