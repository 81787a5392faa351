import type { Row, SyncDestination } from "../../sync/contracts.js";
import { utcDateTime } from "../../sync/datetime.js";
import {
  decimalCheck,
  doubleCheck,
  fractionCheck,
  specialDouble,
  type ValueCheck,
} from "../../sync/exact.js";
import { quoteName, quoteTable, type TableName } from "../../sync/identifiers.js";
import {
  sqlDestination,
  type DestinationConnection,
  type DestinationTx,
  type LoadRequest,
  type SqlDestinationOptions,
} from "../../sync/sql-destination.js";
import { lazyPool, run, type MysqlConnectionOptions } from "./connection.js";
import { toStoreError } from "./errors.js";
import type { MysqlPoolConnection, MysqlResultHeader } from "./load.js";

/** Options of {@link mysqlDestination}. */
export interface MysqlDestinationOptions extends SqlDestinationOptions, MysqlConnectionOptions {}

const q = (t: TableName) => quoteTable(t, "backtick");
const c = (name: string) => quoteName(name, "backtick", "column");

/**
 * The check for a column of this `COLUMN_TYPE`: DECIMAL(p,s), DATETIME(n)/TIMESTAMP(n) and
 * DOUBLE would round a value with at most a note, never an error.
 */
function typeCheck(type: string): ValueCheck | undefined {
  const decimal = /^decimal\((\d+),(\d+)\)/.exec(type);
  if (decimal) return decimalCheck(type, Number(decimal[1]), Number(decimal[2]));
  const time = /^(?:datetime|timestamp)(?:\((\d)\))?$/.exec(type);
  if (time) return fractionCheck(type, Number(time[1] ?? 0));
  return /^double\b/.test(type) ? doubleCheck(type) : undefined;
}

/** Any column: also a number MariaDB has no value for (NaN, infinities), or a numeric's `NaN`/`Infinity` text. */
function valueCheck(type: string): ValueCheck {
  const check = typeCheck(type);
  const numeric = /^(?:decimal|double|float|real)\b/.test(type);
  return (value) => {
    const special =
      specialDouble(value) ??
      (numeric && typeof value === "string" && /^\s*[+-]?(?:nan|inf|infinity)\s*$/i.test(value)
        ? value.trim()
        : undefined);
    return special === undefined ? check?.(value) : `(${type}) has no value ${special}`;
  };
}

function columnType(sample: unknown, isKey: boolean): string {
  if (typeof sample === "number") return Number.isInteger(sample) && isKey ? "BIGINT" : "DOUBLE";
  if (typeof sample === "bigint") return "DECIMAL(65,0)";
  if (typeof sample === "boolean") return "BOOLEAN";
  if (sample instanceof Date) return "DATETIME(6)";
  if (sample instanceof Uint8Array) return "LONGBLOB";
  if (typeof sample === "object" && sample !== null) return "JSON";
  return isKey ? "VARCHAR(191)" : "LONGTEXT";
}

/**
 * A date/time for a DATETIME/TIMESTAMP column, as `YYYY-MM-DD HH:MM:SS.ffffff`: JS Dates and
 * strings with a zone (`...Z`, `...+02`, `...-04:56:02`) are converted to UTC; the fraction's
 * digits are kept. (The sessions are in UTC, so a TIMESTAMP gets the same instant.)
 */
export const mysqlDateTime = utcDateTime;

function bindable(value: unknown, temporal: boolean): unknown {
  if (temporal) return mysqlDateTime(value);
  if (value === undefined) return null;
  if (typeof value === "bigint") return value.toString();
  if (
    typeof value === "object" &&
    value !== null &&
    !(value instanceof Date) &&
    !(value instanceof Uint8Array)
  ) {
    return JSON.stringify(value);
  }
  return value;
}

/** A bound value's length in a statement at most: every byte escaped (`\\0`), or hex for bytes. */
function sqlLength(value: unknown): number {
  if (typeof value === "string") return 2 * Buffer.byteLength(value) + 2;
  if (value instanceof Uint8Array) return 2 * value.length + 3;
  return 64;
}

/**
 * The rows' bound values in groups of at most 1000 rows, each group within `budget` bytes of
 * statement text, so a batch of large rows is several INSERTs rather than one MariaDB refuses
 * (`max_allowed_packet`). A row alone over the budget is a group of its own: MariaDB refuses it.
 */
function* statements(
  rows: readonly Row[],
  columns: readonly string[],
  temporal: readonly boolean[],
  budget: number,
): Generator<unknown[][]> {
  let group: unknown[][] = [];
  let size = 0;
  for (const row of rows) {
    const values = columns.map((n, j) => bindable(row[n], temporal[j] as boolean));
    const length = values.reduce<number>((sum, v) => sum + sqlLength(v) + 2, 4);
    if (group.length > 0 && (group.length >= 1000 || size + length > budget)) {
      yield group;
      group = [];
      size = 0;
    }
    group.push(values);
    size += length;
  }
  if (group.length > 0) yield group;
}

/**
 * The first assignments of an `ON DUPLICATE KEY UPDATE`: MariaDB takes a row that collides with a
 * stored one by any unique index as a duplicate, and would overwrite a row with another key (a new
 * row whose email a stored row still holds) and drop the new one, where PostgreSQL and SQLite
 * refuse it. Each key column keeps its value when it is the incoming row's; otherwise the CAST
 * fails in the sync's strict sessions and the batch with it (`QUERY_FAILED`, this message).
 */
function keyGuard(key: readonly string[], target: string): string[] {
  return key.map((k) => {
    // Qualified: in INSERT … SELECT a bare name could be the SELECT's column.
    const stored = `${target}.${c(k)}`;
    return `${stored} = IF(${stored} <=> VALUES(${c(k)}), ${stored}, CAST('patchbay: a row collides with a stored row of another key by a unique index besides the key ${k.replace(/'/g, "")}' AS SIGNED))`;
  });
}

/**
 * The sync's own tables hold any text (checkpoints hold key values, quarantined rows whole rows):
 * utf8mb4 whatever the database's default (latin1 on a stock MariaDB), compared exactly.
 */
const META_CHARSET = "CHARACTER SET utf8mb4 COLLATE utf8mb4_bin";

/** One session: a dedicated connection in UTC; `release` gives it back. */
function connection(conn: MysqlPoolConnection, release: () => Promise<void>): DestinationConnection {
  const described = new Map<string, Map<string, string>>();
  const query = <R>(text: string, params: readonly unknown[] = []) => run<R>(conn, text, params);
  let maxPacket: number | undefined;
  /** The session's max_allowed_packet: no statement may be longer. */
  const packetLimit = async () =>
    (maxPacket ??= Number(
      (await query<{ n: unknown }>("SELECT @@session.max_allowed_packet AS n")).rows[0]?.n ?? 4 << 20,
    ));

  const describe = async (table: TableName) => {
    const cached = described.get(q(table));
    if (cached) return cached;
    const { rows } = await query<{ name: string; type: string }>(
      "SELECT COLUMN_NAME AS name, COLUMN_TYPE AS type FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
      [table.schema ?? null, table.name],
    );
    if (rows.length === 0) return undefined;
    const columns = new Map(rows.map((r) => [r.name, String(r.type).toLowerCase()]));
    described.set(q(table), columns);
    return columns;
  };

  const load = async (request: LoadRequest) => {
    const types = (await describe(request.table)) ?? new Map<string, string>();
    const temporal = request.columns.map((n) => /^(datetime|timestamp)\b/.test(types.get(n) ?? ""));
    const updates = request.columns.filter((n) => !request.key.includes(n));
    let action = "";
    if (request.mode === "merge") {
      const v = request.version;
      // MySQL applies the assignments left to right, so the version column goes last: the
      // condition must see the stored version, not the new one.
      const ordered = v ? [...updates.filter((n) => n !== v), ...updates.filter((n) => n === v)] : updates;
      const when = v ? `${c(v)} IS NULL OR VALUES(${c(v)}) > ${c(v)}` : undefined;
      const set = ordered.map((n) =>
        when ? `${c(n)} = IF(${when}, VALUES(${c(n)}), ${c(n)})` : `${c(n)} = VALUES(${c(n)})`,
      );
      action = ` ON DUPLICATE KEY UPDATE ${[...keyGuard(request.key, q(request.table)), ...set].join(", ")}`;
    }
    const text = `INSERT INTO ${q(request.table)} (${request.columns.map(c).join(", ")}) VALUES ?${action}`;
    let changed = 0;
    const budget = (await packetLimit()) - Buffer.byteLength(text) - 1024;
    for (const values of statements(request.rows, request.columns, temporal, budget)) {
      try {
        const [result] = (await conn.query(text, [values])) as [MysqlResultHeader, unknown];
        // mysql2 connects with CLIENT_FOUND_ROWS: affectedRows counts an insert 1, a key hit 1, and a
        // key hit that changed the row 1 more. "Duplicates" in `info` counts the key hits.
        const duplicates = Number(/Duplicates:\s*(\d+)/.exec(result.info ?? "")?.[1] ?? 0);
        const inserted = values.length - duplicates;
        changed +=
          request.mode === "merge"
            ? inserted + Math.max(0, result.affectedRows - inserted - duplicates)
            : result.affectedRows;
      } catch (e) {
        throw toStoreError(e, text);
      }
    }
    return changed;
  };

  const tx: DestinationTx = {
    query,
    load,
    async swapIn(target, stage, key) {
      const columns = [...((await describe(target)) ?? new Map<string, string>()).keys()];
      const on = key.map((k) => `s.${c(k)} = t.${c(k)}`).join(" AND ");
      const deleted = await query(
        `DELETE t FROM ${q(target)} t LEFT JOIN ${q(stage)} s ON ${on} WHERE s.${c(key[0] as string)} IS NULL`,
      );
      const cols = columns.map(c).join(", ");
      const updates = columns.filter((n) => !key.includes(n));
      const set = [...keyGuard(key, q(target)), ...updates.map((n) => `${c(n)} = VALUES(${c(n)})`)].join(
        ", ",
      );
      const written = await query(
        `INSERT INTO ${q(target)} (${cols}) SELECT ${cols} FROM ${q(stage)} ON DUPLICATE KEY UPDATE ${set}`,
      );
      return { written: written.rowCount, deleted: deleted.rowCount };
    },
  };

  return {
    query,
    describe,
    async transaction(fn) {
      try {
        await conn.beginTransaction();
      } catch (e) {
        throw toStoreError(e, "BEGIN");
      }
      try {
        const result = await fn(tx);
        await conn.commit();
        return result;
      } catch (e) {
        await conn.rollback().catch(() => conn.destroy());
        throw e;
      }
    },
    async prepareStage(target, stage, _key, resume) {
      if (resume && (await describe(stage))) return true;
      described.delete(q(stage));
      // DDL commits on its own in MySQL: this runs outside any batch transaction.
      await query(`DROP TABLE IF EXISTS ${q(stage)}`);
      await query(`CREATE TABLE ${q(stage)} LIKE ${q(target)}`);
      return false;
    },
    async dropStage(stage) {
      described.delete(q(stage));
      await query(`DROP TABLE IF EXISTS ${q(stage)}`);
    },
    invalidate: () => described.clear(),
    close: release,
  };
}

/**
 * Writes rows into a MariaDB/MySQL (InnoDB) table: multi-row `INSERT ... ON DUPLICATE KEY
 * UPDATE` in one transaction with the pipeline's checkpoint and quarantined rows.
 *
 * @example mysqlDestination({ url, table: "orders", key: "id", version: "updated_at" })
 */
export function mysqlDestination(options: MysqlDestinationOptions): SyncDestination {
  const pool = lazyPool(options, 4);
  return sqlDestination(
    {
      quote: "backtick",
      placeholder: () => "?",
      rowValues: false,
      columnType,
      valueCheck,
      metaDdl: (checkpoints, quarantine, claims) => [
        `CREATE TABLE IF NOT EXISTS ${checkpoints} (pipeline VARCHAR(191) NOT NULL, target VARCHAR(191) NOT NULL, checkpoint LONGTEXT NULL, owner VARCHAR(64) NULL, seq BIGINT NOT NULL DEFAULT 0, updated_at BIGINT NOT NULL, PRIMARY KEY (pipeline, target)) ENGINE=InnoDB ${META_CHARSET}`,
        `CREATE TABLE IF NOT EXISTS ${quarantine} (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, pipeline VARCHAR(191) NOT NULL, run_id VARCHAR(64) NOT NULL, reason VARCHAR(32) NOT NULL, error LONGTEXT NOT NULL, row_data LONGTEXT NOT NULL, created_at BIGINT NOT NULL) ENGINE=InnoDB ${META_CHARSET}`,
        `CREATE TABLE IF NOT EXISTS ${claims} (target VARCHAR(191) NOT NULL PRIMARY KEY, pipeline VARCHAR(191) NOT NULL, owner VARCHAR(64) NULL, host VARCHAR(255) NOT NULL, pid INT NOT NULL, expires_at BIGINT NOT NULL, stage_pipeline VARCHAR(191) NULL) ENGINE=InnoDB ${META_CHARSET}`,
      ],
      async connect() {
        const { conn, release } = await pool.acquire();
        return connection(conn, release);
      },
      close: () => pool.close(),
    },
    options,
    "mysql",
  );
}
