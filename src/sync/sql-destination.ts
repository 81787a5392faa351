/**
 * The table destination shared by the PostgreSQL, MariaDB/MySQL and SQLite adapters: the
 * checkpoint, fencing, quarantine, schema evolution and replace-by-stage logic, written once.
 * Adapters bring the connection and the bulk load (COPY, multi-row INSERT, prepared upserts).
 */
import { hostname } from "node:os";
import { InvalidArgumentError } from "../core/errors.js";
import type { SqlExecutor } from "../store/contracts.js";
import type {
  ColumnSample,
  DestinationBatch,
  EncodedRows,
  DestinationSession,
  JsonValue,
  QuarantinedRow,
  QuarantineRecord,
  Row,
  RowEncoding,
  SyncDestination,
  WriteMode,
  WriteResult,
} from "./contracts.js";
import { SyncDestinationBusyError, SyncLockLostError } from "./errors.js";
import {
  parseColumns,
  parseTableName,
  quoteName,
  quoteTable,
  sibling,
  type TableName,
} from "./identifiers.js";
import { toJsonSafe } from "./json.js";
import { processGone } from "./lock.js";
import { SqlBuilder, type KeysetDialect } from "./keyset-sql.js";

/** Options every table destination takes. */
export interface SqlDestinationOptions {
  /** The table to write (`"orders"`, `"warehouse.orders"`). */
  table: string;
  /** The columns identifying a row; merge and replace match on them (a unique index must cover them). */
  key: string | readonly string[];
  /** `"merge"` (default): upsert by key; `"append"`: insert; `"replace"`: the table becomes this run's rows. */
  write?: WriteMode;
  /**
   * Merge only: a column that grows with every change (`updated_at`, a version number). A row is
   * applied only when it is newer than the stored one, so replays and late duplicates change nothing.
   */
  version?: string;
  /** Where checkpoints live, beside the table. Default `patchbay_sync_checkpoints`. */
  checkpointTable?: string;
  /** Where quarantined rows go, beside the table. Default `patchbay_sync_quarantine`. */
  quarantineTable?: string;
}

/** One bulk load. */
export interface LoadRequest {
  table: TableName;
  /** Columns present in the rows, in order. */
  columns: readonly string[];
  rows: readonly Row[];
  /** The rows already encoded (a pass-through), instead of `rows`; `columns` are its columns. */
  encoded?: EncodedRows | undefined;
  /** Plain insert, or upsert by `key` (guarded by `version` when given). */
  mode: "insert" | "merge";
  key: readonly string[];
  version: string | undefined;
}

/** A transaction on a destination connection, with the adapter's bulk operations. */
export interface DestinationTx extends SqlExecutor {
  /** Loads rows; returns how many were inserted or updated. */
  load(request: LoadRequest): Promise<number>;
  /** Makes `target` equal to `stage`: deletes rows not staged, upserts the rest. */
  swapIn(target: TableName, stage: TableName, key: readonly string[]): Promise<WriteResult>;
}

/** One session's connection. */
export interface DestinationConnection extends SqlExecutor {
  transaction<T>(fn: (tx: DestinationTx) => Promise<T>): Promise<T>;
  /** Column name → type, or `undefined` when the table does not exist. */
  describe(table: TableName): Promise<Map<string, string> | undefined>;
  /** Creates `stage` shaped like `target` (dropped first unless `resume`); true when a stage was kept. */
  prepareStage(
    target: TableName,
    stage: TableName,
    key: readonly string[],
    resume: boolean,
  ): Promise<boolean>;
  dropStage(stage: TableName): Promise<void>;
  /** The table's shape changed: forget what was cached about it. */
  invalidate(): void;
  close(): Promise<void>;
}

/** What an adapter implements. */
export interface SqlDestinationDriver extends KeysetDialect {
  connect(): Promise<DestinationConnection>;
  /** Encodings its `load` takes as they are (a pass-through from a source of the same kind). */
  readonly encodings?: readonly RowEncoding[];
  /** The column type to create for a sample value (`isKey`: it will be part of the primary key). */
  columnType(sample: unknown, isKey: boolean): string;
  /**
   * For a column of `type` (as `describe` gives it), a check telling why a value would not be
   * stored exactly (SQLite's NUMERIC affinity turns long number text into a rounded REAL), or
   * `undefined` when the column stores every value as it is. A row with such a value is
   * quarantined (`SYNC_VALUE_INEXACT`) with its batch instead of being loaded changed.
   */
  valueCheck?: (type: string) => ((value: unknown) => string | undefined) | undefined;
  /**
   * The check deciding whether a pass-through batch must be decoded (see `decodeEncoded`), where
   * the source's own text cannot need some of `valueCheck`'s checks. Default `valueCheck`.
   */
  passThroughCheck?: (type: string) => ((value: unknown) => string | undefined) | undefined;
  /**
   * The lines of an encoded batch as rows of text values (NULL as `null`). A pass-through batch
   * for a table with a column `passThroughCheck` guards is decoded with it and checked like any
   * rows, never loaded as the database would cast (and round) it.
   */
  decodeEncoded?: (encoded: EncodedRows) => Row[];
  /**
   * `CREATE TABLE IF NOT EXISTS` statements for the checkpoint, quarantine and claim tables
   * (quoted names). Claims: `target` (primary key), `pipeline`, `owner` (a run id, NULL once
   * released), `host`, `pid`, `expires_at` (ms since epoch), `stage_pipeline` (NULL allowed).
   */
  metaDdl(checkpoints: string, quarantine: string, claims: string): string[];
  close(): Promise<void>;
}

const WRITE_MODES: readonly WriteMode[] = ["append", "merge", "replace"];

/** FNV-1a, for stable stage-table names. */
function hash(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h.toString(16).padStart(8, "0");
}

/** The batch's columns, in first-seen order. */
export function columnsOf(rows: readonly Row[]): string[] {
  const seen = new Set<string>();
  for (const row of rows) for (const column in row) seen.add(column);
  return [...seen];
}

/**
 * One key value as text for telling keys apart: as the destination compares it (1, 1n and "1" are
 * one key), bytes by their hex (as text, bytes that are not UTF-8 would all read alike), anything
 * else as JSON (a bigint inside it as its digits).
 */
function keyText(value: unknown): string {
  if (typeof value === "string" || typeof value === "number" || typeof value === "bigint") return `=${value}`;
  if (value instanceof Uint8Array) return `x${Buffer.from(value).toString("hex")}`;
  return `j${JSON.stringify(toJsonSafe(value))}`;
}

/** Keeps the last row of each key (one statement must not touch a row twice). */
export function lastPerKey(rows: readonly Row[], key: readonly string[]): Row[] {
  const byKey = new Map<unknown, Row>();
  for (const row of rows) {
    const id =
      key.length === 1 ? keyText(row[key[0] as string]) : JSON.stringify(key.map((k) => keyText(row[k])));
    byKey.delete(id);
    byKey.set(id, row);
  }
  return byKey.size === rows.length ? (rows as Row[]) : [...byKey.values()];
}

/** Splits rows by the columns they have (usually one group: every row has all of `columns`). */
function byColumns(
  rows: readonly Row[],
  columns: readonly string[],
): Array<{ columns: string[]; rows: Row[] }> {
  if (rows.length === 0) return [];
  if (rows.every((row) => columns.every((c) => c in row)))
    return [{ columns: [...columns], rows: [...rows] }];
  const groups = new Map<string, { columns: string[]; rows: Row[] }>();
  for (const row of rows) {
    const own = columns.filter((c) => c in row);
    const id = own.join("\u0000");
    let group = groups.get(id);
    if (!group) groups.set(id, (group = { columns: own, rows: [] }));
    group.rows.push(row);
  }
  return [...groups.values()];
}

/**
 * Moves the rows holding text with a lone surrogate (`"\ud800"`: JSON and JS strings allow it,
 * UTF-8 has no such character) to `quarantine`: every driver would store U+FFFD in its place.
 * Objects and arrays are written as JSON, which escapes it: only a column's own text is checked.
 */
const LONE_SURROGATE = /\p{Cs}/u;

function refuseIllFormed(rows: Row[], columns: readonly string[], quarantine: QuarantineRecord[]): Row[] {
  const bad = (row: Row) =>
    columns.find((name) => {
      const value = row[name];
      return typeof value === "string" && LONE_SURROGATE.test(value);
    });
  if (!rows.some((row) => bad(row) !== undefined)) return rows;
  return rows.filter((row) => {
    const name = bad(row);
    if (name === undefined) return true;
    quarantine.push({
      reason: "value",
      error: {
        code: "SYNC_VALUE_INEXACT",
        message: `column ${JSON.stringify(name)} holds text with a lone surrogate, which UTF-8 cannot store (it would become U+FFFD)`,
      },
      row: toJsonSafe(row),
    });
    return false;
  });
}

/**
 * Items in groups of at most 100, each group's text (`length` of each) within 1 MiB unless one
 * item alone is longer: one statement per group stays far below a server's packet limit
 * (MariaDB's max_allowed_packet: 16 MiB by default, 4 MiB on older servers) with large rows.
 */
function* statementChunks<T>(items: readonly T[], length: (item: T) => number): Generator<T[]> {
  let chunk: T[] = [];
  let size = 0;
  for (const item of items) {
    const n = length(item);
    if (chunk.length > 0 && (chunk.length >= 100 || size + n > 1 << 20)) {
      yield chunk;
      chunk = [];
      size = 0;
    }
    chunk.push(item);
    size += n;
  }
  if (chunk.length > 0) yield chunk;
}

/** Moves the rows holding a value their column would change (see `valueCheck`) to `quarantine`. */
function refuseInexact(
  rows: Row[],
  columns: readonly string[],
  types: ReadonlyMap<string, string>,
  valueCheck: NonNullable<SqlDestinationDriver["valueCheck"]>,
  quarantine: QuarantineRecord[],
): Row[] {
  const checks: Array<[string, (value: unknown) => string | undefined]> = [];
  for (const name of columns) {
    const type = types.get(name);
    const check = type === undefined ? undefined : valueCheck(type);
    if (check) checks.push([name, check]);
  }
  if (checks.length === 0) return rows;
  return rows.filter((row) => {
    for (const [name, check] of checks) {
      const why = check(row[name]);
      if (why === undefined) continue;
      quarantine.push({
        reason: "value",
        error: { code: "SYNC_VALUE_INEXACT", message: `column ${JSON.stringify(name)} ${why}` },
        row: toJsonSafe(row),
      });
      return false;
    }
    return true;
  });
}

/** Builds a {@link SyncDestination} over an adapter's {@link SqlDestinationDriver}. */
export function sqlDestination(
  driver: SqlDestinationDriver,
  options: SqlDestinationOptions,
  kind: string,
): SyncDestination {
  const table = parseTableName(options.table);
  const key = parseColumns(options.key, "key");
  const write = options.write ?? "merge";
  if (!WRITE_MODES.includes(write)) {
    throw new InvalidArgumentError(`write must be one of ${WRITE_MODES.join(", ")}`, "write");
  }
  const version = options.version === undefined ? undefined : parseColumns(options.version, "version")[0];
  if (version !== undefined && write !== "merge") {
    throw new InvalidArgumentError(`version only applies to write "merge"`, "version");
  }
  if (version !== undefined && key.includes(version)) {
    throw new InvalidArgumentError("the version column cannot be part of the key", "version");
  }
  const checkpoints = sibling(table, options.checkpointTable ?? "patchbay_sync_checkpoints");
  const quarantine = sibling(table, options.quarantineTable ?? "patchbay_sync_quarantine");
  // Fixed, not configurable: every pipeline writing the table must meet at the same claim row.
  const claims = sibling(table, "patchbay_sync_claims");
  const q = (t: TableName) => quoteTable(t, driver.quote);
  const description = `${kind} table ${table.display} (${write})`;

  return {
    description,
    write,
    key,
    capabilities: {
      transactional: true,
      columns: true,
      ...(driver.encodings ? { encodings: driver.encodings } : {}),
    },
    close: () => driver.close(),

    async quarantined(pipeline, options = {}): Promise<QuarantinedRow[]> {
      const limit = options.limit ?? 50;
      if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
        throw new InvalidArgumentError(`limit is an integer in 1..1000, got ${limit}`, "limit");
      }
      const before = options.before === undefined ? undefined : Number(options.before);
      if (before !== undefined && !Number.isSafeInteger(before)) {
        throw new InvalidArgumentError(`before is a quarantined row's id, got ${options.before}`, "before");
      }
      const conn = await driver.connect();
      try {
        // Reading creates nothing: no quarantine table yet means nothing quarantined.
        if ((await conn.describe(quarantine)) === undefined) return [];
        const s = new SqlBuilder(driver);
        const where = `pipeline = ${s.param(pipeline)}${before === undefined ? "" : ` AND id < ${s.param(before)}`}`;
        const { rows } = await conn.query<{
          id: unknown;
          run_id: string;
          reason: string;
          error: string;
          row_data: string;
          created_at: unknown;
        }>(
          `SELECT id, run_id, reason, error, row_data, created_at FROM ${q(quarantine)} WHERE ${where} ORDER BY id DESC LIMIT ${limit}`,
          s.params,
        );
        return rows.map((r) => ({
          id: String(r.id),
          runId: r.run_id,
          reason: r.reason,
          error: JSON.parse(r.error) as QuarantineRecord["error"],
          row: JSON.parse(r.row_data) as JsonValue,
          at: Number(r.created_at),
        }));
      } finally {
        await conn.close();
      }
    },

    async open(context): Promise<DestinationSession> {
      const conn = await driver.connect();
      try {
        for (const ddl of driver.metaDdl(q(checkpoints), q(quarantine), q(claims))) {
          // Two sessions opening tables in one schema for the first time (two pipelines, or a
          // run and a status read) race on the shared tables: PostgreSQL's IF NOT EXISTS checks
          // before it creates, so the loser fails on the catalog's unique index (23505),
          // duplicate_table (42P07) or, for the table's row type, duplicate_object (42710). The
          // table exists once the winner commits: the statement runs again.
          for (let attempt = 0; ; attempt++) {
            try {
              await conn.query(ddl);
              break;
            } catch (e) {
              if (!createRaceLost(e) || attempt >= 3) throw e;
              await new Promise((r) => setTimeout(r, 20 * (attempt + 1)));
            }
          }
        }
      } catch (e) {
        await conn.close();
        throw e;
      }
      const stage = sibling(table, `patchbay_stage_${hash(`${context.pipeline}\u0000${table.display}`)}`);
      const { pipeline, runId } = context;
      const leaseMs = context.leaseMs ?? 60_000;
      // Checkpoints are per pipeline and table: pointing a pipeline at another table starts afresh.
      const target = table.display;
      let staging = false;
      let closed = false;
      const b = () => new SqlBuilder(driver);

      const saveCheckpoint = async (tx: SqlExecutor, checkpoint: JsonValue) => {
        const s = b();
        const text = `UPDATE ${q(checkpoints)} SET checkpoint = ${s.param(JSON.stringify(checkpoint))}, seq = seq + 1, updated_at = ${s.param(Date.now())} WHERE pipeline = ${s.param(pipeline)} AND target = ${s.param(target)} AND owner = ${s.param(runId)}`;
        const { rowCount } = await tx.query(text, s.params);
        // Another run claimed the pipeline since we did: our batch must not land. Throwing rolls it back.
        if (rowCount === 0)
          throw new SyncLockLostError(
            pipeline,
            `run ${runId} was fenced out of ${table.display} by a newer run`,
          );
      };

      // A row is quarantined once per distinct failure (pipeline, reason, error, row data): a
      // lookback window or a rerun that reads the same bad row again adds nothing. One run at a
      // time holds the pipeline (lock and fencing), so the check and the insert cannot race.
      const newRecords = async (tx: SqlExecutor, records: readonly QuarantineRecord[]) => {
        const fresh: QuarantineRecord[] = [];
        const seen = new Set<string>();
        const all = records.map((r) => ({
          record: r,
          fields: [r.reason, JSON.stringify(r.error), JSON.stringify(r.row)] as const,
        }));
        for (const chunk of statementChunks(all, (c) => c.fields[1].length + c.fields[2].length)) {
          const s = b();
          // Placeholders in text order (`?` is positional).
          const byPipeline = s.param(pipeline);
          const rowData = [...new Set(chunk.map((c) => c.fields[2]))].map((d) => s.param(d));
          const { rows } = await tx.query<{ reason: string; error: string; row_data: string }>(
            `SELECT reason, error, row_data FROM ${q(quarantine)} WHERE pipeline = ${byPipeline} AND row_data IN (${rowData.join(", ")})`,
            s.params,
          );
          for (const r of rows) seen.add(JSON.stringify([r.reason, r.error, r.row_data]));
          for (const c of chunk) {
            const id = JSON.stringify(c.fields);
            if (seen.has(id)) continue;
            seen.add(id);
            fresh.push(c.record);
          }
        }
        return fresh;
      };

      const saveQuarantine = async (tx: SqlExecutor, all: readonly QuarantineRecord[]) => {
        const now = Date.now();
        const records = (await newRecords(tx, all)).map((r) => ({
          reason: r.reason,
          error: JSON.stringify(r.error),
          row: JSON.stringify(r.row),
        }));
        for (const chunk of statementChunks(records, (r) => r.error.length + r.row.length)) {
          const s = b();
          const values = chunk.map(
            (r) =>
              `(${s.param(pipeline)}, ${s.param(runId)}, ${s.param(r.reason)}, ${s.param(r.error)}, ${s.param(r.row)}, ${s.param(now)})`,
          );
          await tx.query(
            `INSERT INTO ${q(quarantine)} (pipeline, run_id, reason, error, row_data, created_at) VALUES ${values.join(", ")}`,
            s.params,
          );
        }
      };

      const deleteKeys = async (tx: SqlExecutor, keys: readonly Row[]) => {
        let deleted = 0;
        for (let i = 0; i < keys.length; i += 200) {
          const s = b();
          const match = keys
            .slice(i, i + 200)
            .map((row) => `(${key.map((k) => `${s.col(k)} = ${s.param(row[k])}`).join(" AND ")})`);
          const { rowCount } = await tx.query(
            `DELETE FROM ${q(table)} WHERE ${match.join(" OR ")}`,
            s.params,
          );
          deleted += rowCount;
        }
        return deleted;
      };

      // The destination claim (issue 20, item 7): one run of one pipeline writes the table at a
      // time, whichever pipeline it belongs to, so a full + replace run cannot swap in a stage
      // that misses what an incremental run wrote meanwhile. A row per table in the claims table:
      // taken by a conditional UPDATE (free, expired, or our own pipeline's: the pipeline lock and
      // the checkpoint's fencing order its runs), renewed first thing in every write transaction
      // (which holds the row lock until commit, so no one takes it mid-batch), released on close.
      let firstClaimRace = false;
      const claimTarget = async (tx: SqlExecutor): Promise<void> => {
        const now = Date.now();
        const take = (condition: (s: SqlBuilder) => string) => {
          const s = b();
          const text = `UPDATE ${q(claims)} SET pipeline = ${s.param(pipeline)}, owner = ${s.param(runId)}, host = ${s.param(hostname())}, pid = ${s.param(process.pid)}, expires_at = ${s.param(now + leaseMs)} WHERE target = ${s.param(target)} AND ${condition(s)}`;
          return tx.query(text, s.params);
        };
        const free = await take(
          (s) => `(owner IS NULL OR pipeline = ${s.param(pipeline)} OR expires_at <= ${s.param(now)})`,
        );
        if (free.rowCount > 0) return;
        const r = b();
        const { rows } = await tx.query<{
          pipeline: string;
          owner: string | null;
          host: string;
          pid: number | string;
          expires_at: number | string;
        }>(
          `SELECT pipeline, owner, host, pid, expires_at FROM ${q(claims)} WHERE target = ${r.param(target)}`,
          r.params,
        );
        const held = rows[0];
        if (!held) {
          const i = b();
          firstClaimRace = true;
          await tx.query(
            `INSERT INTO ${q(claims)} (target, pipeline, owner, host, pid, expires_at, stage_pipeline) VALUES (${i.param(target)}, ${i.param(pipeline)}, ${i.param(runId)}, ${i.param(hostname())}, ${i.param(process.pid)}, ${i.param(now + leaseMs)}, NULL)`,
            i.params,
          );
          firstClaimRace = false;
          return;
        }
        // A holder on this host whose process is gone (SIGKILL) cannot renew: take it now.
        const pid = Number(held.pid);
        if (held.owner !== null && held.host === hostname() && pid !== process.pid && processGone(pid)) {
          const dead = await take((s) => `owner = ${s.param(held.owner)}`);
          if (dead.rowCount > 0) return;
        }
        throw new SyncDestinationBusyError(
          pipeline,
          table.display,
          held.pipeline,
          `${held.host}:${pid}`,
          Number(held.expires_at),
        );
      };

      /** Renews this run's claim; a write by this pipeline also makes another pipeline's stage stale. */
      const renewClaim = async (tx: SqlExecutor) => {
        const s = b();
        const text = `UPDATE ${q(claims)} SET expires_at = ${s.param(Date.now() + leaseMs)}, stage_pipeline = CASE WHEN stage_pipeline = ${s.param(pipeline)} THEN stage_pipeline ELSE NULL END WHERE target = ${s.param(target)} AND owner = ${s.param(runId)}`;
        const { rowCount } = await tx.query(text, s.params);
        if (rowCount === 0)
          throw new SyncLockLostError(
            pipeline,
            `run ${runId} lost its claim on ${table.display}: it ran out (no batch for longer than the lease) and another pipeline took the table`,
          );
      };

      const claimCheckpoint = () =>
        conn.transaction(async (tx) => {
          await claimTarget(tx);
          const s = b();
          const { rowCount } = await tx.query(
            `UPDATE ${q(checkpoints)} SET owner = ${s.param(runId)}, seq = seq + 1 WHERE pipeline = ${s.param(pipeline)} AND target = ${s.param(target)}`,
            s.params,
          );
          if (rowCount === 0) {
            const i = b();
            await tx.query(
              `INSERT INTO ${q(checkpoints)} (pipeline, target, checkpoint, owner, seq, updated_at) VALUES (${i.param(pipeline)}, ${i.param(target)}, NULL, ${i.param(runId)}, 1, ${i.param(Date.now())})`,
              i.params,
            );
          }
          return readCheckpoint(tx);
        });

      const readCheckpoint = async (tx: SqlExecutor) => {
        const r = b();
        const { rows } = await tx.query<{ checkpoint: unknown }>(
          `SELECT checkpoint FROM ${q(checkpoints)} WHERE pipeline = ${r.param(pipeline)} AND target = ${r.param(target)}`,
          r.params,
        );
        const stored = rows[0]?.checkpoint;
        return typeof stored === "string" ? (JSON.parse(stored) as JsonValue) : undefined;
      };

      return {
        readCheckpoint: () => readCheckpoint(conn),

        claim: async () => {
          try {
            return await claimCheckpoint();
          } catch (e) {
            // Two pipelines inserting the table's first claim row at once: one insert fails on the
            // primary key. The row exists now; the second attempt reads who holds it.
            if (!firstClaimRace) throw e;
            return claimCheckpoint();
          }
        },

        async columns() {
          const described = await conn.describe(table);
          return described && [...described.keys()];
        },

        async evolve(samples: readonly ColumnSample[]) {
          const described = await conn.describe(table);
          if (!described) {
            const ordered = [
              ...key.map((k) => samples.find((s) => s.name === k) ?? { name: k, sample: null }),
              ...samples.filter((s) => !key.includes(s.name)),
            ];
            const columns = ordered.map(
              (c) =>
                `${quoteName(c.name, driver.quote, "column")} ${driver.columnType(c.sample, key.includes(c.name))}`,
            );
            const pk = key.map((k) => quoteName(k, driver.quote)).join(", ");
            await conn.query(`CREATE TABLE ${q(table)} (${columns.join(", ")}, PRIMARY KEY (${pk}))`);
          } else {
            for (const c of samples) {
              if (described.has(c.name)) continue;
              await conn.query(
                `ALTER TABLE ${q(table)} ADD COLUMN ${quoteName(c.name, driver.quote, "column")} ${driver.columnType(c.sample, false)}`,
              );
            }
          }
          // A stage made before the change needs the new columns too.
          const staged = staging ? await conn.describe(stage) : undefined;
          for (const c of staged ? samples : []) {
            if (staged?.has(c.name)) continue;
            await conn.query(
              `ALTER TABLE ${q(stage)} ADD COLUMN ${quoteName(c.name, driver.quote, "column")} ${driver.columnType(c.sample, false)}`,
            );
          }
          conn.invalidate();
        },

        async beginReplace(resume) {
          // A kept stage is only as new as its rows. If another pipeline wrote the table since it
          // was begun (that write cleared the marker), swapping it in would undo that write: refill.
          let keep = resume;
          if (resume) {
            const s = b();
            const { rows } = await conn.query<{ stage_pipeline: string | null }>(
              `SELECT stage_pipeline FROM ${q(claims)} WHERE target = ${s.param(target)}`,
              s.params,
            );
            keep = rows[0]?.stage_pipeline === pipeline;
            if (!keep)
              context.logger.warn(
                { pipeline, table: table.display },
                "patchbay sync: another pipeline wrote the table since this replace was staged; staging again from the start",
              );
          }
          const kept = await conn.prepareStage(table, stage, key, keep);
          const m = b();
          await conn.query(
            `UPDATE ${q(claims)} SET stage_pipeline = ${m.param(pipeline)} WHERE target = ${m.param(target)} AND owner = ${m.param(runId)}`,
            m.params,
          );
          staging = true;
          return kept;
        },

        async write(batch: DestinationBatch) {
          let rows = batch.rows;
          let encoded = batch.encoded;
          // A column that would round a value unchecked (numeric(12,2), timestamp(3)): the
          // encoded lines become rows and are checked like the others.
          if (encoded && encoded.count > 0 && driver.valueCheck && driver.decodeEncoded) {
            const types = await conn.describe(write === "replace" ? stage : table);
            const check = driver.passThroughCheck ?? driver.valueCheck;
            if (types && encoded.columns.some((name) => check(types.get(name) ?? "") !== undefined)) {
              rows = [...driver.decodeEncoded(encoded), ...rows];
              encoded = undefined;
            }
          }
          if (write !== "append") rows = lastPerKey(rows, key);
          // An encoded batch may also hold rows (a change stream's rows lacking an unchanged TOAST value).
          const columns = columnsOf(rows);
          if (
            version !== undefined &&
            ((rows.length > 0 && !columns.includes(version)) ||
              (encoded && !encoded.columns.includes(version)))
          ) {
            throw new InvalidArgumentError(
              `rows lack the version column ${JSON.stringify(version)}; merge cannot compare them`,
              "version",
            );
          }
          const quarantine = [...batch.quarantine];
          rows = refuseIllFormed(rows, columns, quarantine);
          if (driver.valueCheck && rows.length > 0) {
            const types = await conn.describe(write === "replace" ? stage : table);
            if (types) rows = refuseInexact(rows, columns, types, driver.valueCheck, quarantine);
          }
          const refused = quarantine.length - batch.quarantine.length;
          return conn.transaction(async (tx) => {
            await renewClaim(tx);
            const result: WriteResult = { written: 0, deleted: 0 };
            // Deletes first: a change stream nets its changes by the source's key, which may be
            // finer than this table's (REPLICA IDENTITY FULL without a primary key: every column),
            // so an update can come as a delete of the old row and an upsert of the new one with
            // the same key here. Applied the other way round, the delete would remove the update.
            if (write === "merge" && batch.deletes.length > 0)
              result.deleted = await deleteKeys(tx, batch.deletes);
            if (encoded && encoded.count > 0) {
              result.written = await tx.load({
                table: write === "replace" ? stage : table,
                columns: encoded.columns,
                rows: [],
                encoded,
                mode: write === "append" ? "insert" : "merge",
                key,
                version: write === "merge" ? version : undefined,
              });
            }
            // Rows lacking a column (a change whose unchanged TOAST value was not sent) are loaded
            // apart, by their own columns, so a merge keeps the stored value instead of a NULL.
            for (const group of byColumns(rows, columns)) {
              result.written += await tx.load({
                table: write === "replace" ? stage : table,
                columns: group.columns,
                rows: group.rows,
                encoded: undefined,
                mode: write === "append" ? "insert" : "merge",
                key,
                version: write === "merge" ? version : undefined,
              });
            }
            if (quarantine.length > 0) await saveQuarantine(tx, quarantine);
            await saveCheckpoint(tx, batch.checkpoint);
            return refused > 0 ? { ...result, quarantined: refused } : result;
          });
        },

        async commitReplace(checkpoint: JsonValue) {
          const result = await conn.transaction(async (tx) => {
            await renewClaim(tx);
            const swapped = await tx.swapIn(table, stage, key);
            await saveCheckpoint(tx, checkpoint);
            return swapped;
          });
          // After the commit: MySQL's DROP TABLE would commit an open transaction by itself. A crash
          // before it leaves a stage the next full run drops.
          await conn.dropStage(stage);
          return result;
        },

        async reset() {
          const s = b();
          await conn.query(
            `DELETE FROM ${q(checkpoints)} WHERE pipeline = ${s.param(pipeline)} AND target = ${s.param(target)}`,
            s.params,
          );
          await conn.dropStage(stage);
        },

        async close() {
          if (closed) return;
          closed = true;
          try {
            const s = b();
            await conn.query(
              `UPDATE ${q(claims)} SET owner = NULL, expires_at = 0 WHERE target = ${s.param(target)} AND owner = ${s.param(runId)}`,
              s.params,
            );
          } catch (e) {
            // A lost connection: the claim runs out by itself (or is taken at once on this host).
            context.logger.warn(
              { pipeline, table: table.display, error: (e as Error).message },
              "patchbay sync: could not release the destination claim",
            );
          } finally {
            await conn.close();
          }
        },
      };
    },
  };
}

/** A `CREATE TABLE IF NOT EXISTS` that lost a race with another session creating the same table. */
function createRaceLost(e: unknown): boolean {
  const state = (e as { sqlState?: unknown } | undefined)?.sqlState;
  return state === "23505" || state === "42P07" || state === "42710" || state === "ER_TABLE_EXISTS_ERROR";
}
