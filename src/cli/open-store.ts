import type { SqlStore, SqlStoreOptions } from "../store/sql-store.js";

/** Which store the CLI works on: MariaDB/MySQL or PostgreSQL when its URL is given, else the embedded SQLite file. */
export interface StoreChoice {
  sqliteFile?: string | undefined;
  pgUrl?: string | undefined;
  mysqlUrl?: string | undefined;
  schema?: string | undefined;
}

/**
 * Builds (not opens) the chosen store. Adapters are loaded lazily so the embedded default
 * works without the `pg` package installed.
 */
export async function openStore(choice: StoreChoice, options: SqlStoreOptions): Promise<SqlStore> {
  if (choice.mysqlUrl) {
    const { mysql } = await import("../adapters/mysql/index.js");
    return mysql({ url: choice.mysqlUrl, ...options });
  }
  if (choice.pgUrl) {
    const { postgres } = await import("../adapters/postgres/index.js");
    return postgres({ url: choice.pgUrl, ...(choice.schema ? { schema: choice.schema } : {}), ...options });
  }
  const { sqlite } = await import("../adapters/sqlite/index.js");
  return sqlite({ ...(choice.sqliteFile ? { file: choice.sqliteFile } : {}), ...options });
}
