import { randomUUID } from "node:crypto";
import { startClaimLoop, type ClaimLoop } from "../core/claim-loop.js";
import type { Clock } from "../core/clock.js";
import { isPatchbayError } from "../core/errors.js";
import { settleBy } from "../core/settle-by.js";
import type { Logger } from "../core/logger.js";
import type { SqlExecutor } from "../store/contracts.js";
import { column, int, run } from "../store/dialect.js";
import type { SqlStore } from "../store/sql-store.js";
import { join, joinWith, raw, sql } from "../store/sql.js";
import { isHeaders } from "./headers.js";
import { insertChunks, textLength } from "./insert-chunks.js";
import type { Transport, TransportMessage } from "./transport.js";

const LEADER_KEY = "patchbay.bus.outbox-relay";
/**
 * `deliver_at` of an outbox row that cannot be read (its headers are not a JSON object of
 * strings): parked, out of the relay's way, found by this value (docs/bus.md says how).
 */
export const PARKED_AT = Number.MAX_SAFE_INTEGER;
const LEASE_MS = 10_000;
const BATCH = 200;

/** The caller's transaction, as the outbox writes in it. */
type OutboxTx = SqlExecutor & { afterCommit(cb: () => void): void };

/** `id IN (…)` for a non-empty list of row ids. */
const inIds = (ids: readonly number[]) =>
  join(sql`id IN (${ids[0]}`, ...ids.slice(1).map((id) => sql`, ${id}`), sql`)`);

interface OutboxRow {
  id: unknown;
  message_id: string;
  type: string;
  key: string | null;
  body: string;
  headers: unknown;
}

/**
 * The transactional outbox, for transports that do not live in the store (brokers): `tx.publish`
 * writes the message in the business transaction; after commit a relay publishes it with broker
 * confirms, then deletes it. One relay at a time across processes (a lease in the state table),
 * publishing in outbox order, so events of one key leave in the order they were written. A crash
 * between the broker's confirm and the delete publishes again: delivery is at least once and the
 * consumers' inbox absorbs the duplicate.
 */
export function createOutbox(store: SqlStore, transport: Transport, deps: { clock: Clock; logger: Logger }) {
  const d = store.dialect;
  const t = raw(d.table("bus_outbox"));
  const me = randomUUID();
  let loop: ClaimLoop | undefined;
  let stopped: Promise<void> | undefined;
  const wake = () => loop?.wake();

  async function lead(): Promise<boolean> {
    const now = deps.clock.now();
    const current = await store.state.get<{ owner: string; until: number }>(LEADER_KEY);
    if (current && current.value.owner !== me && current.value.until > now) return false;
    try {
      await store.state.set(
        LEADER_KEY,
        { owner: me, until: now + LEASE_MS },
        { expectedVersion: current?.version ?? 0 },
      );
      return true;
    } catch (e) {
      if (isPatchbayError(e, "STATE_VERSION_CONFLICT")) return false;
      throw e;
    }
  }

  async function relayOnce(): Promise<number> {
    const { rows } = await run<OutboxRow>(
      store,
      d,
      sql`SELECT id, message_id, type, ${column(d, "key")}, body, headers FROM ${t} WHERE deliver_at <= ${deps.clock.now()}
          ORDER BY id LIMIT ${BATCH}`,
    );
    if (rows.length === 0) return 0;
    const messages: TransportMessage[] = [];
    const sent: number[] = [];
    const unreadable: OutboxRow[] = [];
    for (const r of rows) {
      const headers = readHeaders(r.headers);
      if (!headers) {
        unreadable.push(r);
        continue;
      }
      messages.push({ id: r.message_id, type: r.type, key: r.key ?? undefined, body: r.body, headers });
      sent.push(int(r.id));
    }
    // A row that cannot be read would fail every round and hold up every row behind it: it is
    // parked, kept as it is, and reported; the rest goes on.
    if (unreadable.length > 0) {
      await run(
        store,
        d,
        join(sql`UPDATE ${t} SET deliver_at = ${PARKED_AT} WHERE `, inIds(unreadable.map((r) => int(r.id)))),
      );
      for (const r of unreadable) {
        deps.logger.error(
          { messageId: r.message_id, type: r.type, headers: String(r.headers).slice(0, 200) },
          "patchbay bus: an outbox row's headers cannot be read; parked in the outbox, not published",
        );
      }
    }
    if (messages.length > 0) {
      try {
        await transport.publish(messages);
      } catch (e) {
        // A message the transport refuses for good (an id its protocol cannot carry, a size over
        // the broker's own limit) would fail every round and hold up every row behind it, each
        // round publishing its neighbours again: find it, park it, relay the rest.
        if (!isPatchbayError(e) || e.retryable) throw e;
        await relayOneByOne(messages, sent);
        return rows.length;
      }
      await run(store, d, join(sql`DELETE FROM ${t} WHERE `, inIds(sent)));
    }
    return rows.length;
  }

  /**
   * Publishes `messages` one at a time after their batch was refused for good: each confirmed
   * row is deleted, each refused for good is parked (kept as it is, `deliver_at` = PARKED_AT) with
   * an error log. A retryable failure ends the round; what is left goes next round.
   */
  async function relayOneByOne(messages: readonly TransportMessage[], ids: readonly number[]) {
    for (const [i, m] of messages.entries()) {
      const id = ids[i]!;
      try {
        await transport.publish([m]);
      } catch (e) {
        if (!isPatchbayError(e) || e.retryable) throw e;
        await run(store, d, sql`UPDATE ${t} SET deliver_at = ${PARKED_AT} WHERE id = ${id}`);
        deps.logger.error(
          { messageId: m.id, type: m.type, err: e },
          "patchbay bus: the transport refuses an outbox row for good; parked in the outbox, not published",
        );
        continue;
      }
      await run(store, d, sql`DELETE FROM ${t} WHERE id = ${id}`);
    }
  }

  /** The row's headers, or undefined when they are not a JSON object of strings. */
  function readHeaders(raw: unknown): Record<string, string> | undefined {
    try {
      const value = d.decodeJson(raw);
      return isHeaders(value) ? value : undefined;
    } catch {
      return undefined;
    }
  }

  async function addMany(
    tx: OutboxTx,
    entries: readonly { message: TransportMessage; delayMs?: number | undefined }[],
  ) {
    if (entries.length === 0) return;
    const now = deps.clock.now();
    const rows = entries.map(({ message: m, delayMs = 0 }) => {
      const headers = d.encodeJson(m.headers);
      return {
        chars: m.body.length + textLength(headers),
        values: sql`(${m.id}, ${m.type}, ${m.key ?? null}, ${m.body}, ${headers}, ${now + delayMs}, ${now})`,
      };
    });
    for (const chunk of insertChunks(rows, (r) => r.chars)) {
      await run(
        tx,
        d,
        join(
          sql`INSERT INTO ${t} (message_id, type, ${column(d, "key")}, body, headers, deliver_at, created_at) VALUES `,
          joinWith(
            sql`, `,
            chunk.map((r) => r.values),
          ),
        ),
      );
    }
    tx.afterCommit(wake);
  }

  return {
    /** Writes a message into the outbox inside the caller's transaction. */
    add(tx: OutboxTx, m: TransportMessage, delayMs = 0) {
      return addMany(tx, [{ message: m, delayMs }]);
    },

    /** Writes messages into the outbox inside the caller's transaction, in order, in multi-row inserts. */
    addMany,

    start() {
      // A batch at a time; a full batch means more may be waiting, and the loop goes again at once.
      loop ??= startClaimLoop({
        free: () => BATCH,
        claim: async () => ({ claimed: (await lead()) ? await relayOnce() : 0 }),
        clock: deps.clock,
        pollMs: 1000,
        onError: (e) => deps.logger.warn({ err: e }, "patchbay bus: outbox relay failed; will retry"),
      });
    },

    /**
     * Stops relaying, then hands leadership over at once instead of making the next relay wait
     * for the lease. Resolves within `timeoutMs`: a relay stuck in a publish (a broker that does
     * not confirm) is not waited for; it hands over when it ends (its rows stay in the outbox
     * unless their publish was confirmed).
     */
    async stop(timeoutMs = 30_000) {
      stopped ??= (loop?.stop() ?? Promise.resolve()).then(async () => {
        const current = await store.state.get<{ owner: string }>(LEADER_KEY).catch(() => undefined);
        if (current?.value.owner === me) {
          await store.state
            .set(LEADER_KEY, { owner: "", until: 0 }, { expectedVersion: current.version })
            .catch(() => undefined);
        }
      });
      await settleBy(stopped, Date.now() + timeoutMs);
    },
  };
}
