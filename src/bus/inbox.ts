import type { Clock } from "../core/clock.js";
import type { SqlExecutor } from "../store/contracts.js";
import { run } from "../store/dialect.js";
import type { SqlStore } from "../store/sql-store.js";
import { raw, sql } from "../store/sql.js";

/**
 * The inbox: message ids a group has processed. Recorded in the handler's transaction, so a
 * redelivered message whose effect committed is recognised and acked without running again.
 */
export function createInbox(store: SqlStore, retentionMs: number, clock: Clock) {
  const d = store.dialect;
  const t = raw(d.table("bus_inbox"));
  let timer: NodeJS.Timeout | undefined;
  const purge = () =>
    run(store, d, sql`DELETE FROM ${t} WHERE processed_at < ${clock.now() - retentionMs}`).catch(
      () => undefined,
    );

  return {
    /** Records the id; false when it was recorded already (a duplicate). */
    async claim(executor: SqlExecutor, group: string, messageId: string): Promise<boolean> {
      const { rows } = await run(
        executor,
        d,
        sql`INSERT INTO ${t} (grp, message_id, processed_at) VALUES (${group}, ${messageId}, ${clock.now()})
            ON CONFLICT (grp, message_id) DO NOTHING RETURNING message_id`,
      );
      return rows.length > 0;
    },
    async seen(executor: SqlExecutor, group: string, messageId: string): Promise<boolean> {
      const { rows } = await run(
        executor,
        d,
        sql`SELECT 1 AS one FROM ${t} WHERE grp = ${group} AND message_id = ${messageId}`,
      );
      return rows.length > 0;
    },
    async record(executor: SqlExecutor, group: string, messageId: string): Promise<void> {
      await this.claim(executor, group, messageId);
    },
    startPurging() {
      timer ??= setInterval(() => void purge(), Math.min(retentionMs, 3_600_000)).unref();
    },
    stopPurging() {
      if (timer) clearInterval(timer);
      timer = undefined;
    },
  };
}
