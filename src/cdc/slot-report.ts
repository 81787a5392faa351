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
  /**
   * While a capture reads the slot: seconds between the server writing WAL and the capture
   * confirming it (`pg_stat_replication.flush_lag`; 0 once caught up). `null` while no capture
   * reads it (then only the bytes grow).
   */
  lagSeconds: number | null;
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
    lag_seconds: string | null;
    retained: string | null;
    wal_status: string | null;
  }>(
    `SELECT s.slot_name, s.active,
            pg_wal_lsn_diff(pg_current_wal_lsn(), s.confirmed_flush_lsn)::text AS lag,
            CASE WHEN r.pid IS NOT NULL THEN COALESCE(EXTRACT(EPOCH FROM r.flush_lag), 0)::text END AS lag_seconds,
            pg_wal_lsn_diff(pg_current_wal_lsn(), s.restart_lsn)::text AS retained,
            s.wal_status
       FROM pg_replication_slots s
       LEFT JOIN pg_stat_replication r ON r.pid = s.active_pid
      WHERE s.slot_type = 'logical' AND s.database = current_database()
      ORDER BY s.slot_name`,
  );
  return rows.map((r) => ({
    slot: r.slot_name,
    active: r.active === true,
    lagBytes: Number(r.lag ?? 0),
    lagSeconds: r.lag_seconds === null ? null : Number(r.lag_seconds),
    retainedBytes: Number(r.retained ?? 0),
    walStatus: r.wal_status,
  }));
}
