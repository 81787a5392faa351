/**
 * Slot and publication management on an ordinary connection: checks that the server can do
 * logical replication, describes the captured tables (their key), creates the publication, and
 * reads or drops the slot.
 */
import type { PgQueryable } from "../load.js";
import { CdcReplicaIdentityError, CdcWalLevelError } from "./errors.js";

/** A captured table. */
export interface CapturedTable {
  schema: string;
  table: string;
  /** `"schema"."table"`. */
  quoted: string;
  /** Columns identifying a row: the primary key, the replica identity index, or (FULL) every column. */
  key: string[];
  /** Each key column's SQL type, with its collation when not the type's default (to compare keys as the table does). */
  keyTypes: string[];
  columns: Array<{ name: string; typeOid: number }>;
}

/** What `patchbay cdc status` shows about a slot. */
export interface SlotInfo {
  slot: string;
  active: boolean;
  /** The position confirmed by the consumer (everything before it is stored at the destination). */
  confirmedLsn: string | null;
  /** WAL the server keeps for the slot, in bytes (from `restart_lsn`). */
  retainedBytes: number;
  /** How far the confirmed position is behind the server's current WAL position, in bytes. */
  lagBytes: number;
  /** `pg_replication_slots.wal_status` (`reserved`, `extended`, `unreserved`, `lost`). */
  walStatus: string | null;
}

export const quoteIdent = (name: string) => `"${name.replace(/"/g, '""')}"`;

/** The error for a server running with `wal_level` = `level`: `CDC_WAL_LEVEL` unless it is `logical`. */
export function walLevelError(level: string): CdcWalLevelError | undefined {
  return level === "logical" ? undefined : new CdcWalLevelError(level);
}

/** Reads the server's `wal_level`: `CDC_WAL_LEVEL` unless it is `logical`. */
export async function checkWalLevel(db: PgQueryable): Promise<void> {
  const { rows } = await db.query<{ wal_level: string }>("SHOW wal_level");
  const error = walLevelError(rows[0]?.wal_level ?? "unknown");
  if (error) throw error;
}

/** Describes each table; `CDC_REPLICA_IDENTITY` for a table whose updates and deletes cannot name a row. */
export async function describeTables(
  db: PgQueryable,
  names: readonly { schema: string; table: string }[],
): Promise<CapturedTable[]> {
  const out: CapturedTable[] = [];
  for (const { schema, table } of names) {
    const quoted = `${quoteIdent(schema)}.${quoteIdent(table)}`;
    const { rows: rel } = await db.query<{ oid: number; ident: string }>(
      `SELECT c.oid::int AS oid, c.relreplident::text AS ident FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = $1 AND c.relname = $2`,
      [schema, table],
    );
    const info = rel[0];
    if (!info) throw new CdcReplicaIdentityError(`${quoted} (it does not exist)`);
    const { rows: cols } = await db.query<{ name: string; type: number; sql: string }>(
      `SELECT a.attname AS name, a.atttypid::int AS type,
              format_type(a.atttypid, a.atttypmod) ||
                CASE WHEN a.attcollation <> 0 AND a.attcollation <> t.typcollation
                     THEN ' COLLATE ' || quote_ident(cn.nspname) || '.' || quote_ident(co.collname) ELSE '' END AS sql
         FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
         LEFT JOIN pg_collation co ON co.oid = a.attcollation
         LEFT JOIN pg_namespace cn ON cn.oid = co.collnamespace
        WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
      [info.oid],
    );
    const indexFlag = info.ident === "i" ? "indisreplident" : "indisprimary";
    const { rows: keyRows } = await db.query<{ name: string }>(
      `SELECT a.attname AS name FROM pg_index i
         JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n) ON true
         JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
        WHERE i.indrelid = $1 AND i.${indexFlag} ORDER BY k.n`,
      [info.oid],
    );
    let key = keyRows.map((r) => r.name);
    if (info.ident === "f") key = key.length > 0 ? key : cols.map((c) => c.name);
    if (info.ident === "n" || key.length === 0) throw new CdcReplicaIdentityError(quoted);
    out.push({
      schema,
      table,
      quoted,
      key,
      keyTypes: key.map((k) => cols.find((c) => c.name === k)?.sql ?? "text"),
      columns: cols.map((c) => ({ name: c.name, typeOid: c.type })),
    });
  }
  return out;
}

/** Creates the publication for the tables, or adds the tables it lacks. */
export async function ensurePublication(
  db: PgQueryable,
  publication: string,
  tables: readonly CapturedTable[],
): Promise<void> {
  const { rows } = await db.query<{ schemaname: string; tablename: string }>(
    "SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = $1",
    [publication],
  );
  const exists =
    (await db.query("SELECT 1 FROM pg_publication WHERE pubname = $1", [publication])).rows.length > 0;
  const list = tables.map((t) => t.quoted).join(", ");
  if (!exists) {
    await db.query(`CREATE PUBLICATION ${quoteIdent(publication)} FOR TABLE ${list}`);
    return;
  }
  const have = new Set(rows.map((r) => `${r.schemaname}.${r.tablename}`));
  const missing = tables.filter((t) => !have.has(`${t.schema}.${t.table}`));
  if (missing.length > 0) {
    await db.query(
      `ALTER PUBLICATION ${quoteIdent(publication)} ADD TABLE ${missing.map((t) => t.quoted).join(", ")}`,
    );
  }
}

/** The slot, or `undefined`. */
export async function slotInfo(db: PgQueryable, slot: string): Promise<SlotInfo | undefined> {
  const { rows } = await db.query<{
    active: boolean;
    confirmed: string | null;
    retained: string | null;
    lag: string | null;
    wal_status: string | null;
  }>(
    `SELECT active, confirmed_flush_lsn::text AS confirmed,
            pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::text AS retained,
            pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::text AS lag,
            wal_status
       FROM pg_replication_slots WHERE slot_name = $1`,
    [slot],
  );
  const r = rows[0];
  if (!r) return undefined;
  return {
    slot,
    active: r.active,
    confirmedLsn: r.confirmed,
    retainedBytes: Number(r.retained ?? 0),
    lagBytes: Number(r.lag ?? 0),
    walStatus: r.wal_status,
  };
}

/** Drops the slot (waiting for a consumer that is going away); true when one was dropped. */
export async function dropSlot(db: PgQueryable, slot: string): Promise<boolean> {
  for (let attempt = 0; ; attempt++) {
    try {
      const { rows } = await db.query<{ dropped: boolean }>(
        "SELECT pg_drop_replication_slot(slot_name) IS NULL AS dropped FROM pg_replication_slots WHERE slot_name = $1",
        [slot],
      );
      return rows.length > 0;
    } catch (e) {
      // 55006: the slot is still active (a consumer that is shutting down); wait for it a little.
      if ((e as { code?: string }).code !== "55006" || attempt >= 50) throw e;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/** Drops the publication if it exists. */
export async function dropPublication(db: PgQueryable, publication: string): Promise<void> {
  await db.query(`DROP PUBLICATION IF EXISTS ${quoteIdent(publication)}`);
}
