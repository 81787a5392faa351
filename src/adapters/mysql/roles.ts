/**
 * MariaDB (≥ 10.6) and MySQL (≥ 8.0) statement sets, for a store on InnoDB. Claims pick with
 * `FOR UPDATE SKIP LOCKED` in a transaction, then update and read back what they picked: neither
 * has `UPDATE ... RETURNING` (MariaDB 10.x has it on INSERT and DELETE only), and neither accepts
 * `LIMIT` in an `IN (subquery)`. Duplicates are ignored with `INSERT IGNORE` (its affected-row
 * count is the rows inserted, whatever the connection's `FOUND_ROWS` flag), upserts use
 * `ON DUPLICATE KEY UPDATE`. No notifications: consumers in other processes poll.
 *
 * `INSERT IGNORE` also turns some other errors into warnings (a NULL into NOT NULL, a value too
 * long, which it stores cut short): the driver reads the warnings of every `INSERT IGNORE` and
 * refuses the statement on any but a duplicate key (see `driver.ts`).
 */
import { join, joinWith, raw, sql, type RawSql, type SqlStatement } from "../../store/sql.js";
import type { SqlExecutor } from "../../store/contracts.js";
import type { StoreRoles } from "../../store/roles.js";
import { inboxRows, list, pairs, runIn, sharedInboxRoles, sharedQueueRoles } from "../shared/roles.js";

/** InnoDB chose this transaction as a deadlock's victim and rolled it back (`ER_LOCK_DEADLOCK`, 1213). */
const isDeadlock = (e: unknown): boolean => {
  const cause = (e as { cause?: { errno?: unknown } }).cause;
  return (
    cause?.errno === 1213 || (cause as { cause?: { errno?: unknown } } | undefined)?.cause?.errno === 1213
  );
};

/**
 * Applies `set` to the `picked` rows (by `key`, which the caller holds locked) and reads `columns`
 * of them back: `UPDATE ... RETURNING`, which neither database has, in two statements.
 */
async function updateAndRead(
  tx: SqlExecutor,
  table: RawSql,
  key: string,
  picked: readonly Record<string, unknown>[],
  set: SqlStatement,
  columns: string,
): Promise<never[]> {
  if (picked.length === 0) return [];
  const keys = list(picked.map((r) => r[key]));
  await runIn("question", tx, join(sql`UPDATE ${table} SET `, set, sql` WHERE ${raw(key)} IN `, keys));
  const { rows } = await runIn<never>(
    "question",
    tx,
    join(sql`SELECT ${raw(columns)} FROM ${table} WHERE ${raw(key)} IN `, keys),
  );
  return rows;
}

/** `ER_DUP_ENTRY`: a row with that key exists. */
const DUPLICATE_KEY = 1062;

/** The server's error number of `e` or of the error it wraps (a store error's `cause`). */
function errnoOf(e: unknown): unknown {
  for (let at: unknown = e, depth = 0; at && depth < 4; at = (at as { cause?: unknown }).cause, depth++) {
    const errno = (at as { errno?: unknown }).errno;
    if (errno !== undefined) return errno;
  }
  return undefined;
}

/** What a step record's rewrite changes: everything but its first `started_at`. */
const STEP_UPDATES = ["name", "status", "result", "error", "attempts", "finished_at", "note"];

/** Claim attempts before rows skipped as locked are left to a later claim (see `claim`). */
const CLAIM_ROUNDS = 4;

export const mysqlRoles: StoreRoles = {
  rows: {
    async claim(store, s, options) {
      const key = raw(s.key);
      const due = (locking: boolean) =>
        join(
          sql`SELECT ${key} FROM ${s.table} WHERE `,
          s.where,
          sql` ORDER BY ${raw(s.orderBy)} LIMIT ${s.limit}`,
          locking ? sql` FOR UPDATE SKIP LOCKED` : sql``,
        );
      for (let round = 1; ; round++) {
        const claimed = await store.transaction(async (tx) => {
          const { rows: picked } = await runIn<Record<string, unknown>>("question", tx, due(true), options);
          // InnoDB's SKIP LOCKED also skips a row locked for an instant by a statement on a
          // neighbouring row (an ack, another group's claim), so one consumer could take its
          // queue out of order. The committed due rows, read without locks, are what an honest
          // skip leaves out only while another claim holds them: until that claim commits
          // (moments), the claim runs again; past the last round, what was skipped stays skipped.
          if (round < CLAIM_ROUNDS) {
            const { rows: committed } = await runIn<Record<string, unknown>>(
              "question",
              tx,
              due(false),
              options,
            );
            const same =
              committed.length === picked.length &&
              committed.every((r, i) => String(r[s.key]) === String(picked[i]?.[s.key]));
            if (!same) return undefined;
          }
          return updateAndRead(tx, s.table, s.key, picked, s.set, "*");
        });
        if (claimed) return claimed;
        await new Promise((resolve) => setTimeout(resolve, round));
      }
    },
    async updateReturning(tx, s) {
      const key = raw(s.key);
      const { rows: picked } = await runIn<Record<string, unknown>>(
        "question",
        tx,
        join(sql`SELECT ${key} FROM ${s.table} WHERE `, s.where, sql` FOR UPDATE`),
      );
      return updateAndRead(tx, s.table, s.key, picked, s.set, s.columns);
    },
    insertIgnore: (table, columns, rows) =>
      join(sql`INSERT IGNORE INTO ${table} (${raw(columns)}) VALUES `, joinWith(sql`, `, rows)),
    upsert: (table, columns, row, _conflict, update) =>
      join(
        sql`INSERT INTO ${table} (${raw(columns)}) VALUES `,
        row,
        sql` ON DUPLICATE KEY UPDATE ${raw(update.map((c) => `${c} = VALUES(${c})`).join(", "))}`,
      ),
    upsertWhen(ex, s) {
      // The update first: it locks the existing row for writing at once. An INSERT IGNORE first
      // would take a shared lock on the clashing row, and two callers both holding one and both
      // then updating deadlock.
      const update = join(
        sql`UPDATE ${s.table} AS ${raw(s.alias)} SET `,
        s.set,
        sql` WHERE `,
        s.match,
        s.when ? join(sql` AND (`, s.when, sql`)`) : sql``,
      );
      const go = async (tx: SqlExecutor): Promise<never[]> => {
        if ((await runIn("question", tx, update)).rowCount === 0) {
          const inserted = await runIn(
            "question",
            tx,
            join(sql`INSERT IGNORE INTO ${s.table} (${raw(s.columns)}) VALUES `, s.row),
          );
          if (inserted.rowCount === 0) {
            // Ignored: another caller's row came in between; with `when` it is a live one (a
            // claim's). Without `when` it is updated, which waits for that caller's commit.
            if (s.when || (await runIn("question", tx, update)).rowCount === 0) return [];
          }
        }
        const { rows } = await runIn<never>(
          "question",
          tx,
          join(sql`SELECT ${raw(s.returning)} FROM ${s.table} WHERE `, s.match),
        );
        return rows;
      };
      if (!ex.transaction) return go(ex);
      const own = ex.transaction.bind(ex);
      // Two callers inserting one new key both wait on the other's shared lock when they go on to
      // update it: InnoDB rolls one back (a deadlock), and that one runs again.
      const attempt = async (left: number): Promise<never[]> => {
        try {
          return await own(go);
        } catch (e) {
          if (left > 0 && isDeadlock(e)) return attempt(left - 1);
          throw e;
        }
      };
      return attempt(5);
    },
    jsonText: (text) => (text === null ? sql`NULL` : sql`${text}`),
  },
  locks: {
    forUpdate: sql` FOR UPDATE`,
    // No `OF alias`: a SELECT that joins locks the rows it reads from every table it joins.
    skipLocked: () => sql` FOR UPDATE SKIP LOCKED`,
  },
  queue: {
    ...sharedQueueRoles,
    // Neither has SKIP LOCKED in an UPDATE: the rows are picked with it first, in a transaction.
    async extend(store, jobs, refs, until) {
      await store.transaction(async (tx) => {
        const { rows } = await runIn<{ id: unknown }>(
          "question",
          tx,
          join(
            sql`SELECT id FROM ${jobs} WHERE id IN `,
            list(refs.map((r) => r.id)),
            sql` AND (id, attempt) IN (`,
            pairs(refs),
            sql`) FOR UPDATE SKIP LOCKED`,
          ),
        );
        if (rows.length === 0) return;
        await runIn(
          "question",
          tx,
          join(sql`UPDATE ${jobs} SET run_at = ${until} WHERE id IN `, list(rows.map((r) => r.id))),
        );
      });
    },
  },
  inbox: {
    ...sharedInboxRoles,
    // INSERT ... RETURNING: MariaDB ≥ 10.5. An ignored duplicate returns no row.
    record: (inbox, group, messageId, now) =>
      sql`INSERT IGNORE INTO ${inbox} (grp, message_id, processed_at) VALUES (${group}, ${messageId}, ${now})
          RETURNING message_id`,
    recordMany: (inbox, group, messageIds, now) =>
      join(
        sql`INSERT IGNORE INTO ${inbox} (grp, message_id, processed_at) VALUES `,
        inboxRows(group, messageIds, now),
        sql` RETURNING message_id`,
      ),
  },
  saga: {
    // A step's outcome in one round trip: the fenced update and the step row as one script the
    // driver runs as one transaction (`START TRANSACTION; …; COMMIT`, rolled back whole on any
    // error). The step row is written only while the instance still holds the claim the update
    // was fenced by (that update holds its row lock): a stale claim writes nothing, and the
    // update's row count (the script's) is 0. Neither database has a one-statement form:
    // `UPDATE … RETURNING` and a data-changing CTE are missing.
    outcome: (update, steps, s, fence) =>
      join(
        update,
        sql`;
INSERT INTO ${steps} (saga_id, idx, phase, name, status, result, error, attempts, started_at, finished_at, note)
  SELECT ${fence.id}, ${s.index}, ${s.phase}, ${s.name}, ${s.status}, `,
        s.resultJson === null ? sql`NULL` : sql`${s.resultJson}`,
        sql`, ${s.error}, ${s.attempts}, ${s.startedAt}, ${s.finishedAt}, ${s.note} FROM DUAL
  WHERE EXISTS (SELECT 1 FROM ${fence.instances} WHERE id = ${fence.id} AND claim = ${fence.claim})
  ON DUPLICATE KEY UPDATE ${raw(STEP_UPDATES.map((c) => `${c} = VALUES(${c})`).join(", "))};`,
      ),
    outcomeOptions: { atomicScript: true },
    // A start in one round trip: a plain INSERT in autocommit, its duplicate-key error the answer.
    // INSERT IGNORE would also store a value too long for its column cut short (only a warning):
    // the driver reads its warnings in a transaction of its own, three round trips. In strict
    // mode (every Patchbay session) a plain INSERT refuses such a value outright.
    async insertAlone(ex, table, columns, row) {
      try {
        await runIn("question", ex, join(sql`INSERT INTO ${table} (${raw(columns)}) VALUES `, row), {
          prepare: true,
        });
        return true;
      } catch (e) {
        if (errnoOf(e) === DUPLICATE_KEY) return false;
        throw e;
      }
    },
  },
};
