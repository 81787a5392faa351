/**
 * Recording attempt outcomes, many per transaction (a group commit: outcomes that finish while a
 * commit is running go in the next one). For each: the attempt row, the delivery's new state (the
 * claim counter guards it, so a claim that lost its lease changes nothing), and the endpoint's
 * health — 410 Gone, or failing without a success for `disableAfter`, disables it and publishes
 * `patchbay.webhook.endpoint_disabled` in the same transaction.
 */
import { inspect } from "node:util";
import type { Clock } from "../core/clock.js";
import { isPatchbayError, PatchbayError } from "../core/errors.js";
import { storableStrings, storableText } from "../core/storable-text.js";
import type { Logger } from "../core/logger.js";
import type { EventBus } from "../bus/bus.js";
import type { StoreTx } from "../store/contracts.js";
import { run } from "../store/dialect.js";
import type { SqlStore } from "../store/sql-store.js";
import { join, raw, sql } from "../store/sql.js";
import type { ClaimedDelivery } from "./claim.js";
import { EndpointDisabled } from "./events.js";
import type { RetrySchedule } from "./schedule.js";
import type { AttemptOutcome } from "./sender.js";
import { optionalInt, webhookTables } from "./tables.js";

/** One finished attempt waiting to be recorded. */
export interface FinishedAttempt {
  delivery: ClaimedDelivery;
  outcome: AttemptOutcome;
  /** When the attempt started (clock time). */
  startedAt: number;
}

/** What recording decided, for logs and metrics. */
export interface RecordedAttempt {
  attempt: FinishedAttempt;
  state: "delivered" | "retrying" | "failed" | "superseded";
  nextAttemptAt: number | undefined;
}

/** A JSON-safe record of an error, its text storable in any store ({@link storableText}). */
export function errorRecord(e: unknown): Record<string, unknown> | undefined {
  if (e === undefined) return undefined;
  if (e instanceof PatchbayError) {
    const { cause: _cause, ...rest } = e.toJSON();
    return storableStrings(rest);
  }
  if (e instanceof Error) return { name: storableText(e.name), message: storableText(e.message) };
  return { name: "NonError", message: storableText(inspect(e)) };
}

/** Builds `record(batch)`. */
export function createRecorder(
  store: SqlStore,
  deps: {
    bus: EventBus | undefined;
    clock: Clock;
    schedule: RetrySchedule;
    random: () => number;
    disableAfterMs: number;
    logger: Logger;
    /** Wakes delivery workers in other processes, sent after the commit (store/wake-signal.ts). */
    wakeOthers: () => Promise<void>;
  },
) {
  const d = store.dialect;
  const t = webhookTables(d);
  const { clock, schedule } = deps;

  function decide(
    a: FinishedAttempt,
    now: number,
  ): { status: string; at: number; state: RecordedAttempt["state"] } {
    const o = a.outcome;
    if (o.ok) return { status: "delivered", at: now, state: "delivered" };
    if (o.final) return { status: "failed", at: now, state: "failed" };
    const delay = isPatchbayError(o.error, "WEBHOOK_ABORTED")
      ? 0
      : schedule.nextDelay(a.delivery.roundAttempt, deps.random, o.retryAfterMs);
    if (delay === undefined) return { status: "failed", at: now, state: "failed" };
    return { status: "pending", at: now + delay, state: "retrying" };
  }

  async function disable(
    tx: StoreTx,
    endpointId: string,
    reason: "gone" | "failing",
    now: number,
    publish: ((data: unknown) => Promise<unknown>) | undefined,
  ) {
    const rows = await d.roles.rows.updateReturning<{ url: string; failing_since: unknown }>(tx, {
      table: t.endpoints,
      key: "id",
      set: sql`status = 'disabled', disabled_reason = ${reason}, disabled_at = ${now}, updated_at = ${now}`,
      where: sql`id = ${endpointId} AND status = 'enabled'`,
      columns: "url, failing_since",
    });
    const row = rows[0];
    if (!row) return;
    const failingSince = optionalInt(row.failing_since);
    deps.logger.warn({ endpointId, url: row.url, reason }, "patchbay webhooks: endpoint disabled");
    await publish?.({
      endpointId,
      url: row.url,
      reason,
      disabledAt: new Date(now).toISOString(),
      ...(failingSince === undefined ? {} : { failingSince: new Date(failingSince).toISOString() }),
    });
  }

  async function write(
    tx: StoreTx,
    batch: readonly FinishedAttempt[],
    publish: ((data: unknown) => Promise<unknown>) | undefined,
  ): Promise<RecordedAttempt[]> {
    const now = clock.now();
    const health = new Map<string, { success: boolean; firstFailure: number | undefined; gone: boolean }>();
    const rows = batch.map((a) => ({ a, error: errorRecord(a.outcome.error), next: decide(a, now) }));
    // The attempt log: one statement for the batch.
    await run(
      tx,
      d,
      join(
        sql`INSERT INTO ${t.attempts} (endpoint_id, message_id, attempt, started_at, latency_ms, status, outcome,
              response_excerpt, error) VALUES `,
        ...rows.map(({ a: { delivery: c, outcome: o, startedAt }, error }, i) =>
          join(
            sql`${raw(i === 0 ? "" : ", ")}(${c.endpointId}, ${c.messageId}, ${c.attempt}, ${startedAt}, ${o.latencyMs},
              ${o.status ?? null}, ${o.ok ? "succeeded" : "failed"}, ${o.responseExcerpt ?? null},
              ${error === undefined ? null : d.encodeJson(error)})`,
          ),
        ),
      ),
    );
    // The claim counter is the lease token: a row re-claimed by another worker after our lease ran
    // out is not ours to settle ("superseded"); that worker records its own outcome.
    const settled = new Set<number>();
    const delivered = new Map<number, FinishedAttempt[]>();
    for (const { a, next } of rows) {
      if (next.state === "delivered")
        delivered.set(a.outcome.status ?? 0, [...(delivered.get(a.outcome.status ?? 0) ?? []), a]);
    }
    for (const [status, group] of delivered) {
      // Successes (the common case) in one statement per status code.
      const done = await d.roles.rows.updateReturning<{ seq: unknown }>(tx, {
        table: t.deliveries,
        key: "seq",
        set: sql`status = 'delivered', next_attempt_at = ${now}, attempts = claims, last_status = ${status},
                 last_error = NULL, updated_at = ${now}, delivered_at = ${now}`,
        where: join(
          sql`(seq, claims) IN (`,
          ...group.map((a, i) => sql`${raw(i === 0 ? "" : ", ")}(${a.delivery.seq}, ${a.delivery.attempt})`),
          sql`)`,
        ),
        columns: "seq",
      });
      for (const r of done) settled.add(Number(r.seq));
    }
    for (const { a, error, next } of rows) {
      if (next.state === "delivered") continue;
      const { delivery: c, outcome: o } = a;
      // An attempt cut short by our own shutdown does not use up a place in the schedule.
      const roundStart = raw(isPatchbayError(o.error, "WEBHOOK_ABORTED") ? "round_start + 1" : "round_start");
      const { rowCount } = await run(
        tx,
        d,
        sql`UPDATE ${t.deliveries} SET status = ${next.status}, next_attempt_at = ${next.at}, attempts = claims,
              round_start = ${roundStart}, last_status = ${o.status ?? null},
              last_error = ${error === undefined ? null : d.encodeJson(error)}, updated_at = ${now}, delivered_at = NULL
            WHERE seq = ${c.seq} AND claims = ${c.attempt}`,
      );
      if (rowCount > 0) settled.add(c.seq);
    }
    const results: RecordedAttempt[] = [];
    for (const { a, next } of rows) {
      const { delivery: c, outcome: o } = a;
      results.push({
        attempt: a,
        state: settled.has(c.seq) ? next.state : "superseded",
        nextAttemptAt: next.state === "retrying" ? next.at : undefined,
      });
      if (!o.ok && !o.endpointFault) continue;
      const h = health.get(c.endpointId) ?? { success: false, firstFailure: undefined, gone: false };
      if (o.ok) {
        h.success = true;
        h.firstFailure = undefined;
      } else h.firstFailure ??= a.startedAt;
      h.gone ||= o.gone;
      health.set(c.endpointId, h);
    }
    for (const [endpointId, h] of health) {
      if (h.success && h.firstFailure === undefined) {
        // Written at most once a second while healthy, so successes do not contend on the endpoint row.
        await run(
          tx,
          d,
          sql`UPDATE ${t.endpoints} SET last_success_at = ${now}, failing_since = NULL
              WHERE id = ${endpointId}
                AND (failing_since IS NOT NULL OR last_success_at IS NULL OR last_success_at < ${now - 1000})`,
        );
      } else if (h.success) {
        await run(
          tx,
          d,
          sql`UPDATE ${t.endpoints} SET last_success_at = ${now}, failing_since = ${h.firstFailure} WHERE id = ${endpointId}`,
        );
      }
      if (h.firstFailure !== undefined) {
        const rows = await d.roles.rows.updateReturning<{ failing_since: unknown; status: string }>(tx, {
          table: t.endpoints,
          key: "id",
          set: sql`failing_since = COALESCE(failing_since, ${h.firstFailure}), last_failure_at = ${now}`,
          where: sql`id = ${endpointId}`,
          columns: "failing_since, status",
        });
        const since = optionalInt(rows[0]?.failing_since);
        if (
          !h.gone &&
          rows[0]?.status === "enabled" &&
          since !== undefined &&
          now - since >= deps.disableAfterMs
        ) {
          await disable(tx, endpointId, "failing", now, publish);
        }
      }
      if (h.gone) await disable(tx, endpointId, "gone", now, publish);
    }
    return results;
  }

  return async function record(batch: readonly FinishedAttempt[]): Promise<RecordedAttempt[]> {
    const bus = deps.bus;
    const recorded = await (bus
      ? bus.transaction((tx) => write(tx, batch, (data) => tx.publish(EndpointDisabled, data as never)))
      : store.transaction((tx) => write(tx, batch, undefined)));
    // Slots freed and retries due at once wake workers in other processes too: once committed,
    // not by a NOTIFY in the transaction, which would make concurrent records commit one at a time.
    await deps.wakeOthers();
    return recorded;
  };
}
