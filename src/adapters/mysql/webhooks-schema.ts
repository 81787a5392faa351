import type { Migration } from "../../store/migrations.js";

/** Tables of outbound webhooks: endpoints, messages (one per event), deliveries (one per endpoint and message), attempts. */
export const mysqlWebhooksMigration = (version: number): Migration => ({
  version,
  name: "webhooks",
  sql: `
    CREATE TABLE IF NOT EXISTS {{t}}webhook_endpoints (
      id VARCHAR(255) NOT NULL PRIMARY KEY,
      url TEXT NOT NULL,
      description TEXT NOT NULL,
      events JSON NOT NULL,
      status VARCHAR(16) NOT NULL CHECK (status IN ('enabled', 'disabled')),
      disabled_reason TEXT,
      disabled_at BIGINT,
      secret TEXT NOT NULL,
      previous_secret TEXT,
      previous_secret_until BIGINT,
      concurrency INT NOT NULL,
      rate_limit DOUBLE,
      rate_tokens DOUBLE NOT NULL,
      rate_at BIGINT NOT NULL,
      claimed_at BIGINT NOT NULL,
      failing_since BIGINT,
      last_success_at BIGINT,
      last_failure_at BIGINT,
      created_at BIGINT NOT NULL,
      updated_at BIGINT NOT NULL
    ) {{options}};

    CREATE TABLE IF NOT EXISTS {{t}}webhook_messages (
      id VARCHAR(255) NOT NULL PRIMARY KEY,
      event_type TEXT NOT NULL,
      payload LONGTEXT NOT NULL,
      traceparent TEXT,
      created_at BIGINT NOT NULL
    ) {{options}};

    CREATE TABLE IF NOT EXISTS {{t}}webhook_deliveries (
      seq BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
      endpoint_id VARCHAR(255) NOT NULL,
      message_id VARCHAR(255) NOT NULL,
      status VARCHAR(16) NOT NULL CHECK (status IN ('pending', 'sending', 'delivered', 'failed')),
      claims INT NOT NULL,
      attempts INT NOT NULL,
      round_start INT NOT NULL,
      next_attempt_at BIGINT NOT NULL,
      last_status INT,
      last_error JSON,
      created_at BIGINT NOT NULL,
      updated_at BIGINT NOT NULL,
      delivered_at BIGINT,
      UNIQUE KEY webhook_deliveries_pair (endpoint_id, message_id),
      INDEX webhook_deliveries_due (endpoint_id, next_attempt_at, seq),
      INDEX webhook_deliveries_updated (endpoint_id, status, updated_at),
      INDEX webhook_deliveries_message (message_id)
    ) {{options}};

    CREATE TABLE IF NOT EXISTS {{t}}webhook_attempts (
      id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
      endpoint_id VARCHAR(255) NOT NULL,
      message_id VARCHAR(255) NOT NULL,
      attempt INT NOT NULL,
      started_at BIGINT NOT NULL,
      latency_ms INT,
      status INT,
      outcome VARCHAR(16) NOT NULL CHECK (outcome IN ('succeeded', 'failed', 'unknown')),
      response_excerpt TEXT,
      error JSON,
      INDEX webhook_attempts_delivery (endpoint_id, message_id, attempt),
      INDEX webhook_attempts_started (started_at)
    ) {{options}};
  `,
});
