/**
 * The console's audit log: one row per action (who, what, on what filter, how many, when, and
 * how it ended), in the store's `console_audit` table. The table is created on first use, not by
 * a numbered migration, so the console can be added to a store without a schema version bump.
 */
import type { Clock } from "../core/clock.js";
import { uuidv7 } from "../core/ids.js";
import { int, run } from "../store/dialect.js";
import type { SqlStore } from "../store/sql-store.js";
import { raw, sql } from "../store/sql.js";

/** One recorded console action. */
export interface AuditEntry {
  id: string;
  /** ms since the epoch. */
  at: number;
  /** Who: the basic-auth user name, `"token"`, or `"local"` (no token configured). */
  actor: string;
  /** `dead-letters.replay`, `sagas.retry`, `webhooks.disable`, ... */
  action: string;
  /** What it acted on: the filter or the selection, as given. */
  target: unknown;
  /** How many things it changed. */
  count: number;
  /** `"ok"`, or the error code it failed with. */
  outcome: string;
}

interface AuditRow {
  id: string;
  at: unknown;
  actor: string;
  action: string;
  target: string | null;
  count: unknown;
  outcome: string;
}

/** The audit log of one store. */
export function consoleAudit(store: SqlStore, clock: Clock) {
  const d = store.dialect;
  const t = raw(d.table("console_audit"));
  let ready: Promise<void> | undefined;
  const ensure = () =>
    (ready ??= run(
      store,
      d,
      sql`CREATE TABLE IF NOT EXISTS ${t} (id TEXT PRIMARY KEY, at BIGINT NOT NULL, actor TEXT NOT NULL,
            action TEXT NOT NULL, target TEXT, count INTEGER NOT NULL, outcome TEXT NOT NULL)`,
    ).then(
      () => undefined,
      (e: unknown) => {
        ready = undefined; // try again next time
        throw e;
      },
    ));
  return {
    async record(entry: Omit<AuditEntry, "id" | "at">): Promise<AuditEntry> {
      await ensure();
      const full: AuditEntry = { id: uuidv7(clock), at: clock.now(), ...entry };
      await run(
        store,
        d,
        sql`INSERT INTO ${t} (id, at, actor, action, target, count, outcome)
            VALUES (${full.id}, ${full.at}, ${full.actor}, ${full.action}, ${JSON.stringify(full.target ?? null)},
                    ${full.count}, ${full.outcome})`,
      );
      return full;
    },
    /** Newest first. */
    async list(limit: number, offset: number): Promise<{ items: AuditEntry[]; total: number }> {
      await ensure();
      const { rows } = await run<AuditRow>(
        store,
        d,
        sql`SELECT * FROM ${t} ORDER BY at DESC, id DESC LIMIT ${limit} OFFSET ${offset}`,
      );
      const counted = await run<{ n: unknown }>(store, d, sql`SELECT COUNT(*) AS n FROM ${t}`);
      return {
        items: rows.map((r) => ({
          id: r.id,
          at: int(r.at),
          actor: r.actor,
          action: r.action,
          target: r.target === null ? null : (JSON.parse(r.target) as unknown),
          count: int(r.count),
          outcome: r.outcome,
        })),
        total: int(counted.rows[0]?.n ?? 0),
      };
    },
  };
}

export type ConsoleAudit = ReturnType<typeof consoleAudit>;
