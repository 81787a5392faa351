/**
 * The logical replication slots of the store's PostgreSQL database, for `patchbay status` and the
 * `patchbay_cdc_slot_lag_bytes` gauge: every slot there keeps WAL on the server's disk, whether a
 * capture of this process owns it or not (an abandoned one is exactly what to see).
 */
import type { SqlStore } from "../store/sql-store.js";

/** One slot, as `patchbay status` shows it. */
export interface SlotReport {
  slot: string;
  active: boolean;
  /** How far the confirmed position is behind the server's WAL, in bytes. */
  lagBytes: number;
  /** WAL the server keeps for the slot, in bytes. */
  retainedBytes: number;
  walStatus: string | null;
}

/**
 * The logical slots of the store's database; `[]` when the store is not PostgreSQL (only
 * PostgreSQL has them: the query is in its SQL, chosen by `capabilities.dialect` like user SQL).
 */
export async function readChangeSlots(
  store: Pick<SqlStore, "capabilities" | "query">,
): Promise<SlotReport[]> {
  if (store.capabilities.dialect !== "postgres") return [];
  const { rows } = await store.query<{
    slot_name: string;
    active: boolean;
    lag: string | null;
    retained: string | null;
    wal_status: string | null;
  }>(
    `SELECT slot_name, active,
            pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::text AS lag,
            pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::text AS retained,
            wal_status
       FROM pg_replication_slots
      WHERE slot_type = 'logical' AND database = current_database()
      ORDER BY slot_name`,
  );
  return rows.map((r) => ({
    slot: r.slot_name,
    active: r.active === true,
    lagBytes: Number(r.lag ?? 0),
    retainedBytes: Number(r.retained ?? 0),
    walStatus: r.wal_status,
  }));
}
