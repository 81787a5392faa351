/**
 * The shop's own tables, in the same database as Patchbay's (so business writes and events
 * commit together), and a tiny helper that writes SQL once for SQLite and PostgreSQL.
 */
import type { SqlExecutor, SqlStore } from "patchbay";

/** SQL with `?` placeholders, turned into `$1, $2` on PostgreSQL. */
export function sqlFor(store: SqlStore) {
  if (store.capabilities.dialect === "sqlite") return (text: string) => text;
  return (text: string) => {
    let n = 0;
    return text.replace(/\?/g, () => `$${++n}`);
  };
}

/** Runs a query and returns its rows. */
export async function rows<T>(
  db: SqlExecutor,
  q: (t: string) => string,
  text: string,
  params: unknown[] = [],
) {
  return (await db.query<T>(q(text), params)).rows;
}

/** Creates the shop's tables if they do not exist, and stocks the inventory. */
export async function createShopSchema(store: SqlStore, initialStock: Record<string, number>): Promise<void> {
  const pg = store.capabilities.dialect === "postgres";
  const serial = pg ? "BIGSERIAL PRIMARY KEY" : "INTEGER PRIMARY KEY AUTOINCREMENT";
  const q = sqlFor(store);
  await store.transaction(async (tx) => {
    for (const ddl of [
      `CREATE TABLE IF NOT EXISTS users (id TEXT PRIMARY KEY, email TEXT NOT NULL UNIQUE, name TEXT NOT NULL, created_at BIGINT NOT NULL)`,
      `CREATE TABLE IF NOT EXISTS profiles (user_id TEXT PRIMARY KEY REFERENCES users (id), display_name TEXT NOT NULL)`,
      `CREATE TABLE IF NOT EXISTS settings (user_id TEXT PRIMARY KEY REFERENCES users (id), newsletter BOOLEAN NOT NULL, locale TEXT NOT NULL)`,
      `CREATE TABLE IF NOT EXISTS inventory (sku TEXT PRIMARY KEY, available INTEGER NOT NULL CHECK (available >= 0))`,
      `CREATE TABLE IF NOT EXISTS orders (id TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users (id), total INTEGER NOT NULL,
         currency TEXT NOT NULL, status TEXT NOT NULL, charge_id TEXT, reason TEXT, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)`,
      `CREATE TABLE IF NOT EXISTS order_items (order_id TEXT NOT NULL REFERENCES orders (id), sku TEXT NOT NULL, qty INTEGER NOT NULL,
         price INTEGER NOT NULL, PRIMARY KEY (order_id, sku))`,
      `CREATE TABLE IF NOT EXISTS reservations (order_id TEXT NOT NULL, sku TEXT NOT NULL, qty INTEGER NOT NULL, PRIMARY KEY (order_id, sku))`,
      `CREATE TABLE IF NOT EXISTS shipments (order_id TEXT PRIMARY KEY, tracking TEXT NOT NULL, status TEXT NOT NULL)`,
      // No unique key on purpose: the load driver counts e-mails per order to prove exactly-once.
      `CREATE TABLE IF NOT EXISTS emails (id ${serial}, kind TEXT NOT NULL, ref TEXT NOT NULL, recipient TEXT NOT NULL, sent_at BIGINT NOT NULL)`,
    ]) {
      await tx.query(ddl);
    }
    for (const [sku, qty] of Object.entries(initialStock)) {
      await tx.query(q(`INSERT INTO inventory (sku, available) VALUES (?, ?) ON CONFLICT (sku) DO NOTHING`), [
        sku,
        qty,
      ]);
    }
  });
}
