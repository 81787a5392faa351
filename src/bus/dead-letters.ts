import { decodeStructured, type CloudEvent } from "../core/envelope.js";
import { InvalidArgumentError } from "../core/errors.js";
import type { SqlExecutor } from "../store/contracts.js";
import { int, run } from "../store/dialect.js";
import type { SqlStore } from "../store/sql-store.js";
import { join, raw, sql, type SqlStatement } from "../store/sql.js";
import type { Transport, TransportMessage } from "./transport.js";

/** A message that could not be processed, with why. */
export interface DeadLetter {
  group: string;
  messageId: string;
  type: string;
  key: string | undefined;
  /** The original message, untouched: structured CloudEvent JSON and transport headers. */
  body: string;
  headers: Record<string, string>;
  /** The event, decoded when the body is a valid CloudEvent. */
  event: CloudEvent | undefined;
  /** The last error (name, code, message, and the error's own fields). */
  error: Record<string, unknown>;
  /** Deliveries made before giving up. */
  attempts: number;
  firstFailedAt: number;
  lastFailedAt: number;
}

/** Selects dead letters. All fields are optional; an empty filter selects everything. */
export interface DeadLetterFilter {
  group?: string;
  type?: string;
  messageId?: string;
  /** Dead-lettered at or before this time (ms since epoch). */
  before?: number;
}

interface Row {
  grp: string;
  message_id: string;
  type: string;
  key: string | null;
  /** Empty in letters written with `body_bytes`. */
  body: string;
  /** The body's UTF-8 bytes (letters written before the bytes migration have none). */
  body_bytes: Uint8Array | null;
  headers: unknown;
  error: unknown;
  attempts: unknown;
  first_failed_at: unknown;
  last_failed_at: unknown;
}

/** Dead letters: list, inspect, replay, purge. Kept in the Store whatever the transport. */
export interface DeadLetters {
  list(filter?: DeadLetterFilter & { limit?: number }): Promise<DeadLetter[]>;
  get(group: string, messageId: string): Promise<DeadLetter | undefined>;
  count(filter?: DeadLetterFilter): Promise<number>;
  /** Sends the selected messages back to their group's queue (attempts start afresh); returns how many. */
  replay(filter?: DeadLetterFilter): Promise<number>;
  /** Deletes the selected dead letters; returns how many. */
  purge(filter?: DeadLetterFilter): Promise<number>;
  /** Records one (used by the bus). Idempotent by group and message id. */
  add(executor: SqlExecutor, letter: Omit<DeadLetter, "event">): Promise<void>;
}

/** A letter's body: its bytes as UTF-8 text, or the text column of a letter written before them. */
const bodyOf = (r: Row): string =>
  r.body_bytes === null || r.body_bytes === undefined
    ? r.body
    : Buffer.from(r.body_bytes.buffer, r.body_bytes.byteOffset, r.body_bytes.byteLength).toString("utf8");

/** The Store-backed {@link DeadLetters}. */
export function createDeadLetters(store: SqlStore, transport: Transport): DeadLetters {
  const d = store.dialect;
  const t = raw(d.table("bus_dead_letters"));
  const where = (f: DeadLetterFilter = {}): SqlStatement => {
    for (const [k, v] of Object.entries(f)) {
      if (v !== undefined && (k === "before" ? typeof v !== "number" : typeof v !== "string")) {
        throw new InvalidArgumentError(`dead-letter filter ${k} has the wrong type`, `filter.${k}`);
      }
    }
    const conditions: SqlStatement[] = [sql`1 = 1`];
    if (f.group !== undefined) conditions.push(sql` AND grp = ${f.group}`);
    if (f.type !== undefined) conditions.push(sql` AND type = ${f.type}`);
    if (f.messageId !== undefined) conditions.push(sql` AND message_id = ${f.messageId}`);
    if (f.before !== undefined) conditions.push(sql` AND last_failed_at <= ${f.before}`);
    return join(...conditions);
  };
  const toLetter = (r: Row): DeadLetter => {
    const body = bodyOf(r);
    let event: CloudEvent | undefined;
    try {
      event = decodeStructured(body);
    } catch {
      event = undefined;
    }
    return {
      group: r.grp,
      messageId: r.message_id,
      type: r.type,
      key: r.key ?? undefined,
      body,
      headers: d.decodeJson(r.headers) as Record<string, string>,
      event,
      error: d.decodeJson(r.error) as Record<string, unknown>,
      attempts: int(r.attempts),
      firstFailedAt: int(r.first_failed_at),
      lastFailedAt: int(r.last_failed_at),
    };
  };
  const select = (f: DeadLetterFilter, limit: number) =>
    join(
      sql`SELECT * FROM ${t} WHERE `,
      where(f),
      sql` ORDER BY last_failed_at, grp, message_id LIMIT ${limit}`,
    );

  const letters: DeadLetters = {
    async list(filter = {}) {
      const limit = filter.limit ?? 100;
      const { limit: _, ...f } = filter;
      return (await run<Row>(store, d, select(f, limit))).rows.map(toLetter);
    },
    async get(group, messageId) {
      return (await letters.list({ group, messageId, limit: 1 }))[0];
    },
    async count(filter = {}) {
      const { rows } = await run<{ n: unknown }>(
        store,
        d,
        join(sql`SELECT COUNT(*) AS n FROM ${t} WHERE `, where(filter)),
      );
      return int(rows[0]?.n ?? 0);
    },
    async replay(filter = {}) {
      let total = 0;
      // In batches, each message back in its group and out of the dead letters together (on
      // a store-backed transport, in one transaction; on a broker, publish first then delete,
      // so a crash in between replays it twice — which the inbox absorbs).
      for (;;) {
        const batch = (await run<Row>(store, d, select(filter, 100))).rows;
        if (batch.length === 0) return total;
        for (const r of batch) {
          const message: TransportMessage = {
            id: r.message_id,
            type: r.type,
            key: r.key ?? undefined,
            body: bodyOf(r),
            headers: d.decodeJson(r.headers) as Record<string, string>,
          };
          const remove = sql`DELETE FROM ${t} WHERE grp = ${r.grp} AND message_id = ${r.message_id}`;
          if (transport.capabilities.sharesStore) {
            await store.transaction(async (tx) => {
              await transport.publish([message], { tx, group: r.grp });
              await run(tx, d, remove);
            });
          } else {
            await transport.publish([message], { group: r.grp });
            await run(store, d, remove);
          }
          total++;
        }
      }
    },
    async purge(filter = {}) {
      const { rowCount, rows } = await run(
        store,
        d,
        join(sql`DELETE FROM ${t} WHERE `, where(filter), sql` RETURNING grp`),
      );
      return rows.length || rowCount;
    },
    async add(executor, l) {
      await run(
        executor,
        d,
        // The body as bytes: a text column may refuse some characters (NUL, on PostgreSQL).
        sql`INSERT INTO ${t} (grp, message_id, type, key, body, body_bytes, headers, error, attempts, first_failed_at, last_failed_at)
            VALUES (${l.group}, ${l.messageId}, ${l.type}, ${l.key ?? null}, '', ${Buffer.from(l.body, "utf8")}, ${d.encodeJson(l.headers)},
                    ${d.encodeJson(l.error)}, ${l.attempts}, ${l.firstFailedAt}, ${l.lastFailedAt})
            ON CONFLICT (grp, message_id) DO UPDATE SET error = excluded.error, attempts = excluded.attempts,
              last_failed_at = excluded.last_failed_at, body = excluded.body, body_bytes = excluded.body_bytes`,
      );
    },
  };
  return letters;
}
