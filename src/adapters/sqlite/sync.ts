/**
 * SQLite sync source and destination, on the same shared connection (and FIFO lock) as the
 * SQLite Store, so a pipeline, a store and the app can share one file in one process.
 */
import { InvalidArgumentError } from "../../core/errors.js";
import type { QueryResult } from "../../store/contracts.js";
import type { StoreDriver } from "../../store/sql-store.js";
import type { Row, SyncDestination, SyncSource } from "../../sync/contracts.js";
import { quoteName, quoteTable, type TableName } from "../../sync/identifiers.js";
import { keysetSource, type SqlSourceOptions } from "../../sync/keyset.js";
import {
  sqlDestination,
  type DestinationConnection,
  type DestinationTx,
  type SqlDestinationOptions,
} from "../../sync/sql-destination.js";
import { valueCheck } from "./affinity.js";
import { sqliteDriver } from "./driver.js";

/** Options of {@link sqliteSource}. */
export interface SqliteSourceOptions extends SqlSourceOptions {
  /** The database file. */
  file: string;
  /**
   * `cursorType: "timestamp"` only: how the column's text is written, as a `strftime` format.
   * Default `"%Y-%m-%dT%H:%M:%fZ"` (what `Date.prototype.toISOString()` writes).
   */
  timestampFormat?: string;
}

/** Options of {@link sqliteDestination}. */
export interface SqliteDestinationOptions extends SqlDestinationOptions {
  /** The database file (created if missing). */
  file: string;
}

const q = (t: TableName) => quoteTable(t, "double");
const c = (name: string) => quoteName(name, "double", "column");

/** Opens the shared connection once, lazily; `close()` lets go of it. */
function lazyDriver(file: string) {
  let driver: StoreDriver | undefined;
  let connecting: Promise<StoreDriver> | undefined;
  return {
    get: () =>
      (connecting ??= (async () => {
        const d = sqliteDriver({ file });
        await d.connect();
        driver = d;
        return d;
      })()),
    async close() {
      const d = driver ?? (await connecting?.catch(() => undefined));
      driver = undefined;
      connecting = undefined;
      await d?.disconnect();
    },
  };
}

/**
 * Reads a SQLite table or query in batches by keyset paging (never OFFSET). Timestamps are ISO
 * 8601 text (or `cursorType: "epoch-ms"` integers); the bound is SQLite's clock minus `safetyLag`.
 *
 * @example sqliteSource({ file: "app.db", table: "orders", cursor: "updated_at", key: "id" })
 */
export function sqliteSource(options: SqliteSourceOptions): SyncSource {
  const format = options.timestampFormat ?? "%Y-%m-%dT%H:%M:%fZ";
  if (!/^[%A-Za-z0-9 :.\-T]+$/.test(format)) {
    throw new InvalidArgumentError(
      "timestampFormat may only hold strftime codes, letters, digits, space, : . - T",
      "timestampFormat",
    );
  }
  const conn = lazyDriver(options.file);
  const seconds = "'-' || (? / 1000.0) || ' seconds'";
  return keysetSource(
    {
      quote: "double",
      placeholder: () => "?",
      rowValues: true,
      query: async (text, params) => (await (await conn.get()).query<Row>(text, params)).rows,
      upperBoundSql: (type) =>
        type === "timestamp"
          ? `SELECT strftime('${format}', 'now', ${seconds}) AS v`
          : "SELECT CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) - ? AS v",
      minusSql: (type) =>
        type === "timestamp" ? `SELECT strftime('${format}', ?, ${seconds}) AS v` : "SELECT ? - ? AS v",
      close: () => conn.close(),
    },
    options,
    "sqlite",
  );
}

function columnType(sample: unknown): string {
  if (typeof sample === "number" || typeof sample === "bigint") return "NUMERIC";
  if (typeof sample === "boolean") return "INTEGER";
  if (sample instanceof Uint8Array) return "BLOB";
  return "TEXT";
}

const INT64_MAX = 9223372036854775807n;
const INT64_MIN = -9223372036854775808n;

/**
 * Values `node:sqlite` cannot bind become text: objects and arrays as JSON, a bigint beyond 64
 * bits as its digits (a NUMERIC column would make it a REAL: `valueCheck` quarantines that row).
 */
function bindable(value: unknown): unknown {
  if (typeof value === "bigint") return value > INT64_MAX || value < INT64_MIN ? String(value) : value;
  if (typeof value !== "object" || value === null || value instanceof Date || value instanceof Uint8Array)
    return value;
  return JSON.stringify(value);
}

function connection(driver: StoreDriver): DestinationConnection {
  const query = <R>(text: string, params: readonly unknown[] = []): Promise<QueryResult<R>> =>
    driver.query<R>(text, params);

  // `on`: inside a transaction, its handle (the transaction holds the connection's lock).
  const describe = async (table: TableName, on: Pick<DestinationTx, "query"> = { query }) => {
    const { rows } = await on.query<{ name: string; type: string }>(
      "SELECT name, type FROM pragma_table_info(?, ?)",
      [table.name, table.schema ?? "main"],
    );
    return rows.length ? new Map(rows.map((r) => [r.name, r.type])) : undefined;
  };

  return {
    query,
    describe: (table) => describe(table),

    transaction: (fn) =>
      driver.transaction(async (t) => {
        const tx: DestinationTx = {
          query: (text, params) => t.query(text, params),

          async load(request) {
            const cols = request.columns.map(c).join(", ");
            const updates = request.columns.filter((name) => !request.key.includes(name));
            const guard = request.version
              ? ` WHERE pb_t.${c(request.version)} IS NULL OR pb_t.${c(request.version)} < excluded.${c(request.version)}`
              : "";
            const conflict =
              request.mode === "insert"
                ? ""
                : ` ON CONFLICT (${request.key.map(c).join(", ")}) ` +
                  (updates.length
                    ? `DO UPDATE SET ${updates.map((n) => `${c(n)} = excluded.${c(n)}`).join(", ")}${guard}`
                    : "DO NOTHING");
            const perRow = `(${request.columns.map(() => "?").join(", ")})`;
            const chunk = Math.max(1, Math.min(500, Math.floor(30_000 / request.columns.length)));
            let changed = 0;
            for (let i = 0; i < request.rows.length; i += chunk) {
              const rows = request.rows.slice(i, i + chunk);
              const params: unknown[] = [];
              for (const row of rows) for (const name of request.columns) params.push(bindable(row[name]));
              const { rowCount } = await t.query(
                `INSERT INTO ${q(request.table)} AS pb_t (${cols}) VALUES ${rows.map(() => perRow).join(", ")}${conflict}`,
                params,
              );
              changed += rowCount;
            }
            return changed;
          },

          async swapIn(target, stage, key) {
            const columns = [...((await describe(target, t)) ?? new Map<string, string>()).keys()];
            const match = key.map((k) => `s.${c(k)} = ${c(target.name)}.${c(k)}`).join(" AND ");
            const deleted = await t.query(
              `DELETE FROM ${q(target)} WHERE NOT EXISTS (SELECT 1 FROM ${q(stage)} s WHERE ${match})`,
            );
            const cols = columns.map(c).join(", ");
            const updates = columns.filter((n) => !key.includes(n));
            const action = updates.length
              ? `DO UPDATE SET ${updates.map((n) => `${c(n)} = excluded.${c(n)}`).join(", ")}`
              : "DO NOTHING";
            // `WHERE true` tells SQLite's parser the ON CONFLICT belongs to the INSERT, not a join.
            const written = await t.query(
              `INSERT INTO ${q(target)} (${cols}) SELECT ${cols} FROM ${q(stage)} WHERE true ON CONFLICT (${key.map(c).join(", ")}) ${action}`,
            );
            return { written: written.rowCount, deleted: deleted.rowCount };
          },
        };
        return fn(tx);
      }, {}),

    async prepareStage(target, stage, key, resume) {
      if (resume && (await describe(stage))) return true;
      const columns = (await describe(target)) ?? new Map<string, string>();
      await query(`DROP TABLE IF EXISTS ${q(stage)}`);
      const defs = [...columns].map(
        ([name, type]) => `${c(name)} ${/^[A-Za-z0-9_ (),]*$/.test(type) ? type : ""}`,
      );
      await query(`CREATE TABLE ${q(stage)} (${defs.join(", ")}, PRIMARY KEY (${key.map(c).join(", ")}))`);
      return false;
    },

    async dropStage(stage) {
      await query(`DROP TABLE IF EXISTS ${q(stage)}`);
    },

    invalidate: () => undefined,
    close: () => Promise.resolve(),
  };
}

/**
 * Writes rows into a SQLite table, each batch in one `BEGIN IMMEDIATE` transaction with the
 * pipeline's checkpoint and quarantined rows (multi-row `INSERT ... ON CONFLICT DO UPDATE`).
 *
 * @example sqliteDestination({ file: "warehouse.db", table: "orders", key: "id", version: "updated_at" })
 */
export function sqliteDestination(options: SqliteDestinationOptions): SyncDestination {
  const conn = lazyDriver(options.file);
  return sqlDestination(
    {
      quote: "double",
      placeholder: () => "?",
      rowValues: true,
      columnType,
      valueCheck,
      metaDdl: (checkpoints, quarantine, claims) => [
        `CREATE TABLE IF NOT EXISTS ${checkpoints} (pipeline TEXT NOT NULL, target TEXT NOT NULL, checkpoint TEXT, owner TEXT, seq INTEGER NOT NULL DEFAULT 0, updated_at INTEGER NOT NULL, PRIMARY KEY (pipeline, target))`,
        `CREATE TABLE IF NOT EXISTS ${quarantine} (id INTEGER PRIMARY KEY, pipeline TEXT NOT NULL, run_id TEXT NOT NULL, reason TEXT NOT NULL, error TEXT NOT NULL, row_data TEXT NOT NULL, created_at INTEGER NOT NULL)`,
        `CREATE TABLE IF NOT EXISTS ${claims} (target TEXT PRIMARY KEY, pipeline TEXT NOT NULL, owner TEXT, host TEXT NOT NULL, pid INTEGER NOT NULL, expires_at INTEGER NOT NULL, stage_pipeline TEXT)`,
      ],
      connect: async () => connection(await conn.get()),
      close: () => conn.close(),
    },
    options,
    "sqlite",
  );
}
