/**
 * A test event for one endpoint: a real message and delivery, sent by the normal worker (signed,
 * retried, logged attempt by attempt), so an operator sees the whole path work or fail.
 */
import type { Clock } from "../core/clock.js";
import { createEnvelope } from "../core/envelope.js";
import { run } from "../store/dialect.js";
import type { SqlStore } from "../store/sql-store.js";
import { sql } from "../store/sql.js";
import { WebhookNotFoundError } from "./errors.js";
import { formatPayload, type WebhookPayloadFormat } from "./payload.js";
import { notifyWorkers, webhookTables } from "./tables.js";

/** The event type of a test event (`Webhooks.sendTest`). */
export const WEBHOOK_TEST_EVENT = "patchbay.webhook.test";

/** The data of a test event. */
export interface WebhookTestData {
  endpointId: string;
  /** Always true: the receiver can tell a test from a real event. */
  test: true;
}

/** Builds `sendTest`: writes the message and its one delivery (due now) in one transaction. */
export function createTestSender(
  store: SqlStore,
  deps: { clock: Clock; format: WebhookPayloadFormat; wake: () => void },
) {
  const d = store.dialect;
  const t = webhookTables(d);
  return async function sendTest(endpointId: string): Promise<{ messageId: string }> {
    const data: WebhookTestData = { endpointId, test: true };
    const event = createEnvelope(
      { type: WEBHOOK_TEST_EVENT, source: "/patchbay/webhooks", data },
      deps.clock,
    );
    const now = deps.clock.now();
    const payload = formatPayload(event, deps.format, now);
    await store.transaction(async (tx) => {
      const exists = await run(tx, d, sql`SELECT id FROM ${t.endpoints} WHERE id = ${endpointId}`);
      if (exists.rows.length === 0) {
        throw new WebhookNotFoundError(
          "WEBHOOK_ENDPOINT_NOT_FOUND",
          `no webhook endpoint ${endpointId}`,
          endpointId,
        );
      }
      await run(
        tx,
        d,
        sql`INSERT INTO ${t.messages} (id, event_type, payload, traceparent, created_at)
            VALUES (${event.id}, ${event.type}, ${payload}, ${null}, ${now})`,
      );
      await run(
        tx,
        d,
        sql`INSERT INTO ${t.deliveries} (endpoint_id, message_id, status, claims, attempts, round_start, next_attempt_at, created_at, updated_at)
            VALUES (${endpointId}, ${event.id}, 'pending', 0, 0, 0, ${now}, ${now}, ${now})`,
      );
      await notifyWorkers(tx, d);
      tx.afterCommit(deps.wake);
    });
    return { messageId: event.id };
  };
}
