import { decodeStructured, type CloudEvent } from "../core/envelope.js";
import { InvalidArgumentError, isPatchbayError, PatchbayError } from "../core/errors.js";
import type { SqlExecutor } from "../store/contracts.js";
import { int, quoteColumn, run } from "../store/dialect.js";
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
  /**
   * The transport the message was dead-lettered on (its `Transport.name`, e.g. `local (sqlite)`
   * or `rabbitmq (127.0.0.1:5672/, prefix app)`); `undefined` for letters recorded before
   * Patchbay kept it.
   */
  transport: string | undefined;
}

/** Selects dead letters. All fields are optional; an empty filter selects everything. */
export interface DeadLetterFilter {
  group?: string;
  type?: string;
  messageId?: string;
  /** Dead-lettered at or before this time (ms since epoch). */
  before?: number;
  /** Dead-lettered at or after this time (ms since epoch). */
  since?: number;
  /** The last error's `code` (`NON_RETRYABLE`, `SCHEMA_INVALID`, ...). */
  errorCode?: string;
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
  transport: string | null;
}

/**
 * A position in the dead-letter list's order (`lastFailedAt`, then `group`, then `messageId`):
 * the last letter of a page. `list({ after })` starts right after it, reading only the rows it
 * returns however deep the page (an `offset` walks every row it skips).
 */
export interface DeadLetterCursor {
  lastFailedAt: number;
  group: string;
  messageId: string;
}

/** Options of {@link DeadLetters.list}. */
export interface DeadLetterListOptions extends DeadLetterFilter {
  /** At most this many letters. Default 100. */
  limit?: number;
  /** Skips that many letters (after `after`, when both are given). Default 0. */
  offset?: number;
  /** Only letters after this one in the list's order: the next page (keyset paging). */
  after?: DeadLetterCursor;
}

/** Options of {@link DeadLetters.replay}. */
export interface ReplayOptions {
  /**
   * Replay only if every matched letter was dead-lettered on the transport of this name;
   * otherwise refuse with `DEAD_LETTER_TRANSPORT_MISMATCH` before any letter moves. The CLI sets
   * it: a letter sent back through a transport its group's consumers do not read is lost from
   * sight. Default: no check (a bus replays through its own transport).
   */
  onlyFrom?: string;
  /** With `onlyFrom`: also accept letters that recorded no transport (older rows). Default false. */
  acceptUnrecorded?: boolean;
}

/** A replay refused: matched letters came from another transport than the one replaying. */
export class DeadLetterTransportError extends PatchbayError {
  constructor(
    message: string,
    /** Matched letters by the transport they came from (`"(unrecorded)"` for older rows). */
    readonly origins: Record<string, number>,
    /** The transport the replay would have used. */
    readonly transport: string,
  ) {
    super("DEAD_LETTER_TRANSPORT_MISMATCH", message);
  }
}

/**
 * A replay stopped part-way: the letter it was moving could not be sent (a broker down, a queue
 * that refuses it). The `replayed` letters before it are back in their queues and gone from the
 * dead letters; that letter and the rest are still dead letters, so running the replay again
 * moves exactly those. Retryable when the cause is.
 */
export class DeadLetterReplayError extends PatchbayError {
  constructor(
    /** Letters moved back to their queues before it stopped. */
    readonly replayed: number,
    /** Letters the replay matched when it began. */
    readonly matched: number,
    cause: unknown,
  ) {
    super(
      "DEAD_LETTER_REPLAY_INTERRUPTED",
      `replay stopped after ${replayed} of ${matched} dead letters: ${(cause as Error | undefined)?.message ?? String(cause)}`,
      { cause, retryable: isPatchbayError(cause) ? cause.retryable : false },
    );
  }
}

declare module "../core/errors.js" {
  interface PatchbayErrorCodes {
    DEAD_LETTER_TRANSPORT_MISMATCH: DeadLetterTransportError;
    DEAD_LETTER_REPLAY_INTERRUPTED: DeadLetterReplayError;
  }
}

/**
 * Throws {@link DeadLetterTransportError} unless every letter came from `onlyFrom` (or, with
 * `acceptUnrecorded`, recorded none): the check {@link DeadLetters.replay} makes with `onlyFrom`,
 * for callers that replay a set of letters one call each and must refuse the set before any moves.
 */
export function refuseForeign(
  keys: ReadonlyArray<{ transport: string | null | undefined }>,
  onlyFrom: string,
  acceptUnrecorded = false,
): void {
  const origins: Record<string, number> = {};
  for (const k of keys) {
    const from = k.transport ?? "(unrecorded)";
    origins[from] = (origins[from] ?? 0) + 1;
  }
  const foreign = Object.entries(origins).filter(
    ([from]) => from !== onlyFrom && !(acceptUnrecorded && from === "(unrecorded)"),
  );
  if (foreign.length === 0) return;
  throw new DeadLetterTransportError(
    `refusing to replay through ${onlyFrom}: ${foreign
      .map(([from, n]) => `${n} of the matched dead letter${n === 1 ? "" : "s"} came from ${from}`)
      .join(", ")}; nothing was replayed`,
    origins,
    onlyFrom,
  );
}

/** Dead letters: list, inspect, replay, purge. Kept in the Store whatever the transport. */
export interface DeadLetters {
  /**
   * Oldest first (by `lastFailedAt`, then group and message id). A page: `after` the previous
   * page's last letter (keyset, as fast on page 1,000 as on page 1), or `offset` letters skipped.
   */
  list(options?: DeadLetterListOptions): Promise<DeadLetter[]>;
  get(group: string, messageId: string): Promise<DeadLetter | undefined>;
  count(filter?: DeadLetterFilter): Promise<number>;
  /**
   * Sends the letters matching the filter when the call begins back to their group's queue
   * (attempts start afresh), each exactly once: one that fails again during the replay stays a
   * dead letter. Returns how many were sent (fewer than matched only if some were purged or
   * replayed by someone else meanwhile).
   */
  replay(filter?: DeadLetterFilter, options?: ReplayOptions): Promise<number>;
  /** Deletes the selected dead letters; returns how many. */
  purge(filter?: DeadLetterFilter): Promise<number>;
  /** Records one (used by the bus). Idempotent by group and message id. */
  add(executor: SqlExecutor, letter: Omit<DeadLetter, "event" | "transport">): Promise<void>;
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
      const numeric = k === "before" || k === "since";
      if (v !== undefined && (numeric ? typeof v !== "number" : typeof v !== "string")) {
        throw new InvalidArgumentError(`dead-letter filter ${k} has the wrong type`, `filter.${k}`);
      }
      // A time no column holds (1e20, 1.5, NaN) is a driver error on one store, no match on another.
      if (numeric && v !== undefined && !Number.isSafeInteger(v)) {
        throw new InvalidArgumentError(
          `dead-letter filter ${k} must be whole ms since the epoch, got ${String(v)}`,
          `filter.${k}`,
        );
      }
    }
    const conditions: SqlStatement[] = [sql`1 = 1`];
    if (f.group !== undefined) conditions.push(sql` AND grp = ${f.group}`);
    if (f.type !== undefined) conditions.push(sql` AND type = ${f.type}`);
    if (f.messageId !== undefined) conditions.push(sql` AND message_id = ${f.messageId}`);
    if (f.before !== undefined) conditions.push(sql` AND last_failed_at <= ${f.before}`);
    if (f.since !== undefined) conditions.push(sql` AND last_failed_at >= ${f.since}`);
    // `->>` reads a JSON member alike on PostgreSQL (jsonb) and SQLite (3.38+, JSON text).
    if (f.errorCode !== undefined) conditions.push(sql` AND error ->> 'code' = ${f.errorCode}`);
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
      transport: r.transport ?? undefined,
    };
  };
  /**
   * Letters after `c` in the list's order, as a row comparison both engines read from their
   * index. Within one group (the filter's) it compares `(last_failed_at, message_id)`, the
   * columns after `grp` in the group index.
   */
  const afterCursor = (c: DeadLetterCursor, group: string | undefined): SqlStatement =>
    group === c.group
      ? sql` AND (last_failed_at, message_id) > (${c.lastFailedAt}, ${c.messageId})`
      : sql` AND (last_failed_at, grp, message_id) > (${c.lastFailedAt}, ${c.group}, ${c.messageId})`;
  const select = (f: DeadLetterFilter, limit: number, offset: number, after?: DeadLetterCursor) =>
    join(
      sql`SELECT * FROM ${t} WHERE `,
      where(f),
      after ? afterCursor(after, f.group) : sql``,
      sql` ORDER BY last_failed_at, grp, message_id LIMIT ${limit}`,
      offset > 0 ? sql` OFFSET ${offset}` : sql``,
    );
  const checkCursor = (c: DeadLetterCursor | undefined): DeadLetterCursor | undefined => {
    if (c === undefined) return undefined;
    const k: Partial<Record<keyof DeadLetterCursor, unknown>> | null = typeof c === "object" ? c : null;
    if (
      k === null ||
      !Number.isSafeInteger(k.lastFailedAt) ||
      typeof k.group !== "string" ||
      typeof k.messageId !== "string"
    ) {
      throw new InvalidArgumentError(
        "after must be a dead letter's { lastFailedAt, group, messageId }",
        "after",
      );
    }
    return { lastFailedAt: k.lastFailedAt as number, group: k.group, messageId: k.messageId };
  };

  const letters: DeadLetters = {
    async list(filter = {}) {
      const limit = filter.limit ?? 100;
      const { limit: _, offset = 0, after, ...f } = filter;
      if (!Number.isSafeInteger(offset) || offset < 0) {
        throw new InvalidArgumentError(
          `offset must be a whole number of at least 0, got ${offset}`,
          "offset",
        );
      }
      const cursor = checkCursor(after);
      return (await run<Row>(store, d, select(f, limit, offset, cursor))).rows.map(toLetter);
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
    async replay(filter = {}, options = {}) {
      // The letters to replay are the ones matching now: their keys first, then each one moved
      // on its own. A replayed message that fails again comes back as a new letter under the
      // same key while the replay goes on; re-selecting by the filter would send it again.
      const keys = (
        await run<Pick<Row, "grp" | "message_id" | "transport">>(
          store,
          d,
          join(
            sql`SELECT grp, message_id, transport FROM ${t} WHERE `,
            where(filter),
            sql` ORDER BY last_failed_at, grp, message_id`,
          ),
        )
      ).rows;
      if (options.onlyFrom !== undefined) refuseForeign(keys, options.onlyFrom, options.acceptUnrecorded);
      let total = 0;
      for (const key of keys) {
        // Taken in a transaction: the row is deleted there, and the message published before it
        // commits. A failed publish rolls the delete back (the letter stays); on a broker a
        // failed COMMIT after the publish replays the message twice, which the inbox absorbs.
        // A new failure of the replayed message waits for that commit (PostgreSQL's row lock,
        // SQLite's write lock), so it is recorded as a new letter, never deleted by this one.
        const taken = await store
          .transaction(async (tx) => {
            const row = (
              await run<Row>(
                tx,
                d,
                sql`SELECT * FROM ${t} WHERE grp = ${key.grp} AND message_id = ${key.message_id}`,
              )
            ).rows[0];
            if (!row) return false; // purged or replayed by someone else since
            const removed = await run(
              tx,
              d,
              sql`DELETE FROM ${t} WHERE grp = ${row.grp} AND message_id = ${row.message_id}`,
            );
            if (removed.rowCount === 0) return false;
            const message: TransportMessage = {
              id: row.message_id,
              type: row.type,
              key: row.key ?? undefined,
              body: bodyOf(row),
              headers: d.decodeJson(row.headers) as Record<string, string>,
            };
            await transport.publish(
              [message],
              transport.capabilities.sharesStore ? { tx, group: row.grp } : { group: row.grp },
            );
            return true;
          })
          .catch((e: unknown) => {
            // Say how far it got: the letters before this one were moved and are no longer here.
            throw new DeadLetterReplayError(total, keys.length, e);
          });
        if (taken) total++;
      }
      return total;
    },
    async purge(filter = {}) {
      const { rowCount } = await run(store, d, join(sql`DELETE FROM ${t} WHERE `, where(filter)));
      return rowCount;
    },
    async add(executor, l) {
      await run(
        executor,
        d,
        // The body as bytes: a text column may refuse some characters (NUL, on PostgreSQL).
        d.roles.rows.upsert(
          t,
          `grp, message_id, type, ${quoteColumn(d, "key")}, body, body_bytes, headers, error, attempts, first_failed_at, last_failed_at, transport`,
          sql`(${l.group}, ${l.messageId}, ${l.type}, ${l.key ?? null}, '', ${Buffer.from(l.body, "utf8")}, ${d.encodeJson(l.headers)},
               ${d.encodeJson(l.error)}, ${l.attempts}, ${l.firstFailedAt}, ${l.lastFailedAt}, ${transport.name})`,
          "grp, message_id",
          ["error", "attempts", "last_failed_at", "body", "body_bytes", "transport"],
        ),
      );
    },
  };
  return letters;
}
