/**
 * PostgreSQL's statement sets: claims with `FOR UPDATE SKIP LOCKED`, batches as array parameters
 * (one statement text whatever the batch holds, so it stays prepared, and a plan that does not
 * grow with the batch: a row-value `IN` over many pairs plans as an OR of index scans), wake-ups
 * with `pg_notify`, and a saga outcome in one statement.
 */
import { join, raw, sql, type RawSql, type SqlStatement } from "../../store/sql.js";
import type { QueuedRow, StoreRoles } from "../../store/roles.js";
import { runIn, sharedInboxRoles, sharedRowRoles } from "../shared/roles.js";

const shared = sharedRowRoles("numbered");

/** The queue's `INSERT ... SELECT` from array parameters (one per column), in the arrays' order. */
const insertJobs = (jobs: RawSql, rows: readonly QueuedRow[], where: SqlStatement = sql``): SqlStatement =>
  join(
    sql`INSERT INTO ${jobs} (grp, message_id, type, "key", body, headers, attempt, fresh, run_at, created_at)
        SELECT u.grp, u.message_id, u.type, u.key, u.body, u.headers::jsonb, 0, u.fresh, u.run_at, u.created_at
        FROM unnest(${rows.map((r) => r.grp)}::text[], ${rows.map((r) => r.messageId)}::text[],
          ${rows.map((r) => r.type)}::text[], ${rows.map((r) => r.key)}::text[], ${rows.map((r) => r.body)}::text[],
          ${rows.map((r) => r.headers)}::text[], ${rows.map((r) => (r.fresh ? 1 : 0))}::smallint[],
          ${rows.map((r) => r.runAt)}::bigint[], ${rows.map((r) => r.createdAt)}::bigint[])
          WITH ORDINALITY AS u(grp, message_id, type, key, body, headers, fresh, run_at, created_at, ord)`,
    where,
    sql` ORDER BY u.ord`,
  );

/** One row: the bindings as a JSON array of `[group, pattern]` pairs, in one order. */
const bindingsList = (bindings: RawSql): SqlStatement =>
  sql`SELECT coalesce(json_agg(json_build_array(grp, pattern) ORDER BY grp COLLATE "C", pattern COLLATE "C")::text, '[]') AS list
      FROM ${bindings}`;

export const postgresRoles: StoreRoles = {
  rows: {
    ...shared,
    async claim(store, s, options) {
      const key = raw(s.key);
      // MATERIALIZED: the pick runs exactly once. As a plain IN (subquery) PostgreSQL may
      // evaluate it more than once and claim more rows than LIMIT.
      const { rows } = await runIn<never>(
        "numbered",
        store,
        join(
          sql`WITH picked AS MATERIALIZED (SELECT ${key} FROM ${s.table} WHERE `,
          s.where,
          sql` ORDER BY ${raw(s.orderBy)} LIMIT ${s.limit} FOR UPDATE SKIP LOCKED)
              UPDATE ${s.table} AS claimed SET `,
          s.set,
          sql` FROM picked WHERE claimed.${key} = picked.${key} RETURNING claimed.*`,
          s.also ? join(sql`, `, s.also) : sql``,
        ),
        options,
      );
      return rows;
    },
    // jsonb parameters arrive as text; a cast makes pre-encoded text a document.
    jsonText: (text) => (text === null ? sql`NULL` : sql`${text}::jsonb`),
  },
  locks: {
    forUpdate: sql` FOR UPDATE`,
    skipLocked: (of) => (of ? sql` FOR UPDATE OF ${raw(of)} SKIP LOCKED` : sql` FOR UPDATE SKIP LOCKED`),
  },
  queue: {
    // Arrays, not a VALUES list: one statement text for every batch, prepared once and planned
    // once, where a VALUES list of 32 rows (320 placeholders) was parsed and planned on every
    // publish flush — about half of PostgreSQL's CPU for the INSERT.
    enqueue: (jobs, rows) => join(insertJobs(jobs, rows), sql` ON CONFLICT (grp, message_id) DO NOTHING`),
    // The bindings' check and the insert in one statement (one snapshot): a publish outside a
    // transaction is one round trip instead of two, the bindings read being its other half.
    bound: {
      read: (bindings) => join(sql`SELECT list, md5(list) AS fp FROM (`, bindingsList(bindings), sql`) AS b`),
      enqueue: (jobs, bindings, rows, fp, notify) =>
        join(
          sql`WITH b AS MATERIALIZED (SELECT list, md5(list) AS fp FROM (`,
          bindingsList(bindings),
          sql`) AS l), ins AS (`,
          insertJobs(jobs, rows, sql` WHERE (SELECT fp FROM b) = ${fp}`),
          sql` ON CONFLICT (grp, message_id) DO NOTHING RETURNING 1)
              SELECT CASE WHEN b.fp = ${fp} THEN NULL ELSE b.list END AS list,
                CASE WHEN b.fp = ${fp} THEN NULL ELSE b.fp END AS fp`,
          notify
            ? sql`, (SELECT count(*) FROM (SELECT pg_notify(${notify.channel}, ${notify.payload})
                  WHERE EXISTS (SELECT 1 FROM ins)) AS n) AS notified`
            : sql``,
          sql` FROM b`,
        ),
    },
    ack: (jobs, refs) =>
      sql`DELETE FROM ${jobs} AS j USING unnest(${refs.map((r) => r.id)}::bigint[], ${refs.map((r) => r.attempt)}::integer[]) AS u(id, attempt)
          WHERE j.id = u.id AND j.attempt = u.attempt`,
    // SKIP LOCKED: a heartbeat never waits on (or deadlocks with) an ack or hand-back of the same
    // rows in flight; a row skipped is being settled, or is extended at the next beat.
    async extend(store, jobs, refs, until) {
      await runIn(
        "numbered",
        store,
        sql`WITH picked AS MATERIALIZED (
              SELECT j.id FROM ${jobs} AS j
              JOIN unnest(${refs.map((r) => r.id)}::bigint[], ${refs.map((r) => r.attempt)}::integer[]) AS u(id, attempt)
                ON j.id = u.id AND j.attempt = u.attempt
              FOR UPDATE OF j SKIP LOCKED)
            UPDATE ${jobs} AS j SET run_at = ${until} FROM picked WHERE j.id = picked.id`,
        { prepare: true },
      );
    },
    release: (jobs, refs, now) =>
      sql`UPDATE ${jobs} AS j SET run_at = ${now}, attempt = j.attempt - 1
          FROM unnest(${refs.map((r) => r.id)}::bigint[], ${refs.map((r) => r.attempt)}::integer[]) AS u(id, attempt)
          WHERE j.id = u.id AND j.attempt = u.attempt`,
  },
  inbox: {
    ...sharedInboxRoles,
    processed: (inbox, group, ids) =>
      sql`SELECT grp, message_id FROM ${inbox} WHERE grp = ${group} AND message_id = ANY(${ids}::text[])`,
  },
  saga: {
    // The step row is inserted from the updated row: no update, no insert.
    outcome: (update, steps, s) =>
      join(
        sql`WITH fenced AS (`,
        update,
        sql` RETURNING id) INSERT INTO ${steps} (saga_id, idx, phase, name, status, result, error, attempts, started_at, finished_at, note)
            SELECT fenced.id, ${s.index}::integer, ${s.phase}::text, ${s.name}::text, ${s.status}::text, `,
        s.resultJson === null ? sql`NULL` : sql`${s.resultJson}::jsonb`,
        sql`, ${s.error}::jsonb, ${s.attempts}::integer, ${s.startedAt}::bigint, ${s.finishedAt}::bigint, ${s.note}::text
            FROM fenced
            ON CONFLICT (saga_id, idx, phase) DO UPDATE SET name = excluded.name, status = excluded.status,
              result = excluded.result, error = excluded.error, attempts = excluded.attempts,
              finished_at = excluded.finished_at, note = excluded.note`,
      ),
  },
  notify: {
    signal: (channel, payload) => sql`SELECT pg_notify(${channel}, ${payload})`,
    after: (statement, channel, payload) =>
      join(
        sql`WITH changed AS (`,
        statement,
        sql` RETURNING 1) SELECT pg_notify(${channel}, ${payload}) WHERE EXISTS (SELECT 1 FROM changed)`,
      ),
  },
};
