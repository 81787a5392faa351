import type { Migration } from "../../store/migrations.js";

/** Tables of outbound webhooks: endpoints, messages (one per event), deliveries (one per endpoint and message), attempts. `{{schema}}` is replaced. */
export const postgresWebhooksMigration = (version: number): Migration => ({
  version,
  name: "webhooks",
  sql: `
    CREATE TABLE {{schema}}.webhook_endpoints (
      id text PRIMARY KEY,
      url text NOT NULL,
      description text NOT NULL,
      events jsonb NOT NULL,
      status text NOT NULL CHECK (status IN ('enabled', 'disabled')),
      disabled_reason text,
      disabled_at bigint,
      secret text NOT NULL,
      previous_secret text,
      previous_secret_until bigint,
      concurrency integer NOT NULL,
      rate_limit double precision,
      rate_tokens double precision NOT NULL,
      rate_at bigint NOT NULL,
      claimed_at bigint NOT NULL,
      failing_since bigint,
      last_success_at bigint,
      last_failure_at bigint,
      created_at bigint NOT NULL,
      updated_at bigint NOT NULL
    );

    CREATE TABLE {{schema}}.webhook_messages (
      id text PRIMARY KEY,
      event_type text NOT NULL,
      payload text NOT NULL,
      traceparent text,
      created_at bigint NOT NULL
    );

    CREATE TABLE {{schema}}.webhook_deliveries (
      seq bigserial PRIMARY KEY,
      endpoint_id text NOT NULL,
      message_id text NOT NULL,
      status text NOT NULL CHECK (status IN ('pending', 'sending', 'delivered', 'failed')),
      claims integer NOT NULL,
      attempts integer NOT NULL,
      round_start integer NOT NULL,
      next_attempt_at bigint NOT NULL,
      last_status integer,
      last_error jsonb,
      created_at bigint NOT NULL,
      updated_at bigint NOT NULL,
      delivered_at bigint,
      UNIQUE (endpoint_id, message_id)
    );
    CREATE INDEX webhook_deliveries_due ON {{schema}}.webhook_deliveries (endpoint_id, next_attempt_at, seq)
      WHERE status IN ('pending', 'sending');
    CREATE INDEX webhook_deliveries_updated ON {{schema}}.webhook_deliveries (endpoint_id, status, updated_at);
    CREATE INDEX webhook_deliveries_message ON {{schema}}.webhook_deliveries (message_id);

    CREATE TABLE {{schema}}.webhook_attempts (
      id bigserial PRIMARY KEY,
      endpoint_id text NOT NULL,
      message_id text NOT NULL,
      attempt integer NOT NULL,
      started_at bigint NOT NULL,
      latency_ms integer,
      status integer,
      outcome text NOT NULL CHECK (outcome IN ('succeeded', 'failed', 'unknown')),
      response_excerpt text,
      error jsonb
    );
    CREATE INDEX webhook_attempts_delivery ON {{schema}}.webhook_attempts (endpoint_id, message_id, attempt);
    CREATE INDEX webhook_attempts_started ON {{schema}}.webhook_attempts (started_at);
  `,
});
