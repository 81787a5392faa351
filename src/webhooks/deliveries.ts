/**
 * Deliveries (one per endpoint and message) and their attempt log: listing, inspecting, replaying
 * one message and recovering an endpoint's failed messages.
 */
import type { Clock } from "../core/clock.js";
import { InvalidArgumentError } from "../core/errors.js";
import { int, run } from "../store/dialect.js";
import type { SqlStore } from "../store/sql-store.js";
import { join, raw, sql, type SqlStatement } from "../store/sql.js";
import { WebhookNotFoundError } from "./errors.js";
import { notifyWorkers, optionalInt, webhookTables } from "./tables.js";

/** Where a delivery stands. `sending` is claimed by a worker (or was, by one that died: it comes back after the lease). */
export type DeliveryStatus = "pending" | "sending" | "delivered" | "failed";

/** Every {@link DeliveryStatus}. */
export const DELIVERY_STATUSES: readonly DeliveryStatus[] = ["pending", "sending", "delivered", "failed"];

/** One message to one endpoint. */
export interface WebhookDelivery {
  endpointId: string;
  /** The `webhook-id`: the event's id. */
  messageId: string;
  eventType: string;
  status: DeliveryStatus;
  /** Attempts made so far (all rounds). */
  attempts: number;
  /** When the next attempt is due (pending), or the lease ends (sending). */
  nextAttemptAt: number | undefined;
  lastStatus: number | undefined;
  lastError: Record<string, unknown> | undefined;
  createdAt: number;
  updatedAt: number;
  deliveredAt: number | undefined;
}

/** One logged attempt. */
export interface WebhookAttempt {
  endpointId: string;
  messageId: string;
  /** 1 for the first attempt of the delivery; keeps counting across replays. */
  attempt: number;
  /** When it started, ms since epoch. */
  at: number;
  latencyMs: number | undefined;
  /** The HTTP status, when the receiver answered. */
  status: number | undefined;
  /** `unknown`: the sender died before recording the outcome (the request may have arrived). */
  outcome: "succeeded" | "failed" | "unknown";
  /** The first bytes of the response body. */
  responseExcerpt: string | undefined;
  /** What went wrong: `code`, `message` and the error's fields. */
  error: Record<string, unknown> | undefined;
}

/** A stored message: the body sent (and signed) on every attempt. */
export interface WebhookMessage {
  id: string;
  eventType: string;
  /** The JSON body, exactly as sent. */
  payload: string;
  createdAt: number;
}

/** Selects deliveries; every field optional. */
export interface DeliveryFilter {
  endpointId?: string;
  messageId?: string;
  status?: DeliveryStatus;
  /** Last changed at or after this time (ms since epoch). */
  since?: number;
  /** Default 100. */
  limit?: number;
}

/** The deliveries API. */
export interface WebhookDeliveries {
  /** Newest first. A status other than a {@link DeliveryStatus} is `INVALID_ARGUMENT`. */
  list(filter?: DeliveryFilter): Promise<WebhookDelivery[]>;
  get(endpointId: string, messageId: string): Promise<WebhookDelivery | undefined>;
  /** The attempt log of one delivery, oldest first. */
  attempts(endpointId: string, messageId: string): Promise<WebhookAttempt[]>;
  message(messageId: string): Promise<WebhookMessage | undefined>;
  /**
   * Sends a message again, with a fresh retry schedule: to every endpoint it was delivered to (or
   * failed for), or to one endpoint — which need not have had it before. The `webhook-id` stays
   * the same, so receivers that already processed it can recognise it. Returns how many
   * deliveries were scheduled (a delivery being sent right now is left alone).
   */
  replay(messageId: string, options?: { endpointId?: string }): Promise<number>;
  /**
   * Schedules every failed delivery of the endpoint whose message came at or after `since` again,
   * with a fresh schedule. Returns how many; an endpoint that does not exist is
   * `WEBHOOK_ENDPOINT_NOT_FOUND`.
   */
  recover(endpointId: string, options: { since: number | Date }): Promise<number>;
  /**
   * Deletes delivered deliveries (and, with `failed: true`, failed ones) last changed before
   * `before`, with their attempt logs and the messages no delivery refers to any more. Returns
   * how many deliveries went. Pending and in-flight ones are never touched.
   */
  purge(options: { before: number | Date; failed?: boolean }): Promise<number>;
}

interface DeliveryRow {
  endpoint_id: string;
  message_id: string;
  event_type: string;
  status: DeliveryStatus;
  attempts: unknown;
  next_attempt_at: unknown;
  last_status: unknown;
  last_error: unknown;
  created_at: unknown;
  updated_at: unknown;
  delivered_at: unknown;
}

interface AttemptRow {
  endpoint_id: string;
  message_id: string;
  attempt: unknown;
  started_at: unknown;
  latency_ms: unknown;
  status: unknown;
  outcome: WebhookAttempt["outcome"];
  response_excerpt: string | null;
  error: unknown;
}

/** The store-backed {@link WebhookDeliveries}; `wake` nudges this process's worker. */
export function createWebhookDeliveries(
  store: SqlStore,
  deps: { clock: Clock; wake: () => void },
): WebhookDeliveries {
  const d = store.dialect;
  const t = webhookTables(d);
  const { clock } = deps;
  const json = (v: unknown) =>
    v === null || v === undefined ? undefined : (d.decodeJson(v) as Record<string, unknown>);

  const toDelivery = (r: DeliveryRow): WebhookDelivery => ({
    endpointId: r.endpoint_id,
    messageId: r.message_id,
    eventType: r.event_type,
    status: r.status,
    attempts: int(r.attempts),
    nextAttemptAt:
      r.status === "pending" || r.status === "sending" ? optionalInt(r.next_attempt_at) : undefined,
    lastStatus: optionalInt(r.last_status),
    lastError: json(r.last_error),
    createdAt: int(r.created_at),
    updatedAt: int(r.updated_at),
    deliveredAt: optionalInt(r.delivered_at),
  });

  const selectDeliveries = (where: SqlStatement, limit: number) =>
    run<DeliveryRow>(
      store,
      d,
      join(
        sql`SELECT w.endpoint_id, w.message_id, m.event_type, w.status, w.attempts, w.next_attempt_at, w.last_status,
              w.last_error, w.created_at, w.updated_at, w.delivered_at
            FROM ${t.deliveries} w JOIN ${t.messages} m ON m.id = w.message_id WHERE 1 = 1`,
        where,
        sql` ORDER BY w.updated_at DESC, w.seq DESC LIMIT ${limit}`,
      ),
    );

  /** Puts the selected deliveries back to pending with a fresh schedule, in one transaction. */
  const reschedule = async (where: SqlStatement): Promise<number> => {
    const now = clock.now();
    const count = await store.transaction(async (tx) => {
      const { rowCount } = await run(
        tx,
        d,
        join(
          sql`UPDATE ${t.deliveries} SET status = 'pending', next_attempt_at = ${now}, round_start = claims,
                updated_at = ${now}
              WHERE status <> 'sending'`,
          where,
        ),
      );
      if (rowCount > 0) await notifyWorkers(tx, d);
      return rowCount;
    });
    if (count > 0) deps.wake();
    return count;
  };

  return {
    async list(filter = {}) {
      const limit = filter.limit ?? 100;
      if (!Number.isInteger(limit) || limit < 1) {
        throw new InvalidArgumentError("limit is a positive integer", "limit");
      }
      const parts: SqlStatement[] = [];
      if (filter.endpointId !== undefined) parts.push(sql` AND w.endpoint_id = ${filter.endpointId}`);
      if (filter.messageId !== undefined) parts.push(sql` AND w.message_id = ${filter.messageId}`);
      if (filter.status !== undefined) {
        // An unknown status (a typo) would select nothing and read as "none failed".
        if (!DELIVERY_STATUSES.includes(filter.status)) {
          throw new InvalidArgumentError(
            `status must be one of ${DELIVERY_STATUSES.join(", ")}, got ${JSON.stringify(filter.status)}`,
            "status",
          );
        }
        parts.push(sql` AND w.status = ${filter.status}`);
      }
      if (filter.since !== undefined) parts.push(sql` AND w.updated_at >= ${filter.since}`);
      const { rows } = await selectDeliveries(join(sql``, ...parts), limit);
      return rows.map(toDelivery);
    },

    async get(endpointId, messageId) {
      const { rows } = await selectDeliveries(
        sql` AND w.endpoint_id = ${endpointId} AND w.message_id = ${messageId}`,
        1,
      );
      return rows[0] ? toDelivery(rows[0]) : undefined;
    },

    async attempts(endpointId, messageId) {
      const { rows } = await run<AttemptRow>(
        store,
        d,
        sql`SELECT * FROM ${t.attempts} WHERE endpoint_id = ${endpointId} AND message_id = ${messageId}
            ORDER BY attempt, id`,
      );
      return rows.map((r) => ({
        endpointId: r.endpoint_id,
        messageId: r.message_id,
        attempt: int(r.attempt),
        at: int(r.started_at),
        latencyMs: optionalInt(r.latency_ms),
        status: optionalInt(r.status),
        outcome: r.outcome,
        responseExcerpt: r.response_excerpt ?? undefined,
        error: json(r.error),
      }));
    },

    async message(messageId) {
      const { rows } = await run<{ id: string; event_type: string; payload: string; created_at: unknown }>(
        store,
        d,
        sql`SELECT id, event_type, payload, created_at FROM ${t.messages} WHERE id = ${messageId}`,
      );
      const r = rows[0];
      return r
        ? { id: r.id, eventType: r.event_type, payload: r.payload, createdAt: int(r.created_at) }
        : undefined;
    },

    async replay(messageId, options = {}) {
      const { rows } = await run(store, d, sql`SELECT id FROM ${t.messages} WHERE id = ${messageId}`);
      if (rows.length === 0) {
        throw new WebhookNotFoundError(
          "WEBHOOK_DELIVERY_NOT_FOUND",
          `no webhook message ${messageId}`,
          messageId,
        );
      }
      const endpointId = options.endpointId;
      if (endpointId === undefined) return reschedule(sql` AND message_id = ${messageId}`);
      const now = clock.now();
      // To one endpoint: it may never have had this message (created later, or filtered it out).
      const created = await store.transaction(async (tx) => {
        const exists = await run(tx, d, sql`SELECT id FROM ${t.endpoints} WHERE id = ${endpointId}`);
        if (exists.rows.length === 0) {
          throw new WebhookNotFoundError(
            "WEBHOOK_ENDPOINT_NOT_FOUND",
            `no webhook endpoint ${endpointId}`,
            endpointId,
          );
        }
        const { rowCount } = await run(
          tx,
          d,
          d.roles.rows.insertIgnore(
            t.deliveries,
            "endpoint_id, message_id, status, claims, attempts, round_start, next_attempt_at, created_at, updated_at",
            [sql`(${endpointId}, ${messageId}, 'pending', 0, 0, 0, ${now}, ${now}, ${now})`],
            "endpoint_id, message_id",
          ),
        );
        if (rowCount > 0) await notifyWorkers(tx, d);
        return rowCount;
      });
      if (created > 0) {
        deps.wake();
        return created;
      }
      return reschedule(sql` AND message_id = ${messageId} AND endpoint_id = ${endpointId}`);
    },

    async recover(endpointId, options) {
      const since = options?.since instanceof Date ? options.since.getTime() : options?.since;
      if (typeof since !== "number" || !Number.isFinite(since)) {
        throw new InvalidArgumentError("recover needs since: a time (ms since epoch or a Date)", "since");
      }
      // An endpoint that does not exist (a mistyped id) is an error, not "0 recovered".
      const exists = await run(store, d, sql`SELECT id FROM ${t.endpoints} WHERE id = ${endpointId}`);
      if (exists.rows.length === 0) {
        throw new WebhookNotFoundError(
          "WEBHOOK_ENDPOINT_NOT_FOUND",
          `no webhook endpoint ${endpointId}`,
          endpointId,
        );
      }
      return reschedule(
        sql` AND endpoint_id = ${endpointId} AND status = 'failed' AND created_at >= ${since}`,
      );
    },

    async purge(options) {
      const before = options?.before instanceof Date ? options.before.getTime() : options?.before;
      if (typeof before !== "number" || !Number.isFinite(before)) {
        throw new InvalidArgumentError("purge needs before: a time (ms since epoch or a Date)", "before");
      }
      const statuses = options.failed === true ? raw("('delivered', 'failed')") : raw("('delivered')");
      return store.transaction(async (tx) => {
        const done = sql`SELECT endpoint_id, message_id FROM ${t.deliveries} WHERE status IN ${statuses} AND updated_at < ${before}`;
        await run(
          tx,
          d,
          join(
            sql`DELETE FROM ${t.attempts} WHERE EXISTS (SELECT 1 FROM (`,
            done,
            sql`) x WHERE x.endpoint_id = ${t.attempts}.endpoint_id AND x.message_id = ${t.attempts}.message_id)`,
          ),
        );
        const { rowCount } = await run(
          tx,
          d,
          sql`DELETE FROM ${t.deliveries} WHERE status IN ${statuses} AND updated_at < ${before}`,
        );
        await run(
          tx,
          d,
          sql`DELETE FROM ${t.messages} WHERE NOT EXISTS (SELECT 1 FROM ${t.deliveries} w WHERE w.message_id = ${t.messages}.id)`,
        );
        return rowCount;
      });
    },
  };
}
