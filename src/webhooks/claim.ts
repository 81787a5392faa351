/**
 * Claiming due deliveries with a lease, within each endpoint's concurrency and rate limit — across
 * processes. One transaction per claim: the endpoints with due work are locked, skipping those
 * another worker holds (the store's `locks.skipLocked`), so two workers never count and claim for
 * one endpoint at once (a backend with serial writers needs no row locks), their in-flight deliveries counted, their token bucket read,
 * and the oldest due deliveries marked `sending` until the lease ends. A delivery whose lease ran
 * out (its worker died) is due again; the claim counter is the lease token, so a late outcome
 * from a dead worker's claim changes nothing.
 */
import type { Clock } from "../core/clock.js";
import type { StoreTx } from "../store/contracts.js";
import { int, run } from "../store/dialect.js";
import type { SqlStore } from "../store/sql-store.js";
import { join, raw, sql } from "../store/sql.js";
import { burstOf } from "./endpoints.js";
import { optionalInt, webhookTables } from "./tables.js";

/** A delivery this worker holds until its lease ends. */
export interface ClaimedDelivery {
  seq: number;
  endpointId: string;
  messageId: string;
  eventType: string;
  /** The body to send, exactly as stored. */
  payload: string;
  traceparent: string | undefined;
  url: string;
  /** The current secret, and the previous one during its rotation grace period. */
  secrets: string[];
  /** The attempt number across all rounds: also the lease token. */
  attempt: number;
  /** The attempt number within the current round (1-based): what the retry schedule reads. */
  roundAttempt: number;
}

/** What a claim took, and when a rate-limited endpoint has a token again. */
export interface ClaimResult {
  deliveries: ClaimedDelivery[];
  /** When the lease of the deliveries claimed ends (clock time). */
  until: number;
  wakeAt?: number;
}

interface EndpointRow {
  id: string;
  url: string;
  secret: string;
  previous_secret: string | null;
  previous_secret_until: unknown;
  concurrency: unknown;
  rate_limit: unknown;
  rate_tokens: unknown;
  rate_at: unknown;
}

interface PickedRow {
  seq: unknown;
  status: string;
  next_attempt_at: unknown;
  event_type: string;
  payload: string;
  traceparent: string | null;
}

interface ClaimRow {
  seq: unknown;
  message_id: string;
  claims: unknown;
  attempts: unknown;
  round_start: unknown;
}

/** The error recorded for a claim whose worker never reported back. */
export const LEASE_EXPIRED = {
  code: "WEBHOOK_LEASE_EXPIRED",
  message:
    "the sender stopped (crash, kill, lost database) before recording the outcome; the request may have reached the receiver",
};

const CANDIDATES = 50;

/**
 * Builds `claimDue(budget, held)`: claims up to `budget` deliveries in one transaction. `held` are
 * the worker's deliveries in flight and when their lease ends: those whose lease ran out by the
 * clock (a fake clock moved past it) are neither claimed again by the worker still sending them
 * nor dropped from their endpoint's in-flight count. Only other workers judge a lease.
 */
export function createClaimer(
  store: SqlStore,
  deps: { clock: Clock; leaseMs: number; maxRoundAttempts: number },
) {
  const d = store.dialect;
  const t = webhookTables(d);
  const roles = d.roles;

  return function claimDue(
    budget: number,
    held: ReadonlyMap<number, number> = new Map(),
  ): Promise<ClaimResult> {
    return store.transaction((tx) => claimIn(tx, budget, held));
  };

  async function claimIn(
    tx: StoreTx,
    budget: number,
    held: ReadonlyMap<number, number>,
  ): Promise<ClaimResult> {
    const now = deps.clock.now();
    const expired = [...held].filter(([, until]) => until <= now).map(([seq]) => seq);
    // The SQL is unchanged unless a lease this worker holds ran out by the clock.
    const seqs = (column: string) =>
      join(
        sql`${raw(column)} IN (`,
        ...expired.map((seq, i) => sql`${raw(i === 0 ? "" : ", ")}${seq}`),
        sql`)`,
      );
    const due =
      expired.length === 0
        ? sql`w.status IN ('pending', 'sending') AND w.next_attempt_at <= ${now}`
        : join(
            sql`w.status IN ('pending', 'sending') AND w.next_attempt_at <= ${now} AND NOT `,
            seqs("w.seq"),
          );
    const sending =
      expired.length === 0
        ? sql`next_attempt_at > ${now}`
        : join(sql`(next_attempt_at > ${now} OR `, seqs("seq"), sql`)`);
    const { rows: endpoints } = await run<EndpointRow>(
      tx,
      d,
      join(
        sql`SELECT e.id, e.url, e.secret, e.previous_secret, e.previous_secret_until, e.concurrency, e.rate_limit,
              e.rate_tokens, e.rate_at
            FROM ${t.endpoints} e
            WHERE e.status = 'enabled' AND EXISTS (SELECT 1 FROM ${t.deliveries} w WHERE w.endpoint_id = e.id AND `,
        due,
        sql`) ORDER BY e.claimed_at, e.id LIMIT ${CANDIDATES}`,
        roles.locks.skipLocked(),
      ),
    );
    const claimed: ClaimedDelivery[] = [];
    let wakeAt: number | undefined;
    let left = budget;
    for (const e of endpoints) {
      if (left <= 0) break;
      const [inFlight] = (
        await run<{ n: unknown }>(
          tx,
          d,
          join(
            sql`SELECT COUNT(*) AS n FROM ${t.deliveries} WHERE endpoint_id = ${e.id} AND status = 'sending' AND `,
            sending,
          ),
        )
      ).rows;
      let take = Math.min(left, int(e.concurrency) - int(inFlight?.n ?? 0));
      const rate = e.rate_limit === null ? undefined : Number(e.rate_limit);
      let tokens = 0;
      if (rate !== undefined) {
        tokens = Math.min(burstOf(rate), Number(e.rate_tokens) + ((now - int(e.rate_at)) * rate) / 1000);
        take = Math.min(take, Math.floor(tokens));
        if (tokens < 1) {
          const at = now + Math.ceil(((1 - tokens) * 1000) / rate);
          wakeAt = wakeAt === undefined ? at : Math.min(wakeAt, at);
        }
      }
      if (take <= 0) continue;
      // Pick, then claim what was picked: the rows (or, with serial writers, the database) stay
      // locked until commit. Not one UPDATE of a locking subquery: a planner may rescan such a
      // subquery and get other rows each time, claiming more than `take`.
      const { rows: picked } = await run<PickedRow>(
        tx,
        d,
        join(
          sql`SELECT w.seq, w.status, w.next_attempt_at, m.event_type, m.payload, m.traceparent
              FROM ${t.deliveries} w JOIN ${t.messages} m ON m.id = w.message_id
              WHERE w.endpoint_id = ${e.id} AND `,
          due,
          sql` ORDER BY w.next_attempt_at, w.seq LIMIT ${take}`,
          roles.locks.skipLocked("w"),
        ),
      );
      if (picked.length === 0) continue;
      // When a lost claim was made: its lease ran from then.
      const claimedAt = new Map(
        picked
          .filter((p) => p.status === "sending")
          .map((p) => [int(p.seq), int(p.next_attempt_at) - deps.leaseMs]),
      );
      const messages = new Map(picked.map((p) => [int(p.seq), p]));
      const rows = await roles.rows.updateReturning<ClaimRow>(tx, {
        table: t.deliveries,
        key: "seq",
        set: sql`status = 'sending', claims = claims + 1, next_attempt_at = ${now + deps.leaseMs}, updated_at = ${now}`,
        where: join(
          sql`status IN ('pending', 'sending') AND seq IN (`,
          ...picked.map((p, i) => sql`${raw(i === 0 ? "" : ", ")}${int(p.seq)}`),
          sql`)`,
        ),
        columns: "seq, message_id, claims, attempts, round_start",
      });
      if (rows.length === 0) continue;
      left -= rows.length;
      if (rate !== undefined) tokens -= rows.length;
      await run(
        tx,
        d,
        sql`UPDATE ${t.endpoints} SET claimed_at = ${now}, rate_tokens = ${tokens}, rate_at = ${now} WHERE id = ${e.id}`,
      );
      const secrets = [e.secret];
      if (e.previous_secret !== null && (optionalInt(e.previous_secret_until) ?? 0) > now) {
        secrets.push(e.previous_secret);
      }
      for (const r of rows) {
        const attempt = int(r.claims);
        const recorded = int(r.attempts);
        // Claims that never reported back: their worker died mid-attempt. Log them as unknown.
        for (let lost = recorded + 1; lost < attempt; lost++) {
          await run(
            tx,
            d,
            sql`INSERT INTO ${t.attempts} (endpoint_id, message_id, attempt, started_at, outcome, error)
                VALUES (${e.id}, ${r.message_id}, ${lost}, ${claimedAt.get(int(r.seq)) ?? now}, 'unknown',
                  ${d.encodeJson(LEASE_EXPIRED)})`,
          );
        }
        const roundAttempt = attempt - int(r.round_start);
        if (attempt - 1 > recorded) {
          // A delivery whose every claim dies (it crashes the sender?) must not loop forever.
          const exhausted = roundAttempt > deps.maxRoundAttempts + 2;
          await run(
            tx,
            d,
            exhausted
              ? sql`UPDATE ${t.deliveries} SET attempts = ${attempt - 1}, status = 'failed', updated_at = ${now},
                      last_error = ${d.encodeJson(LEASE_EXPIRED)} WHERE seq = ${int(r.seq)}`
              : sql`UPDATE ${t.deliveries} SET attempts = ${attempt - 1} WHERE seq = ${int(r.seq)}`,
          );
          if (exhausted) continue;
        }
        const m = messages.get(int(r.seq))!;
        claimed.push({
          seq: int(r.seq),
          endpointId: e.id,
          messageId: r.message_id,
          eventType: m.event_type,
          payload: m.payload,
          traceparent: m.traceparent ?? undefined,
          url: e.url,
          secrets,
          attempt,
          roundAttempt,
        });
      }
    }
    return {
      deliveries: claimed,
      until: now + deps.leaseMs,
      ...(wakeAt === undefined ? {} : { wakeAt }),
    };
  }
}
