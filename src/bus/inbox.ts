import type { Clock } from "../core/clock.js";
import { createBatcher } from "../core/batcher.js";
import { PREPARED, run } from "../store/dialect.js";
import type { SqlStore } from "../store/sql-store.js";
import { join, joinWith, raw, sql, type SqlStatement } from "../store/sql.js";

/** One message of one group. */
interface Entry {
  group: string;
  messageId: string;
}

/** A check (processed already?) or a mark (processed now) of one message. */
interface Op extends Entry {
  mark: boolean;
}

/** Rows per batched statement (3 parameters each: under every driver's limit). */
const MAX_BATCH = 500;

const list = (parts: readonly SqlStatement[]) => joinWith(sql`, `, parts);

/**
 * The inbox: message ids a group has processed. A handler's writes and its id commit in one
 * transaction ({@link claimAsOpening}), so a redelivered message whose effect committed is
 * recognised and acked without running again. Handlers that wrote nothing to the store record their ids with
 * {@link markProcessed}, and every delivery is first checked with {@link isProcessed}; those two
 * are group-committed: the deliveries of many concurrent handlers share one statement.
 */
export function createInbox(store: SqlStore, retentionMs: number, clock: Clock) {
  const d = store.dialect;
  const t = raw(d.table("bus_inbox"));
  let timer: NodeJS.Timeout | undefined;
  const purge = () =>
    run(store, d, sql`DELETE FROM ${t} WHERE processed_at < ${clock.now() - retentionMs}`).catch(
      () => undefined,
    );
  const insertRows = (entries: readonly Entry[]) => {
    const now = clock.now();
    const rows =
      d.name === "postgres"
        ? // Two array parameters however many rows: the statement's plan stays small.
          sql`SELECT g, m, ${now}::bigint FROM unnest(${entries.map((e) => e.group)}::text[], ${entries.map((e) => e.messageId)}::text[]) AS u(g, m)`
        : join(sql`VALUES `, list(entries.map((e) => sql`(${e.group}, ${e.messageId}, ${now})`)));
    return join(
      sql`INSERT INTO ${t} (grp, message_id, processed_at) `,
      rows,
      sql` ON CONFLICT (grp, message_id) DO NOTHING`,
    );
  };

  /** The SELECT of a check batch: one `grp = ? AND message_id IN (…)` per group. */
  const selectProcessed = (entries: readonly Entry[]) => {
    const byGroup = new Map<string, string[]>();
    for (const e of entries) byGroup.set(e.group, [...(byGroup.get(e.group) ?? []), e.messageId]);
    const selects = [...byGroup].map(([group, ids]) =>
      d.name === "postgres"
        ? // One array parameter: the plan does not grow with the batch (a row-value IN over
          // many pairs plans as an OR of index scans — milliseconds per statement).
          sql`SELECT grp, message_id FROM ${t} WHERE grp = ${group} AND message_id = ANY(${ids}::text[])`
        : join(
            sql`SELECT grp, message_id FROM ${t} WHERE grp = ${group} AND message_id IN (`,
            list(ids.map((id) => sql`${id}`)),
            sql`)`,
          ),
    );
    return joinWith(sql` UNION ALL `, selects);
  };

  // Checks of new deliveries and marks of finished ones share one round trip per flush: on
  // PostgreSQL the INSERT is a CTE beside the SELECT; on SQLite (in process) two statements in
  // one transaction. The SELECT does not see this flush's marks — they are other messages'.
  const batch = createBatcher(
    async (ops: Op[]) => {
      const marks = ops.filter((o) => o.mark);
      const checks = ops.filter((o) => !o.mark);
      type Row = { grp: string; message_id: string };
      let rows: Row[] = [];
      if (marks.length === 0) rows = (await run<Row>(store, d, selectProcessed(checks), PREPARED)).rows;
      else if (checks.length === 0) await run(store, d, insertRows(marks), PREPARED);
      else if (d.name === "postgres") {
        const statement = join(sql`WITH marked AS (`, insertRows(marks), sql`) `, selectProcessed(checks));
        rows = (await run<Row>(store, d, statement, PREPARED)).rows;
      } else {
        rows = await store.transaction(async (tx) => {
          await run(tx, d, insertRows(marks));
          return (await run<Row>(tx, d, selectProcessed(checks))).rows;
        });
      }
      const found = new Set(rows.map((r) => `${r.grp}\n${r.message_id}`));
      return ops.map((o) => !o.mark && found.has(`${o.group}\n${o.messageId}`));
    },
    { maxBatch: MAX_BATCH, isolateFailures: true },
  );

  /** Records one id; returns a row unless it was recorded already. */
  const claimStatement = (group: string, messageId: string) =>
    join(insertRows([{ group, messageId }]), sql` RETURNING message_id`);

  return {
    /**
     * Records the id as the opening statement of a handler's transaction (sent with BEGIN where
     * the store can): `duplicate` is thrown, rolling it back, when the id was recorded already.
     * On PostgreSQL a concurrent claim of the same id waits for the first transaction to end.
     */
    claimAsOpening(group: string, messageId: string, duplicate: () => Error) {
      let statement: SqlStatement | undefined;
      return {
        // Built when the transaction opens: most handlers never open one.
        get statement() {
          return (statement ??= claimStatement(group, messageId));
        },
        check(rows: readonly unknown[]) {
          if (rows.length === 0) throw duplicate();
        },
      };
    },
    /** Whether the group processed this message already (a committed record). */
    isProcessed: (group: string, messageId: string): Promise<boolean> =>
      batch.add({ group, messageId, mark: false }),
    /** Records, on its own commit, that the group processed the message. */
    markProcessed: (group: string, messageId: string): Promise<unknown> =>
      batch.add({ group, messageId, mark: true }),
    startPurging() {
      timer ??= setInterval(() => void purge(), Math.min(retentionMs, 3_600_000)).unref();
    },
    stopPurging() {
      if (timer) clearInterval(timer);
      timer = undefined;
    },
  };
}
