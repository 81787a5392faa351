/**
 * Fan-out: each published event becomes one durable delivery per matching endpoint.
 *
 * It runs as a bus subscription (group `patchbay.webhooks`, pattern `#`) whose handler writes the
 * message and its delivery rows in the handler's `ctx.tx`, together with the bus's inbox record —
 * so each event fans out exactly once, even when the bus redelivers it after a crash. Deliveries
 * are rows rather than one bus message per endpoint because delivery needs what a queue of
 * messages does not give: per-endpoint concurrency and rate limits across processes, a
 * schedule of hours, health that disables an endpoint, and replay / recover by endpoint and time.
 */
import type { CloudEvent } from "../core/envelope.js";
import type { Clock } from "../core/clock.js";
import { compilePattern } from "../bus/patterns.js";
import type { StoreTx } from "../store/contracts.js";
import { run, type SqlDialect } from "../store/dialect.js";
import { sql } from "../store/sql.js";
import { formatPayload, type WebhookPayloadFormat } from "./payload.js";
import { webhookTables } from "./tables.js";

const RESERVED_PREFIX = "patchbay.";

/** Compiles endpoint filters, caching each pattern. */
export function createMatcher(): (patterns: readonly string[], type: string) => boolean {
  const cache = new Map<string, (type: string) => boolean>();
  return (patterns, type) => {
    // Patchbay's own events (`patchbay.*`) go only to endpoints that name them: "#" is not enough.
    const reserved = type.startsWith(RESERVED_PREFIX);
    return patterns.some((p) => {
      if (reserved && !p.startsWith(RESERVED_PREFIX)) return false;
      let match = cache.get(p);
      if (!match) {
        match = compilePattern(p);
        cache.set(p, match);
      }
      return match(type);
    });
  };
}

/** Builds the fan-out step: writes the message and its deliveries in `tx`; resolves with how many deliveries. */
export function createFanOut(deps: {
  dialect: SqlDialect;
  clock: Clock;
  format: WebhookPayloadFormat;
  firstDelay: () => number;
  wake: () => void;
  /** Wakes delivery workers in other processes, sent after the commit (store/wake-signal.ts). */
  wakeOthers: () => Promise<void>;
}) {
  const d = deps.dialect;
  const t = webhookTables(d);
  const matches = createMatcher();

  return async function fanOut(event: CloudEvent, tx: StoreTx): Promise<number> {
    const { rows } = await run<{ id: string; events: unknown }>(
      tx,
      d,
      sql`SELECT id, events FROM ${t.endpoints} WHERE status = 'enabled'`,
    );
    const targets = rows.filter((r) => matches(d.decodeJson(r.events) as string[], event.type));
    if (targets.length === 0) return 0;
    const now = deps.clock.now();
    const payload = formatPayload(event, deps.format, now);
    const traceparent = typeof event.traceparent === "string" ? event.traceparent : null;
    await run(
      tx,
      d,
      d.roles.rows.insertIgnore(
        t.messages,
        "id, event_type, payload, traceparent, created_at",
        [sql`(${event.id}, ${event.type}, ${payload}, ${traceparent}, ${now})`],
        "id",
      ),
    );
    for (const target of targets) {
      await run(
        tx,
        d,
        d.roles.rows.insertIgnore(
          t.deliveries,
          "endpoint_id, message_id, status, claims, attempts, round_start, next_attempt_at, created_at, updated_at",
          [sql`(${target.id}, ${event.id}, 'pending', 0, 0, 0, ${now + deps.firstDelay()}, ${now}, ${now})`],
          "endpoint_id, message_id",
        ),
      );
    }
    // Not a NOTIFY in this transaction: with one in each, fan-outs running at once would commit one
    // at a time (see store/wake-signal.ts).
    tx.afterCommit(() => {
      deps.wake();
      void deps.wakeOthers();
    });
    return targets.length;
  };
}
