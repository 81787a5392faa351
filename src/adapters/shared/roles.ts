/**
 * Statement sets for backends with `INSERT ... ON CONFLICT` and `UPDATE ... RETURNING` (SQLite
 * 3.35+, PostgreSQL): what the SQLite adapter uses as is, and the PostgreSQL adapter where it has
 * nothing faster. Without `SKIP LOCKED`: such a backend's writers are serial (SQLite), so a claim
 * never meets another's locked rows.
 */
import type { QueryResult, SqlExecutor } from "../../store/contracts.js";
import { render, join, joinWith, raw, sql, type SqlStatement } from "../../store/sql.js";
import type { InboxRoles, LockRoles, QueueRoles, RowRoles, StoreRoles } from "../../store/roles.js";

/** Runs a statement in a placeholder style. */
export function runIn<Row>(
  placeholders: "numbered" | "question",
  ex: SqlExecutor,
  statement: SqlStatement,
  options?: Parameters<SqlExecutor["query"]>[2],
): Promise<QueryResult<Row>> {
  const { text, params } = render(statement, placeholders);
  return ex.query<Row>(text, params, options);
}

/** `(a, b), (c, d)`: one row value per ref. */
export const pairs = (refs: readonly { id: number; attempt: number }[]): SqlStatement =>
  joinWith(
    sql`, `,
    refs.map((r) => sql`(${r.id}, ${r.attempt})`),
  );

/** `(?, ?, …)`: one parameter per value. */
export const list = (values: readonly unknown[]): SqlStatement =>
  join(
    sql`(`,
    joinWith(
      sql`, `,
      values.map((v) => sql`${v}`),
    ),
    sql`)`,
  );

/** `(grp, id, now), …`: one inbox row value per message id. */
export const inboxRows = (group: string, messageIds: readonly string[], now: number): SqlStatement =>
  joinWith(
    sql`, `,
    messageIds.map((id) => sql`(${group}, ${id}, ${now})`),
  );

/** Rows: claims as one `UPDATE ... WHERE key IN (SELECT ... LIMIT) RETURNING *`. */
export function sharedRowRoles(placeholders: "numbered" | "question"): RowRoles {
  return {
    async claim(store, s, options) {
      const key = raw(s.key);
      const { rows } = await runIn<never>(
        placeholders,
        store,
        join(
          sql`UPDATE ${s.table} SET `,
          s.set,
          sql` WHERE ${key} IN (SELECT ${key} FROM ${s.table} WHERE `,
          s.where,
          sql` ORDER BY ${raw(s.orderBy)} LIMIT ${s.limit}) RETURNING *`,
        ),
        options,
      );
      return rows;
    },
    async updateReturning(tx, s) {
      const { rows } = await runIn<never>(
        placeholders,
        tx,
        join(sql`UPDATE ${s.table} SET `, s.set, sql` WHERE `, s.where, sql` RETURNING ${raw(s.columns)}`),
      );
      return rows;
    },
    insertIgnore: (table, columns, rows, conflict) =>
      join(
        sql`INSERT INTO ${table} (${raw(columns)}) VALUES `,
        joinWith(sql`, `, rows),
        sql` ON CONFLICT (${raw(conflict)}) DO NOTHING`,
      ),
    upsert: (table, columns, row, conflict, update) =>
      join(
        sql`INSERT INTO ${table} (${raw(columns)}) VALUES `,
        row,
        sql` ON CONFLICT (${raw(conflict)}) DO UPDATE SET ${raw(update.map((c) => `${c} = excluded.${c}`).join(", "))}`,
      ),
    async upsertWhen(ex, s) {
      const { rows } = await runIn<never>(
        placeholders,
        ex,
        join(
          sql`INSERT INTO ${s.table} AS ${raw(s.alias)} (${raw(s.columns)}) VALUES `,
          s.row,
          sql` ON CONFLICT (${raw(s.conflict)}) DO UPDATE SET `,
          s.set,
          s.when ? join(sql` WHERE `, s.when) : sql``,
          sql` RETURNING ${raw(s.returning)}`,
        ),
        s.prepare ? { prepare: true } : undefined,
      );
      return rows;
    },
    jsonText: (text) => (text === null ? sql`NULL` : sql`${text}`),
  };
}

/** No row locks: a transaction holds the whole database. */
export const serialLocks: LockRoles = { forUpdate: sql``, skipLocked: () => sql`` };

/** Queue acks and hand-backs with row-value `IN` lists. */
export const sharedQueueRoles: QueueRoles = {
  ack: (jobs, refs) => join(sql`DELETE FROM ${jobs} WHERE (id, attempt) IN (`, pairs(refs), sql`)`),
  release: (jobs, refs, now) =>
    join(
      sql`UPDATE ${jobs} SET run_at = ${now}, attempt = attempt - 1 WHERE (id, attempt) IN (`,
      pairs(refs),
      sql`)`,
    ),
};

/** The inbox with `IN` lists and `ON CONFLICT DO NOTHING RETURNING`. */
export const sharedInboxRoles: InboxRoles = {
  processed: (inbox, group, ids) =>
    join(sql`SELECT grp, message_id FROM ${inbox} WHERE grp = ${group} AND message_id IN `, list(ids)),
  record: (inbox, group, messageId, now) =>
    sql`INSERT INTO ${inbox} (grp, message_id, processed_at) VALUES (${group}, ${messageId}, ${now})
        ON CONFLICT (grp, message_id) DO NOTHING RETURNING message_id`,
  recordMany: (inbox, group, messageIds, now) =>
    join(
      sql`INSERT INTO ${inbox} (grp, message_id, processed_at) VALUES `,
      inboxRows(group, messageIds, now),
      sql` ON CONFLICT (grp, message_id) DO NOTHING RETURNING message_id`,
    ),
};

/** Every shared role: a backend with serial writers and no notifications (SQLite). */
export function sharedRoles(placeholders: "numbered" | "question"): StoreRoles {
  return {
    rows: sharedRowRoles(placeholders),
    locks: serialLocks,
    queue: sharedQueueRoles,
    inbox: sharedInboxRoles,
    saga: {},
  };
}
