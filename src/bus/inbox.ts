import type { Clock } from "../core/clock.js";
import { createBatcher } from "../core/batcher.js";
import { every } from "../core/every.js";
import { PREPARED, run } from "../store/dialect.js";
import type { SqlExecutor } from "../store/contracts.js";
import type { SqlStore } from "../store/sql-store.js";
import { joinWith, raw, sql } from "../store/sql.js";

/** One message of one group. */
interface Entry {
  group: string;
  messageId: string;
}

/** Ids per batched check (one array parameter per group: under every driver's limit). */
const MAX_BATCH = 500;

/**
 * The inbox: message ids a group has processed. A handler's writes and its id commit in one
 * transaction ({@link claim}), so a redelivered message whose effect committed is
 * recognised and acked without running again ({@link isProcessed}). Handlers that wrote nothing
 * record nothing: they have no store effect to protect. Checks are group-committed: the
 * deliveries of many concurrent handlers share one statement.
 */
export function createInbox(store: SqlStore, retentionMs: number, clock: Clock) {
  const d = store.dialect;
  const t = raw(d.table("bus_inbox"));
  let purging: AbortController | undefined;
  const purge = () =>
    run(store, d, sql`DELETE FROM ${t} WHERE processed_at < ${clock.now() - retentionMs}`).catch(
      () => undefined,
    );

  /** The SELECT of a check batch: one statement per group, in one UNION ALL. */
  const selectProcessed = (entries: readonly Entry[]) => {
    const byGroup = new Map<string, string[]>();
    for (const e of entries) {
      const ids = byGroup.get(e.group);
      if (ids) ids.push(e.messageId);
      else byGroup.set(e.group, [e.messageId]);
    }
    const selects = [...byGroup].map(([group, ids]) => d.roles.inbox.processed(t, group, ids));
    return joinWith(sql` UNION ALL `, selects);
  };

  const checks = createBatcher(
    async (entries: Entry[]) => {
      type Row = { grp: string; message_id: string };
      const { rows } = await run<Row>(store, d, selectProcessed(entries), PREPARED);
      const found = new Set(rows.map((r) => `${r.grp}\n${r.message_id}`));
      return entries.map((e) => found.has(`${e.group}\n${e.messageId}`));
    },
    { maxBatch: MAX_BATCH, isolateFailures: true },
  );

  /** Records one id; returns a row unless it was recorded already. */
  const claimStatement = (group: string, messageId: string) =>
    d.roles.inbox.record(t, group, messageId, clock.now());

  return {
    /**
     * What a handler's transaction runs when it opens: the claim of its message id. `duplicate`
     * is thrown, rolling it back, when the id was recorded already. Where writers run
     * concurrently, a concurrent claim of the same id waits for the first transaction to end (the
     * unique key's lock).
     */
    claim: (group: string, messageId: string, duplicate: () => Error) => async (tx: SqlExecutor) => {
      const { rows } = await run(tx, d, claimStatement(group, messageId), PREPARED);
      if (rows.length === 0) throw duplicate();
    },
    /**
     * The same for a transaction shared by several deliveries: one statement where the store
     * records many ids at once (`recordMany`), else one per id. Throws `duplicate`, rolling the
     * transaction back, unless every id was recorded now.
     */
    claimMany(group: string, messageIds: readonly string[], duplicate: () => Error) {
      const roles = d.roles.inbox;
      return async (tx: SqlExecutor) => {
        if (roles.recordMany) {
          const { rows } = await run(tx, d, roles.recordMany(t, group, messageIds, clock.now()), PREPARED);
          if (rows.length !== messageIds.length) throw duplicate();
          return;
        }
        for (const id of messageIds) {
          const { rows } = await run(tx, d, claimStatement(group, id), PREPARED);
          if (rows.length === 0) throw duplicate();
        }
      };
    },
    /** Whether the group processed this message already (a committed record). */
    isProcessed: (group: string, messageId: string): Promise<boolean> => checks.add({ group, messageId }),
    /** Deletes ids older than the retention every hour (or retention) of the clock's time. */
    startPurging() {
      if (purging) return;
      purging = new AbortController();
      every(clock, Math.min(retentionMs, 3_600_000), () => void purge(), purging.signal);
    },
    stopPurging() {
      purging?.abort();
      purging = undefined;
    },
  };
}
