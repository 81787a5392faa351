import type { Migration } from "../../store/migrations.js";

/** Tables of outbound webhooks: endpoints, messages (one per event), deliveries (one per endpoint and message), attempts. */
export const sqliteWebhooksMigration = (version: number): Migration => ({
  version,
  name: "webhooks",
  sql: `
    CREATE TABLE patchbay_webhook_endpoints (
      id TEXT PRIMARY KEY,
      url TEXT NOT NULL,
      description TEXT NOT NULL,
      events TEXT NOT NULL,
      status TEXT NOT NULL CHECK (status IN ('enabled', 'disabled')),
      disabled_reason TEXT,
      disabled_at INTEGER,
      secret TEXT NOT NULL,
      previous_secret TEXT,
      previous_secret_until INTEGER,
      concurrency INTEGER NOT NULL,
      rate_limit REAL,
      rate_tokens REAL NOT NULL,
      rate_at INTEGER NOT NULL,
      claimed_at INTEGER NOT NULL,
      failing_since INTEGER,
      last_success_at INTEGER,
      last_failure_at INTEGER,
      created_at INTEGER NOT NULL,
      updated_at INTEGER NOT NULL
    ) WITHOUT ROWID;

    CREATE TABLE patchbay_webhook_messages (
      id TEXT PRIMARY KEY,
      event_type TEXT NOT NULL,
      payload TEXT NOT NULL,
      traceparent TEXT,
      created_at INTEGER NOT NULL
    ) WITHOUT ROWID;

    CREATE TABLE patchbay_webhook_deliveries (
      seq INTEGER PRIMARY KEY AUTOINCREMENT,
      endpoint_id TEXT NOT NULL,
      message_id TEXT NOT NULL,
      status TEXT NOT NULL CHECK (status IN ('pending', 'sending', 'delivered', 'failed')),
      claims INTEGER NOT NULL,
      attempts INTEGER NOT NULL,
      round_start INTEGER NOT NULL,
      next_attempt_at INTEGER NOT NULL,
      last_status INTEGER,
      last_error TEXT,
      created_at INTEGER NOT NULL,
      updated_at INTEGER NOT NULL,
      delivered_at INTEGER,
      UNIQUE (endpoint_id, message_id)
    );
    CREATE INDEX patchbay_webhook_deliveries_due ON patchbay_webhook_deliveries (endpoint_id, next_attempt_at, seq)
      WHERE status IN ('pending', 'sending');
    CREATE INDEX patchbay_webhook_deliveries_updated ON patchbay_webhook_deliveries (endpoint_id, status, updated_at);
    CREATE INDEX patchbay_webhook_deliveries_message ON patchbay_webhook_deliveries (message_id);

    CREATE TABLE patchbay_webhook_attempts (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      endpoint_id TEXT NOT NULL,
      message_id TEXT NOT NULL,
      attempt INTEGER NOT NULL,
      started_at INTEGER NOT NULL,
      latency_ms INTEGER,
      status INTEGER,
      outcome TEXT NOT NULL CHECK (outcome IN ('succeeded', 'failed', 'unknown')),
      response_excerpt TEXT,
      error TEXT
    );
    CREATE INDEX patchbay_webhook_attempts_delivery ON patchbay_webhook_attempts (endpoint_id, message_id, attempt);
    CREATE INDEX patchbay_webhook_attempts_started ON patchbay_webhook_attempts (started_at);
  `,
});
