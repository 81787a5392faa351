/**
 * The warehouse: a scheduled pipeline that copies orders joined with their users into the
 * article's `warehouse.orders` table, with year / month / quarter columns — incremental by
 * `updated_at` (key `id` as tiebreak) with merge, so replays and the lookback window are harmless.
 */
import type { Patchbay } from "patchbay";
import { postgresDestination, postgresSource } from "patchbay/postgres";
import { sqliteDestination, sqliteSource } from "patchbay/sqlite";

const QUERY = `SELECT o.id, o.user_id, u.email, u.name AS customer, o.total, o.currency, o.status, o.created_at, o.updated_at
               FROM orders o JOIN users u ON u.id = o.user_id`;

type Row = Record<string, unknown>;

/** Adds the article's reporting columns. */
function toWarehouse(row: Row): Row {
  const created = new Date(Number(row.created_at));
  return {
    ...row,
    year: created.getUTCFullYear(),
    month: created.getUTCMonth() + 1,
    quarter: Math.floor(created.getUTCMonth() / 3) + 1,
  };
}

const COLUMNS = `id TEXT PRIMARY KEY, user_id TEXT NOT NULL, email TEXT NOT NULL, customer TEXT NOT NULL,
  total BIGINT NOT NULL, currency TEXT NOT NULL, status TEXT NOT NULL, created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL, year INTEGER NOT NULL, month INTEGER NOT NULL, quarter INTEGER NOT NULL`;

/** The warehouse sync, registered on the shop's Patchbay: it runs on its schedule from `pb.start()` to `pb.stop()`. */
export interface Warehouse {
  /** Runs one sync now. */
  run(): Promise<unknown>;
  /** Rows in the warehouse, and whether they equal the orders (for the load driver). */
  compare(): Promise<{ rows: number; matches: boolean }>;
}

export async function createWarehouse(options: {
  pb: Patchbay;
  sqliteFile?: string;
  shopFile?: string;
  pgUrl?: string;
  schedule?: string;
}): Promise<Warehouse> {
  const { pb } = options;
  const store = pb.store;
  const pg = options.pgUrl !== undefined;
  const source = pg
    ? postgresSource({
        url: options.pgUrl!,
        query: QUERY,
        cursor: "updated_at",
        cursorType: "epoch-ms",
        key: "id",
        lookback: "1m",
      })
    : sqliteSource({
        file: options.shopFile!,
        query: QUERY,
        cursor: "updated_at",
        cursorType: "epoch-ms",
        key: "id",
        lookback: "1m",
      });
  if (pg)
    await store.query(
      `CREATE SCHEMA IF NOT EXISTS warehouse; CREATE TABLE IF NOT EXISTS warehouse.orders (${COLUMNS})`,
    );
  const destination = pg
    ? postgresDestination({
        url: options.pgUrl!,
        table: "warehouse.orders",
        key: "id",
        version: "updated_at",
      })
    : sqliteDestination({
        file: options.sqliteFile!,
        table: "warehouse_orders",
        key: "id",
        version: "updated_at",
      });
  if (!pg) {
    const { sqlite } = await import("patchbay/sqlite");
    const wh = sqlite({ file: options.sqliteFile! });
    await wh.query(`CREATE TABLE IF NOT EXISTS warehouse_orders (${COLUMNS})`);
    await wh.close();
  }
  const sync = pb.pipeline("warehouse_orders", {
    source,
    transform: toWarehouse,
    destination,
    mode: "incremental",
    schedule: options.schedule ?? "*/5 * * * * *",
    batchSize: 1000,
  });

  return {
    run: () => sync.run(),
    async compare() {
      // Same ids, statuses and totals on both sides (the warehouse lags by at most one run).
      const orders = (
        await store.query<{ id: string; status: string; total: number | string }>(
          `SELECT id, status, total FROM orders`,
        )
      ).rows;
      let rows: Array<{ id: string; status: string; total: number | string }>;
      if (pg) {
        rows = (
          await store.query<{ id: string; status: string; total: number | string }>(
            `SELECT id, status, total FROM warehouse.orders`,
          )
        ).rows;
      } else {
        const { sqlite } = await import("patchbay/sqlite");
        const wh = sqlite({ file: options.sqliteFile! });
        try {
          rows = (
            await wh.query<{ id: string; status: string; total: number }>(
              `SELECT id, status, total FROM warehouse_orders`,
            )
          ).rows;
        } finally {
          await wh.close();
        }
      }
      const want = new Map(orders.map((o) => [o.id, `${o.status}:${Number(o.total)}`]));
      const matches =
        rows.length === want.size && rows.every((r) => want.get(r.id) === `${r.status}:${Number(r.total)}`);
      return { rows: rows.length, matches };
    },
  };
}
