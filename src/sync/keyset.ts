/**
 * The SQL table/query source shared by the PostgreSQL, MariaDB/MySQL and SQLite adapters:
 * keyset paging over a composite cursor, an upper bound from the source database's clock minus a
 * safety lag, and a lookback window re-read at the start of each incremental run.
 */
import { toMs, type Duration } from "../core/duration.js";
import { InvalidArgumentError } from "../core/errors.js";
import type {
  EncodedRows,
  ReadRequest,
  Row,
  RowEncoding,
  SourceBatch,
  SourceCursor,
  SyncSource,
} from "./contracts.js";
import { SyncCursorError } from "./errors.js";
import { parseColumns, parseTableName, quoteName, quoteTable } from "./identifiers.js";
import { countQuery, pageQuery, type KeysetDialect, type PageSpec } from "./keyset-sql.js";

/**
 * What the first cursor column holds, which decides how the upper bound and the lookback are
 * computed: `"timestamp"` (a date/time column; bound = the source's clock), `"epoch-ms"` (a
 * number of ms since the epoch), `"sequence"` (an ever-growing number or text: no clock, so no
 * lag and no lookback).
 */
export type CursorType = "timestamp" | "epoch-ms" | "sequence";

/** Options every SQL source takes. */
export interface SqlSourceOptions {
  /** The table to read (`"orders"`, `"public.orders"`). Give `table` or `query`. */
  table?: string;
  /**
   * A query to read, as SQL written by you (never built from input): it becomes a subquery, so
   * the cursor and key columns are its output columns. Its own parameters go in `params`.
   */
  query?: string;
  /** Parameters of `query`, in the adapter's placeholder style. */
  params?: readonly unknown[];
  /** Columns to select from `table` (default all). */
  columns?: readonly string[];
  /** Cursor columns for incremental reads, most significant first, e.g. `"updated_at"`. */
  cursor?: string | readonly string[];
  /** The unique key: the tiebreak after the cursor, and the order of full reads. */
  key: string | readonly string[];
  /** What the first cursor column holds. Default `"timestamp"`. */
  cursorType?: CursorType;
  /**
   * The run's upper bound is the source database's clock minus this lag, so rows being written by
   * transactions still in flight are left for the next run. Default `"5s"` (0 for `"sequence"`).
   */
  safetyLag?: Duration;
  /**
   * Each incremental run first re-reads rows whose first cursor column is within this window
   * before the checkpoint, to pick up rows committed late with an older timestamp. Needs a merge
   * destination (replays are harmless there). Default 0.
   */
  lookback?: Duration;
}

/** What an adapter gives the shared source. */
export interface KeysetDriver extends KeysetDialect {
  /** Runs a read-only statement. */
  query(text: string, params: readonly unknown[]): Promise<Row[]>;
  /**
   * SQL returning one column `v`: the source's clock minus `$lag` milliseconds, comparable with a
   * cursor column of `type` (its first placeholder is the lag).
   */
  upperBoundSql(type: Exclude<CursorType, "sequence">): string;
  /** SQL returning one column `v`: the first placeholder's cursor value minus the second's milliseconds. */
  minusSql(type: Exclude<CursorType, "sequence">): string;
  /**
   * Sequence cursors: the source's clock (µs since the epoch, read after the statement's snapshot
   * was taken) and the largest value of `column` in `from` that the snapshot sees. Every value up
   * to that largest one was handed out before that clock reading. Without it (SQLite: one writer at
   * a time, so a committed read is complete) sequence reads have no upper bound.
   */
  observe?(from: string, column: string, params: readonly unknown[]): Promise<{ at: bigint; max: unknown }>;
  /**
   * When the oldest transaction of another session still open started (µs since the epoch),
   * `null` when none is open, `"unknown"` when one is open whose start cannot be seen. Needed with
   * {@link observe}.
   */
  inFlightSince?(): Promise<bigint | null | "unknown">;
  close(): Promise<void>;
  /** Encodings {@link readEncoded} delivers. */
  readonly encodings?: readonly RowEncoding[];
  /** Escapes a value as a SQL literal, for {@link readEncoded}'s parameterless statements. */
  literal?(value: unknown): string;
  /**
   * Runs a page query (values inlined as literals) and returns its rows encoded, with the values of
   * the `order` columns of its last row; `undefined` when the page is empty.
   */
  readEncoded?(
    text: string,
    order: readonly string[],
  ): Promise<{ encoded: EncodedRows; last: Array<string | number | boolean> } | undefined>;
}

interface KeysetCursor {
  /** The paging columns the position is made of; a change of configuration is detected. */
  columns: string[];
  values: unknown[];
}

/** Makes a cursor value JSON-safe and exact; NULLs cannot be paged over. */
function cursorValue(row: Row, column: string): string | number | boolean {
  const value = row[column];
  if (typeof value === "string" || typeof value === "number" || typeof value === "boolean") return value;
  if (typeof value === "bigint") return value.toString();
  if (value instanceof Date) return value.toISOString();
  if (value === null || value === undefined) {
    throw new SyncCursorError(
      `cursor/key column ${JSON.stringify(column)} is NULL in a row; keyset paging needs NOT NULL cursor and key columns (COALESCE it in a query source)`,
    );
  }
  throw new SyncCursorError(
    `cursor/key column ${JSON.stringify(column)} holds a ${typeof value}; use text, numbers or timestamps`,
  );
}

function parseCursor(cursor: SourceCursor | undefined, columns: readonly string[]): unknown[] | undefined {
  if (cursor === undefined || cursor === null) return undefined;
  const c = cursor as Partial<KeysetCursor>;
  if (
    typeof cursor !== "object" ||
    !Array.isArray(c.columns) ||
    !Array.isArray(c.values) ||
    c.columns.join(",") !== columns.join(",") ||
    c.values.length !== columns.length
  ) {
    throw new SyncCursorError(
      `checkpoint cursor ${JSON.stringify(cursor)} was not made by this source's paging columns (${columns.join(", ")}); reset the pipeline to read from the start`,
    );
  }
  return c.values;
}

/**
 * The time (ms since the epoch) of a keyset cursor's first value: a timestamp (an ISO string; one
 * without an offset, as SQLite and MySQL give them, is UTC) or epoch-ms (a number, or its digits).
 */
function cursorTimeOf(cursor: SourceCursor, type: CursorType): number | undefined {
  const value = (cursor as Partial<KeysetCursor> | null)?.values?.[0];
  if (type === "epoch-ms") {
    const n =
      typeof value === "number"
        ? value
        : typeof value === "string" && /^\d+$/.test(value)
          ? Number(value)
          : NaN;
    return Number.isFinite(n) ? n : undefined;
  }
  if (typeof value !== "string") return undefined;
  const zoned = /\d:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}(:?\d{2})?)$/i.test(value)
    ? value
    : `${value.replace(" ", "T")}Z`;
  const at = Date.parse(zoned);
  return Number.isNaN(at) ? undefined : at;
}

/** Builds a {@link SyncSource} over any keyset-capable SQL backend. */
export function keysetSource(driver: KeysetDriver, options: SqlSourceOptions, kind: string): SyncSource {
  if ((options.table === undefined) === (options.query === undefined)) {
    throw new InvalidArgumentError("give exactly one of table or query", "table");
  }
  const table = options.table === undefined ? undefined : parseTableName(options.table);
  const key = parseColumns(options.key, "key");
  const cursorColumns = options.cursor === undefined ? [] : parseColumns(options.cursor, "cursor");
  const type: CursorType = options.cursorType ?? "timestamp";
  if (!["timestamp", "epoch-ms", "sequence"].includes(type)) {
    throw new InvalidArgumentError(`cursorType must be "timestamp", "epoch-ms" or "sequence"`, "cursorType");
  }
  const lagMs = toMs(options.safetyLag ?? (type === "sequence" ? 0 : "5s"), "safetyLag");
  const lookbackMs = toMs(options.lookback ?? 0, "lookback");
  if (type === "sequence" && (lagMs > 0 || lookbackMs > 0)) {
    throw new InvalidArgumentError(
      `a "sequence" cursor has no clock: safetyLag and lookback need cursorType "timestamp" or "epoch-ms"`,
      options.lookback ? "lookback" : "safetyLag",
    );
  }
  const select =
    options.columns === undefined
      ? "*"
      : parseColumns(options.columns, "columns")
          .map((c) => quoteName(c, driver.quote, "columns"))
          .join(", ");
  if (options.columns) {
    const missing = [...cursorColumns, ...key].filter((c) => !options.columns?.includes(c));
    if (missing.length) {
      throw new InvalidArgumentError(
        `columns must include the cursor and key columns (${missing.join(", ")})`,
        "columns",
      );
    }
  }
  const from = table ? quoteTable(table, driver.quote) : `(${options.query}) pb_src`;
  const userParams = options.params ?? [];
  const incrementalOrder = [...cursorColumns, ...key.filter((k) => !cursorColumns.includes(k))];
  const description = `${kind} ${table ? `table ${table.display}` : "query"}`;

  const single = async (text: string, params: readonly unknown[]) => {
    const rows = await driver.query(text, params);
    return rows[0]?.v;
  };

  // Sequence cursors: a value is taken at insert and becomes visible at commit, so a read must
  // not pass a value that a transaction still open may commit. An observation (clock `at`, the
  // largest visible value `max`) is safe to read up to once every transaction open now started
  // after `at`: values up to `max` were all handed out before `at`, so whoever took them has
  // ended (committed: visible; rolled back: gone). Observations are kept between runs, so a
  // pipeline run every few seconds moves on as soon as the transactions open at an earlier
  // run have ended, without waiting.
  const observations: Array<{ at: bigint; max: unknown }> = [];
  const sequenceBound = async (signal: AbortSignal): Promise<{ until: unknown } | undefined> => {
    if (!driver.observe || !driver.inFlightSince) return { until: undefined };
    const seen = await driver.observe(from, quoteName(cursorColumns[0] as string, driver.quote), userParams);
    if (seen.max !== null && seen.max !== undefined) observations.push(seen);
    if (observations.length > 1000) observations.splice(0, observations.length - 1000);
    const deadline = Date.now() + SEQUENCE_SETTLE_MS;
    for (;;) {
      const oldest = await driver.inFlightSince();
      let usable = -1;
      for (let i = observations.length - 1; i >= 0; i--) {
        const o = observations[i] as { at: bigint };
        if (oldest === null || (oldest !== "unknown" && o.at < oldest)) {
          usable = i;
          break;
        }
      }
      if (usable >= 0) {
        const [chosen] = observations.splice(0, usable + 1).slice(-1);
        observations.unshift(chosen as { at: bigint; max: unknown });
        return { until: chosen?.max };
      }
      if (Date.now() >= deadline || signal.aborted) return undefined;
      // Not more often: MariaDB's innodb_trx cache is only refreshed after 0.1 s without a read.
      await new Promise((resolve) => setTimeout(resolve, 150));
    }
  };

  /** Keyset pages from `after`, within the bounds, until a short page. */
  async function* pages(
    spec: Omit<PageSpec, "from" | "select" | "limit" | "after">,
    after: readonly unknown[] | undefined,
    request: ReadRequest,
    fixedCursor?: SourceCursor,
  ): AsyncGenerator<SourceBatch> {
    let position = after;
    const encoded =
      request.encoding !== undefined &&
      driver.encodings?.includes(request.encoding) &&
      driver.readEncoded !== undefined &&
      driver.literal !== undefined &&
      userParams.length === 0;
    for (;;) {
      if (request.signal.aborted) return;
      if (encoded) {
        const literal = (v: unknown) => (driver.literal as (value: unknown) => string)(v);
        const { text } = pageQuery(
          driver,
          { ...spec, from, select, after: position, limit: request.batchSize },
          [],
          literal,
        );
        const page = await driver.readEncoded?.(text, spec.order);
        if (!page) return;
        position = page.last;
        yield {
          rows: [],
          encoded: page.encoded,
          cursor: fixedCursor ?? { columns: [...spec.order], values: page.last },
        };
        if (page.encoded.count < request.batchSize) return;
        continue;
      }
      const { text, params } = pageQuery(
        driver,
        { ...spec, from, select, after: position, limit: request.batchSize },
        userParams,
      );
      const rows = await driver.query(text, params);
      if (rows.length === 0) return;
      const last = rows[rows.length - 1] as Row;
      position = spec.order.map((c) => cursorValue(last, c));
      yield { rows, cursor: fixedCursor ?? { columns: [...spec.order], values: position as JsonSafe[] } };
      if (rows.length < request.batchSize) return;
    }
  }

  const bounds = async (
    request: Pick<ReadRequest, "mode" | "cursor"> & { signal?: AbortSignal },
  ): Promise<{ order: readonly string[]; after: unknown[] | undefined; until?: unknown; none?: true }> => {
    if (request.mode === "full") return { order: key, after: parseCursor(request.cursor, key) };
    if (cursorColumns.length === 0) {
      throw new InvalidArgumentError(`${description}: incremental reads need cursor columns`, "cursor");
    }
    const after = parseCursor(request.cursor, incrementalOrder);
    if (type !== "sequence") {
      return { order: incrementalOrder, after, until: await single(driver.upperBoundSql(type), [lagMs]) };
    }
    const bound = await sequenceBound(request.signal ?? new AbortController().signal);
    // No value is known safe yet (a transaction open since before every observation): read
    // nothing now rather than pass a value it may still commit; a later run goes on.
    if (bound === undefined) return { order: incrementalOrder, after, none: true };
    return { order: incrementalOrder, after, until: bound.until };
  };

  return {
    description,
    ...(cursorColumns.length > 0 && type !== "sequence"
      ? { cursorTime: (cursor: SourceCursor) => cursorTimeOf(cursor, type) }
      : {}),
    capabilities: {
      modes: cursorColumns.length ? ["full", "incremental"] : ["full"],
      streaming: false,
      // A query with its own parameters cannot be inlined into a parameterless statement.
      ...(driver.encodings && userParams.length === 0 ? { encodings: driver.encodings } : {}),
    },

    async *read(request) {
      const { order, after, until, none } = await bounds(request);
      if (none) return;
      if (request.mode === "incremental" && after && lookbackMs > 0 && type !== "sequence") {
        // The lookback window: rows at or before the checkpoint whose first cursor column is
        // within `lookback` of it. The checkpoint itself does not move while re-reading them.
        const from = await single(driver.minusSql(type), [after[0], lookbackMs]);
        yield* pages(
          { order, firstFrom: from, upTo: after, firstUntil: until },
          undefined,
          request,
          request.cursor,
        );
      }
      yield* pages({ order, firstUntil: until }, after, request);
    },

    async count(request) {
      const { order, after, until, none } = await bounds(request);
      if (none) return 0;
      const { text, params } = countQuery(driver, { from, order, after, firstUntil: until }, userParams);
      return Number(await single(text, params));
    },

    close: () => driver.close(),
  };
}

type JsonSafe = string | number | boolean;

/** How long a sequence read waits for the transactions open at its observation to end. */
const SEQUENCE_SETTLE_MS = 1000;
