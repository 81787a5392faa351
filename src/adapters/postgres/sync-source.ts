import { lazyPool, OUTPUT_SETTINGS, setLocal } from "./lazy-pool.js";
import { loadCopyStreams, loadedPg, type PgPoolClient, type PgPoolLike, type PgTypeParsers } from "./load.js";
import type { SyncSource } from "../../sync/contracts.js";
import { SyncCursorError } from "../../sync/errors.js";
import { keysetSource, type KeysetDriver, type SqlSourceOptions } from "../../sync/keyset.js";
import { copyField, decodeCopyField } from "./copy.js";
import { postgresLiteral } from "./driver.js";
import { toStoreError } from "./errors.js";

/** Options of {@link postgresSource}. */
export interface PostgresSourceOptions extends SqlSourceOptions {
  /** Connection string. Default `PATCHBAY_PG_URL`, then libpq's `PG*` variables. */
  url?: string;
  /** Use your own `pg` pool instead (not ended by `close()`). */
  pool?: PgPoolLike;
}

// Dates and times arrive as PostgreSQL's own text (`2026-11-26 10:00:00.123456+00`), not as JS
// Dates: a Date keeps milliseconds, and a sync must not round a microsecond cursor or value.
// Arrays of them too; int8 and numeric are already text in `pg`. json and jsonb arrive as their
// JSON text, never parsed: JSON.parse rounds 12345678901234567890 and turns the JSON string
// `"a"` into the bare text `a`, which no destination can tell from text any more.
const TEXT_OIDS = new Set([
  1082, 1083, 1114, 1184, 1266, 1186, 1182, 1183, 1115, 1185, 1270, 1187, 114, 3802,
]);
const rawText = (value: string) => value;
const parserOf = (oid: number, format?: "text" | "binary"): ((value: string) => unknown) => {
  if (format === "binary") return loadedPg().types.getTypeParser(oid, format) as (value: string) => unknown;
  if (TEXT_OIDS.has(oid)) return rawText;
  return loadedPg().types.getTypeParser(oid, format ?? "text") as (value: string) => unknown;
};
const types: PgTypeParsers = { getTypeParser: parserOf };

/**
 * The transactions of other sessions still open in this database (client backends; each holds a
 * lock on its own virtual transaction id, which `pg_locks` shows to every role): `since`, the
 * oldest one's start (`xact_start`: its `now()`), and `hidden`, whether one of them belongs to a
 * role whose `xact_start` this role may not see (grant it `pg_read_all_stats`). A session whose
 * lock is seen but whose activity row (read once per statement, a moment earlier) says idle began
 * its transaction after this statement started: `statement_timestamp()` is before its start.
 */
const IN_FLIGHT = `WITH pb_in_flight AS (
  SELECT min(coalesce(a.xact_start, statement_timestamp())) AS since,
         coalesce(bool_or(a.xact_start IS NULL AND a.state IS NULL), false) AS hidden
    FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
   WHERE l.locktype = 'virtualxid' AND l.granted AND l.pid <> pg_backend_pid()
     AND (a.datid IS NULL OR a.datid = (SELECT oid FROM pg_database WHERE datname = current_database()))
     AND coalesce(a.backend_type, 'client backend') = 'client backend')`;

/** Builds the driver for {@link keysetSource}; exported for the bench and adapter authors. */
export function postgresKeysetDriver(options: {
  url?: string | undefined;
  pool?: PgPoolLike | undefined;
}): KeysetDriver {
  // The source's own sessions keep the server's time zone (a zone-less cursor is bounded by the
  // local clock its writers' now() gives) but write every value in the standard way; on the
  // caller's pool each read sets that for its own transaction only.
  const pool = lazyPool(options, 2, OUTPUT_SETTINGS);
  const get = () => pool.get();
  /**
   * Runs `read` on a client of the pool; on the caller's pool, in a transaction that writes values
   * our way. A read cut off half way (a COPY) leaves the connection unusable: it is destroyed
   * rather than reused.
   */
  const onClient = async <T>(db: PgPoolLike, read: (client: PgPoolClient) => Promise<T>): Promise<T> => {
    const client = await db.connect();
    let broken: Error | undefined;
    try {
      if (pool.own) return await read(client);
      await client.query(`BEGIN; ${setLocal(OUTPUT_SETTINGS)}`);
      const result = await read(client);
      await client.query("COMMIT");
      return result;
    } catch (e) {
      broken = e as Error;
      throw e;
    } finally {
      client.release(broken);
    }
  };
  return {
    quote: "double",
    placeholder: (n) => `$${n}`,
    rowValues: true,
    async query(text, params) {
      const db = await get(); // DRIVER_MISSING as it is, not as a query error
      const run = async (on: PgPoolLike | PgPoolClient) =>
        (await on.query({ text, values: params as unknown[], types })).rows;
      try {
        return pool.own ? await run(db) : await onClient(db, run);
      } catch (e) {
        throw toStoreError(e, text);
      }
    },
    upperBoundSql: (type) =>
      type === "timestamp"
        ? `${IN_FLIGHT} SELECT (CASE WHEN (SELECT hidden FROM pb_in_flight) THEN '-infinity'::timestamptz
             ELSE LEAST(clock_timestamp() - $1::float8 * interval '1 millisecond',
                        (SELECT since FROM pb_in_flight) - interval '1 microsecond') END)::text AS v`
        : `${IN_FLIGHT} SELECT (CASE WHEN (SELECT hidden FROM pb_in_flight) THEN -9223372036854775807
             ELSE LEAST(floor(extract(epoch FROM clock_timestamp()) * 1000) - $1::float8,
                        floor(extract(epoch FROM (SELECT since FROM pb_in_flight)) * 1000) - 1) END)::bigint AS v`,
    async observe(from, column, params) {
      const rows = await this.query(
        `SELECT floor(extract(epoch FROM clock_timestamp()) * 1000000)::bigint::text AS at, max(${column})::text AS max FROM ${from}`,
        params,
      );
      return { at: BigInt(String(rows[0]?.at)), max: rows[0]?.max ?? null };
    },
    async inFlightSince() {
      const rows = await this.query(
        `${IN_FLIGHT} SELECT hidden, floor(extract(epoch FROM since) * 1000000)::bigint::text AS since FROM pb_in_flight`,
        [],
      );
      const row = rows[0] ?? {};
      if (row.hidden === true) return "unknown";
      return row.since === null || row.since === undefined ? null : BigInt(row.since as string);
    },
    minusSql: (type) =>
      type === "timestamp"
        ? "SELECT ($1::text::timestamptz - $2::float8 * interval '1 millisecond')::text AS v"
        : "SELECT ($1::text::bigint - $2::bigint) AS v",
    close: () => pool.end(),

    encodings: ["postgres-copy-text"],

    literal(value) {
      // A cursor value is one scalar: never NULL, never an array.
      const written =
        value === null || value === undefined || Array.isArray(value) ? undefined : postgresLiteral(value);
      if (written !== undefined) return written;
      throw new SyncCursorError(
        `a cursor value ${JSON.stringify(value)} cannot be used as a PostgreSQL literal`,
      );
    },

    async readEncoded(text, order) {
      const db = await get();
      const { to: copyTo } = await loadCopyStreams();
      try {
        return await onClient(db, async (client) => {
          // Described per page (a round trip of a millisecond): a column added meanwhile cannot shift the fields.
          const columns = (await client.query(`SELECT * FROM (${text}) pb_page LIMIT 0`)).fields.map(
            (f) => f.name,
          );
          const chunks: Buffer[] = [];
          for await (const chunk of client.query(copyTo(`COPY (${text}) TO STDOUT`)))
            chunks.push(chunk as Buffer);
          const data = Buffer.concat(chunks);
          if (data.length === 0) return undefined;
          let count = 0;
          for (let i = data.indexOf(10); i !== -1; i = data.indexOf(10, i + 1)) count++;
          const lastLine = data
            .subarray(data.lastIndexOf(10, data.length - 2) + 1, data.length - 1)
            .toString("utf8");
          const last = order.map((name) => {
            const value = decodeCopyField(copyField(lastLine, columns.indexOf(name)));
            if (value === null) {
              throw new SyncCursorError(
                `cursor/key column ${JSON.stringify(name)} is NULL in a row; keyset paging needs NOT NULL cursor and key columns`,
              );
            }
            return value;
          });
          return {
            encoded: { encoding: "postgres-copy-text" as const, columns, chunks: [data], count },
            last,
          };
        });
      } catch (e) {
        throw e instanceof SyncCursorError ? e : toStoreError(e, text);
      }
    },
  };
}

/**
 * Reads a PostgreSQL table or query in batches, by keyset paging (never OFFSET). Timestamps are
 * compared by the source's own clock (`clock_timestamp()` minus `safetyLag`); dates and times come
 * back as PostgreSQL's text, exact to the microsecond (`timestamptz` with its offset, in the
 * session's zone: the source's sessions keep the server's zone, so a `timestamp` cursor is bounded
 * by the local clock its writers' `now()` gives).
 *
 * @example
 * postgresSource({ url, table: "public.orders", cursor: "updated_at", key: "id", lookback: "5m" })
 * postgresSource({ url, query: "SELECT o.*, c.email FROM orders o JOIN customers c USING (customer_id)", cursor: "updated_at", key: "id" })
 */
export function postgresSource(options: PostgresSourceOptions): SyncSource {
  return keysetSource(postgresKeysetDriver(options), options, "postgres");
}
