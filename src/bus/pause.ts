/**
 * Paused consumer groups, kept in the store (`bus_paused_groups`), so a pause holds across every
 * process sharing the store and across restarts. A bus reads the list when it starts and every
 * `pausePollInterval` after; its consumer of a listed group is stopped (the handlers running
 * finish) and started again once the group is resumed. The messages wait in the queue or the
 * broker meanwhile: a pause never retries, releases into a retry count or dead-letters anything.
 */
import { systemClock, type Clock } from "../core/clock.js";
import { int, run } from "../store/dialect.js";
import { InvalidArgumentError } from "../core/errors.js";
import type { SqlStore } from "../store/sql-store.js";
import { raw, sql } from "../store/sql.js";

/** What a consumer group's name may hold. */
export const GROUP_NAME = /^[A-Za-z0-9_.-]{1,100}$/;

/** Throws `INVALID_ARGUMENT` unless `group` is a valid consumer group name. */
export function assertGroupName(group: unknown): asserts group is string {
  if (typeof group !== "string" || !GROUP_NAME.test(group)) {
    throw new InvalidArgumentError("group must be 1-100 characters of letters, digits, _ . -", "group");
  }
}

/** A paused consumer group. */
export interface PausedGroup {
  group: string;
  /** When it was paused (ms since the epoch). */
  pausedAt: number;
  /** Who paused it, when said (the console's actor, the CLI's user). */
  by: string | undefined;
}

/** The paused groups of a store. */
export interface GroupPauses {
  /** Pauses `group` (whether it is bound yet or not); false when it was paused already. */
  pause(group: string, options?: { by?: string }): Promise<boolean>;
  /** Resumes `group`; false when it was not paused. */
  resume(group: string): Promise<boolean>;
  /** Every paused group, by name. */
  list(): Promise<PausedGroup[]>;
}

/** The paused groups kept in `store` (no bus needed: the CLI and the console use this too). */
export function groupPauses(store: SqlStore, clock: Clock = systemClock): GroupPauses {
  const d = store.dialect;
  const table = raw(d.table("bus_paused_groups"));
  return {
    async pause(group, options = {}) {
      assertGroupName(group);
      const row = sql`(${group}, ${clock.now()}, ${options.by ?? null})`;
      const { rowCount } = await run(
        store,
        d,
        d.roles.rows.insertIgnore(table, "grp, paused_at, paused_by", [row], "grp"),
      );
      return rowCount > 0;
    },
    async resume(group) {
      assertGroupName(group);
      const { rowCount } = await run(store, d, sql`DELETE FROM ${table} WHERE grp = ${group}`);
      return rowCount > 0;
    },
    async list() {
      const { rows } = await run<{ grp: string; paused_at: unknown; paused_by: string | null }>(
        store,
        d,
        sql`SELECT grp, paused_at, paused_by FROM ${table} ORDER BY grp`,
      );
      return rows.map((r) => ({ group: r.grp, pausedAt: int(r.paused_at), by: r.paused_by ?? undefined }));
    },
  };
}
