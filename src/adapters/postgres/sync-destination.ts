import { Readable } from "node:stream";
import { pipeline as pump } from "node:stream/promises";
import { UTC_OUTPUT_SETTINGS, lazyPool } from "./lazy-pool.js";
import { loadCopyStreams, type PgCopyStreams, type PgPoolClient, type PgPoolLike } from "./load.js";
import type { QueryResult } from "../../store/contracts.js";
import { TransactionRolledBackError } from "../../store/errors.js";
import type { SyncDestination } from "../../sync/contracts.js";
import { utcDateTime } from "../../sync/datetime.js";
import { decimalCheck, doubleCheck, fractionCheck, type ValueCheck } from "../../sync/exact.js";
import { quoteName, quoteTable, type TableName } from "../../sync/identifiers.js";
import {
  sqlDestination,
  type DestinationConnection,
  type DestinationTx,
  type LoadRequest,
  type SqlDestinationDriver,
  type SqlDestinationOptions,
} from "../../sync/sql-destination.js";
import { copyField, copyLine, copyLines, copyValue, decodeCopyField, linesToChunks } from "./copy.js";
import { toStoreError } from "./errors.js";

/** Options of {@link postgresDestination}. */
export interface PostgresDestinationOptions extends SqlDestinationOptions {
  /** Connection string. Default `PATCHBAY_PG_URL`, then libpq's `PG*` variables. */
  url?: string;
  /** Use your own `pg` pool instead (not ended by `close()`). */
  pool?: PgPoolLike;
}

const q = (t: TableName) => quoteTable(t, "double");
const c = (name: string) => quoteName(name, "double", "column");

/**
 * The check of a pass-through (COPY text) batch for a column of this `format_type`: numeric(p,s),
 * timestamp(n) and double precision would round a value without an error.
 */
function passThroughCheck(type: string): ValueCheck | undefined {
  const numeric = /^numeric\((\d+),(\d+)\)$/.exec(type);
  if (numeric) return decimalCheck(type, Number(numeric[1]), Number(numeric[2]));
  const time = /^timestamp\((\d)\) with(?:out)? time zone$/.exec(type);
  if (time) return fractionCheck(type, Number(time[1]));
  return type === "double precision" ? doubleCheck(type) : undefined;
}

/**
 * The check of rows: also a timestamp without a precision, which keeps microseconds (a seventh
 * digit, as .NET's round-trip format writes, would be rounded). PostgreSQL's own text never has
 * one: a pass-through is not decoded for it.
 */
function valueCheck(type: string): ValueCheck | undefined {
  if (/^timestamp with(?:out)? time zone$/.test(type)) return fractionCheck(type, 6);
  return passThroughCheck(type);
}

/** The columns of `columns` whose type (in `types`) is a `timestamp` without time zone. */
function wallClockColumns(columns: readonly string[], types: ReadonlyMap<string, string>): string[] {
  return columns.filter((name) => /^timestamp\b.*without time zone$/.test(types.get(name) ?? ""));
}

function columnType(sample: unknown, isKey: boolean): string {
  if (typeof sample === "number") return isKey && Number.isInteger(sample) ? "bigint" : "numeric";
  if (typeof sample === "bigint") return "numeric";
  if (typeof sample === "boolean") return "boolean";
  if (sample instanceof Date) return "timestamptz";
  if (sample instanceof Uint8Array) return "bytea";
  if (typeof sample === "object" && sample !== null) return "jsonb";
  return "text";
}

/**
 * One session: a dedicated client, so COPY and the session's temp load tables share it.
 * `restoreZone`: the time zone of a caller's pooled session, set back when the session closes.
 */
function connection(
  client: PgPoolClient,
  restoreZone: string | undefined,
  { from: copyFrom }: PgCopyStreams,
): DestinationConnection {
  let broken: Error | undefined;
  let generation = 0;
  let optimistic = true;
  const loadTables = new Map<string, string>();
  const described = new Map<string, Map<string, string>>();

  const query = async <Row>(text: string, params: readonly unknown[] = []): Promise<QueryResult<Row>> => {
    try {
      const r = await client.query(text, params as unknown[]);
      return { rows: r.rows as Row[], rowCount: r.rowCount ?? 0 };
    } catch (e) {
      throw toStoreError(e, text);
    }
  };

  const describe = async (table: TableName) => {
    const key = q(table);
    const cached = described.get(key);
    if (cached) return cached;
    const { rows } = await query<{ name: string; type: string }>(
      `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type FROM pg_attribute a
       WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
      [key],
    );
    if (rows.length === 0) return undefined;
    const columns = new Map(rows.map((r) => [r.name, r.type]));
    described.set(key, columns);
    return columns;
  };

  const copyInto = async (target: string, columns: readonly string[], chunks: Iterable<string | Buffer>) => {
    const text = `COPY ${target} (${columns.map(c).join(", ")}) FROM STDIN`;
    try {
      await pump(Readable.from(chunks), client.query(copyFrom(text)));
    } catch (e) {
      throw toStoreError(e, text);
    }
  };

  /** The request's rows as COPY text lines. */
  const linesOf = (request: LoadRequest, types: Map<string, string>): string[] => {
    // PostgreSQL drops the offset of text written into a `timestamp` (without time zone) and
    // keeps its local time: an instant becomes its UTC time first, as on every destination.
    const wallClock = wallClockColumns(request.columns, types);
    if (request.encoded) {
      const lines = copyLines(request.encoded.chunks);
      // A pass-through from a `timestamptz` holds the source session's offset (`…+05:45`).
      const at = wallClock.map((name) => request.columns.indexOf(name));
      if (at.length === 0) return lines;
      return lines.map((line) => {
        const fields = line.split("\t");
        for (const i of at) {
          const text = decodeCopyField(fields[i] ?? "\\N");
          if (text !== null) fields[i] = copyValue(utcDateTime(text), false);
        }
        return fields.join("\t");
      });
    }
    const isArray = request.columns.map((name) => types.get(name)?.endsWith("[]") ?? false);
    const rows =
      wallClock.length === 0
        ? request.rows
        : request.rows.map((row) => {
            const copy = { ...row };
            for (const name of wallClock) copy[name] = utcDateTime(copy[name]);
            return copy;
          });
    return rows.map((row) => copyLine(row, request.columns, isArray));
  };

  /** COPY inside a savepoint; false (and nothing applied) when a key already exists. */
  const copyOrRollBack = async (
    target: string,
    columns: readonly string[],
    chunks: Iterable<string | Buffer>,
  ) => {
    await query("SAVEPOINT pb_load");
    try {
      await copyInto(target, columns, chunks);
    } catch (e) {
      if ((e as { sqlState?: string }).sqlState !== "23505") throw e;
      await query("ROLLBACK TO SAVEPOINT pb_load");
      return false;
    }
    await query("RELEASE SAVEPOINT pb_load");
    return true;
  };

  /** COPY into a session temp table shaped like the target, then one INSERT ... ON CONFLICT. */
  const upsertStaged = async (request: LoadRequest, lines: readonly string[]) => {
    const shape = `${q(request.table)}#${generation}`;
    let load = loadTables.get(shape);
    if (!load) {
      load = `pb_load_${generation}_${loadTables.size}`;
      await query(
        `CREATE TEMP TABLE IF NOT EXISTS ${load} (LIKE ${q(request.table)} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS`,
      );
      loadTables.set(shape, load);
    }
    await copyInto(load, request.columns, linesToChunks(lines));
    const cols = request.columns.map(c).join(", ");
    const updates = request.columns.filter((name) => !request.key.includes(name));
    const guard = request.version
      ? ` WHERE t.${c(request.version)} IS NULL OR t.${c(request.version)} < EXCLUDED.${c(request.version)}`
      : "";
    const action = updates.length
      ? `DO UPDATE SET ${updates.map((name) => `${c(name)} = EXCLUDED.${c(name)}`).join(", ")}${guard}`
      : "DO NOTHING";
    const { rowCount } = await query(
      `INSERT INTO ${q(request.table)} AS t (${cols}) SELECT ${cols} FROM ${load} ON CONFLICT (${request.key.map(c).join(", ")}) ${action}`,
    );
    return rowCount;
  };

  const tx: DestinationTx = {
    query,

    async load(request) {
      const types = (await describe(request.table)) ?? new Map<string, string>();
      const target = q(request.table);
      // Encoded batches are COPYed as the bytes they came in; lines are only split when needed.
      let split: string[] | undefined;
      const linesNow = () => (split ??= linesOf(request, types));
      const payload = () =>
        request.encoded && wallClockColumns(request.columns, types).length === 0
          ? request.encoded.chunks
          : linesToChunks(linesNow());
      const count = request.encoded ? request.encoded.count : request.rows.length;
      if (request.mode === "insert") {
        await copyInto(target, request.columns, payload());
        return count;
      }
      // Optimistic first: while batches hold only new keys (a backfill, an insert-heavy source),
      // COPY them straight into the table, as fast as a bare COPY. A key that exists already makes
      // the COPY fail (unique violation): the savepoint takes it back and this session switches to
      // probing, until a batch finds no existing key again.
      if (optimistic) {
        if (await copyOrRollBack(target, request.columns, payload())) return count;
        optimistic = false;
      }
      const lines = linesNow();
      const keyAt = request.key.length === 1 ? request.columns.indexOf(request.key[0] as string) : -1;
      if (keyAt < 0) return upsertStaged(request, lines);
      // Which keys exist already? New rows are copied straight in; only the others go through the
      // stage and the guarded upsert.
      const keys = lines.map((line) => decodeCopyField(copyField(line, keyAt)));
      const keyColumn = c(request.key[0] as string);
      const { rows: found } = await query<{ k: string }>(
        `SELECT ${keyColumn}::text AS k FROM ${q(request.table)} WHERE ${keyColumn} = ANY($1)`,
        [keys],
      );
      const existing = new Set(found.map((r) => r.k));
      optimistic = existing.size === 0;
      const fresh = existing.size === 0 ? lines : lines.filter((_, i) => !existing.has(keys[i] as string));
      let stale = existing.size === 0 ? [] : lines.filter((_, i) => existing.has(keys[i] as string));
      // A concurrent writer may have inserted one of the "new" keys meanwhile: then all go staged.
      const copied =
        fresh.length > 0 && (await copyOrRollBack(target, request.columns, linesToChunks(fresh)));
      if (fresh.length > 0 && !copied) stale = lines;
      return (copied ? fresh.length : 0) + (stale.length > 0 ? await upsertStaged(request, stale) : 0);
    },

    async swapIn(target, stage, key) {
      const columns = [...((await describe(target)) ?? new Map<string, string>()).keys()];
      const match = key.map((k) => `s.${c(k)} = t.${c(k)}`).join(" AND ");
      const deleted = await query(
        `DELETE FROM ${q(target)} t WHERE NOT EXISTS (SELECT 1 FROM ${q(stage)} s WHERE ${match})`,
      );
      const cols = columns.map(c).join(", ");
      const updates = columns.filter((name) => !key.includes(name));
      const action = updates.length
        ? `DO UPDATE SET ${updates.map((n) => `${c(n)} = EXCLUDED.${c(n)}`).join(", ")} WHERE (${updates.map((n) => `t.${c(n)}`).join(", ")}) IS DISTINCT FROM (${updates.map((n) => `EXCLUDED.${c(n)}`).join(", ")})`
        : "DO NOTHING";
      const written = await query(
        `INSERT INTO ${q(target)} AS t (${cols}) SELECT ${cols} FROM ${q(stage)} ON CONFLICT (${key.map(c).join(", ")}) ${action}`,
      );
      return { written: written.rowCount, deleted: deleted.rowCount };
    },
  };

  return {
    query,
    describe,

    async transaction(fn) {
      await query("BEGIN");
      try {
        const result = await fn(tx);
        // An aborted transaction's COMMIT is answered with the tag ROLLBACK and no error.
        const { command } = await client.query("COMMIT").catch((e: unknown) => {
          throw toStoreError(e, "COMMIT");
        });
        if (command !== "COMMIT") throw TransactionRolledBackError.after("PostgreSQL", undefined);
        return result;
      } catch (e) {
        // A failed ROLLBACK leaves the connection in an unknown state: it is destroyed on release.
        await client.query("ROLLBACK").catch((rollbackError: Error) => (broken = rollbackError));
        throw e;
      }
    },

    async prepareStage(target, stage, key, resume) {
      if (resume && (await describe(stage))) return true;
      described.delete(q(stage));
      await query(`DROP TABLE IF EXISTS ${q(stage)}`);
      await query(`CREATE TABLE ${q(stage)} (LIKE ${q(target)} INCLUDING DEFAULTS)`);
      await query(`ALTER TABLE ${q(stage)} ADD PRIMARY KEY (${key.map(c).join(", ")})`);
      return false;
    },

    async dropStage(stage) {
      described.delete(q(stage));
      await query(`DROP TABLE IF EXISTS ${q(stage)}`);
    },

    invalidate() {
      described.clear();
      generation++;
    },

    async close() {
      if (restoreZone !== undefined && !broken) {
        await client
          .query("SELECT set_config('TimeZone', $1, false)", [restoreZone])
          .catch((e: Error) => (broken = e));
      }
      client.release(broken);
    },
  };
}

/**
 * Writes rows into a PostgreSQL table: each batch is loaded with `COPY` into a temporary stage
 * and merged with one `INSERT ... ON CONFLICT` (or copied straight in for `append`), in one
 * transaction with the pipeline's checkpoint and quarantined rows.
 *
 * @example
 * postgresDestination({ url, table: "warehouse.orders", key: "order_id", version: "updated_at" })
 */
export function postgresDestination(options: PostgresDestinationOptions): SyncDestination {
  const pool = lazyPool(options, 4, UTC_OUTPUT_SETTINGS);
  const get = () => pool.get();
  const driver: SqlDestinationDriver = {
    encodings: ["postgres-copy-text"],
    quote: "double",
    placeholder: (n) => `$${n}`,
    rowValues: true,
    columnType,
    valueCheck,
    passThroughCheck,
    decodeEncoded: (encoded) =>
      copyLines(encoded.chunks).map((line) => {
        const fields = line.split("\t");
        // fromEntries: a column named __proto__ is a field like any other.
        return Object.fromEntries(
          encoded.columns.map((name, i) => [name, decodeCopyField(fields[i] ?? "\\N")]),
        );
      }),
    metaDdl: (checkpoints, quarantine, claims) => [
      `CREATE TABLE IF NOT EXISTS ${checkpoints} (pipeline text NOT NULL, target text NOT NULL, checkpoint text, owner text, seq bigint NOT NULL DEFAULT 0, updated_at bigint NOT NULL, PRIMARY KEY (pipeline, target))`,
      `CREATE TABLE IF NOT EXISTS ${quarantine} (id bigserial PRIMARY KEY, pipeline text NOT NULL, run_id text NOT NULL, reason text NOT NULL, error text NOT NULL, row_data text NOT NULL, created_at bigint NOT NULL)`,
      `CREATE TABLE IF NOT EXISTS ${claims} (target text PRIMARY KEY, pipeline text NOT NULL, owner text, host text NOT NULL, pid integer NOT NULL, expires_at bigint NOT NULL, stage_pipeline text)`,
    ],
    async connect() {
      const db = await get(); // DRIVER_MISSING as it is, not as a query error
      const copyStreams = await loadCopyStreams();
      let client: PgPoolClient;
      try {
        client = await db.connect();
      } catch (e) {
        throw toStoreError(e, "(connect)");
      }
      if (pool.own) return connection(client, undefined, copyStreams);
      // The caller's pool: its session zone would shift every zone-less date/time written into a
      // timestamptz column. UTC for this session, and the caller's zone back when it closes.
      try {
        const { rows } = await client.query<{ zone: string }>("SELECT current_setting('TimeZone') AS zone");
        await client.query("SET TIME ZONE 'UTC'");
        return connection(client, rows[0]?.zone, copyStreams);
      } catch (e) {
        client.release(e as Error);
        throw toStoreError(e, "(set the session time zone)");
      }
    },
    close: () => pool.end(),
  };
  return sqlDestination(driver, options, "postgres");
}
