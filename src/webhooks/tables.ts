import type { SqlExecutor } from "../store/contracts.js";
import { run, type SqlDialect } from "../store/dialect.js";
import { raw, type RawSql } from "../store/sql.js";

/** The webhook tables of a store, quoted for its dialect. */
export interface WebhookTables {
  endpoints: RawSql;
  messages: RawSql;
  deliveries: RawSql;
  attempts: RawSql;
}

/** Quoted names of the webhook tables (created by the adapters' `webhooks` migration). */
export function webhookTables(dialect: SqlDialect): WebhookTables {
  return {
    endpoints: raw(dialect.table("webhook_endpoints")),
    messages: raw(dialect.table("webhook_messages")),
    deliveries: raw(dialect.table("webhook_deliveries")),
    attempts: raw(dialect.table("webhook_attempts")),
  };
}

/** The notification channel that wakes delivery workers in other processes (where the store has notifications). */
export const WAKE_CHANNEL = "patchbay_webhooks";

/** Wakes workers in other processes after the transaction commits (a no-op without notifications). */
export async function notifyWorkers(executor: SqlExecutor, dialect: SqlDialect): Promise<void> {
  const notify = dialect.roles.notify;
  if (notify) await run(executor, dialect, notify.signal(WAKE_CHANNEL, ""));
}

/** A nullable integer column as a number or undefined. */
export function optionalInt(value: unknown): number | undefined {
  return value === null || value === undefined ? undefined : Number(value);
}
