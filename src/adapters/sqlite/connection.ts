import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { DatabaseSync, StatementSync } from "node:sqlite";
import type { QueryResult } from "../../store/contracts.js";
import { StoreUnavailableError } from "../../store/errors.js";
import { sqliteCode, toStoreError } from "./errors.js";
import { setField } from "../../core/fields.js";

/**
 * A FIFO lock. `node:sqlite` has one synchronous connection; while an async transaction is
 * open on it, any other statement would silently join that transaction — so everything waits.
 */
class Mutex {
  private tail: Promise<void> = Promise.resolve();
  async run<T>(fn: () => Promise<T> | T): Promise<T> {
    const previous = this.tail;
    let release!: () => void;
    this.tail = new Promise<void>((r) => (release = r));
    await previous;
    try {
      return await fn();
    } finally {
      release();
    }
  }
}

/** `node:sqlite` binds numbers, strings, bigints, byte arrays and null; map the rest the way users expect. */
function bindable(value: unknown): unknown {
  if (value === undefined) return null;
  if (typeof value === "boolean") return value ? 1 : 0;
  if (value instanceof Date) return value.toISOString();
  return value;
}

const isBusy = (e: unknown) => /^SQLITE_BUSY/.test(sqliteCode(e) ?? "");

/** One statement, prepared once, and whether it returns rows (a SELECT, or anything with RETURNING). */
interface Prepared {
  statement: StatementSync;
  returnsRows: boolean;
}

/**
 * A row as users expect it: a plain object, integers as numbers where that is exact and as
 * bigints where it is not (statements read every integer as a bigint, so a value above 2^53 is
 * never rounded), blobs as Buffers.
 */
function normalize(row: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key in row) {
    const value = row[key];
    if (typeof value === "bigint") {
      setField(out, key, value <= MAX_SAFE && value >= MIN_SAFE ? Number(value) : value);
    } else if (value instanceof Uint8Array) {
      setField(out, key, Buffer.from(value.buffer, value.byteOffset, value.byteLength));
    } else {
      setField(out, key, value);
    }
  }
  return out;
}
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER);

/**
 * One SQLite connection, shared by every store on the same file in this process.
 *
 * Why shared: `node:sqlite` is synchronous, so a second connection in the same process waiting
 * for the write lock would block the event loop that the lock holder needs to commit — a
 * deadlock until the busy timeout. One connection plus a FIFO lock serializes writers instead.
 * Other processes are waited for without blocking: the driver's busy handler is kept short and
 * `SQLITE_BUSY` is retried asynchronously until `busyTimeoutMs`.
 */
export class SqliteConnection {
  readonly lock = new Mutex();
  private db: DatabaseSync | undefined;
  private readonly statements = new Map<string, Prepared>();
  refs = 0;

  constructor(
    readonly path: string,
    private readonly settings: { busyTimeoutMs: number; synchronous: "full" | "normal" },
  ) {}

  /**
   * Opens the file (once) and sets WAL, synchronous and foreign keys. `node:sqlite` is loaded
   * here, not at import, so `patchbay` imports on a Node.js without it and says what to upgrade.
   */
  async open(): Promise<void> {
    if (this.db) return;
    let Driver: typeof DatabaseSync;
    try {
      Driver = (await import("node:sqlite")).DatabaseSync;
      if (typeof Driver.prototype.prepare !== "function") throw new Error("node:sqlite has no DatabaseSync");
    } catch (cause) {
      throw new StoreUnavailableError(
        `the SQLite store needs Node.js 22.16 or newer (its built-in node:sqlite); this is ${process.version}`,
        { cause, retryable: false },
      );
    }
    if (this.db) return;
    try {
      if (this.path !== ":memory:") mkdirSync(dirname(this.path), { recursive: true });
      // A short busy handler: waits longer than this happen asynchronously (executeWaiting).
      const db = new Driver(this.path, { timeout: 20 });
      // Switching to WAL needs a moment of exclusive access: another process opening or writing
      // the same file makes it SQLITE_BUSY. Wait for it without blocking the event loop.
      const deadline = Date.now() + this.settings.busyTimeoutMs;
      for (let pause = 5; ; pause = Math.min(pause * 2, 100)) {
        try {
          db.exec("PRAGMA journal_mode = WAL");
          break;
        } catch (e) {
          if (!isBusy(e) || Date.now() >= deadline) {
            db.close();
            throw e;
          }
          await sleep(pause * (0.5 + Math.random()));
        }
      }
      db.exec(`PRAGMA synchronous = ${this.settings.synchronous === "normal" ? "NORMAL" : "FULL"}`);
      db.exec("PRAGMA foreign_keys = ON");
      this.db = db;
    } catch (e) {
      throw new StoreUnavailableError(`cannot open SQLite database ${this.path}: ${(e as Error).message}`, {
        cause: e,
        retryable: false,
      });
    }
  }

  close(): void {
    this.statements.clear();
    this.db?.close();
    this.db = undefined;
  }

  get inTransaction(): boolean {
    return this.db?.isTransaction ?? false;
  }

  private conn(): DatabaseSync {
    if (!this.db) throw new StoreUnavailableError("SQLite database is not open");
    return this.db;
  }

  /** Runs one statement now (the caller holds the lock). */
  execute<Row>(text: string, params: readonly unknown[]): QueryResult<Row> {
    try {
      let prepared = this.statements.get(text);
      if (!prepared) {
        const statement = this.conn().prepare(text);
        statement.setReadBigInts(true);
        prepared = { statement, returnsRows: statement.columns().length > 0 };
        if (this.statements.size >= 500)
          this.statements.delete(this.statements.keys().next().value as string);
        this.statements.set(text, prepared);
      }
      const bound = params.map(bindable) as Parameters<StatementSync["run"]>;
      if (prepared.returnsRows) {
        const rows = prepared.statement.all(...bound).map(normalize) as Row[];
        return { rows, rowCount: rows.length };
      }
      const info = prepared.statement.run(...bound);
      return { rows: [], rowCount: Number(info.changes) };
    } catch (e) {
      throw toStoreError(e, text);
    }
  }

  /** Runs multi-statement SQL (DDL) now (the caller holds the lock). */
  exec(ddl: string): void {
    try {
      this.conn().exec(ddl);
      this.statements.clear();
    } catch (e) {
      throw toStoreError(e, ddl);
    }
  }

  /**
   * Runs a statement that may meet another process's write lock, retrying `SQLITE_BUSY` without
   * blocking the event loop. Safe because a busy statement has not been applied.
   */
  async executeWaiting<Row>(text: string, params: readonly unknown[]): Promise<QueryResult<Row>> {
    const deadline = Date.now() + this.settings.busyTimeoutMs;
    for (let pause = 2; ; pause = Math.min(pause * 2, 50)) {
      try {
        return this.execute<Row>(text, params);
      } catch (e) {
        if (!isBusy((e as Error).cause) || Date.now() >= deadline) throw e;
        await sleep(pause * (0.5 + Math.random()));
      }
    }
  }
}

const shared = new Map<string, SqliteConnection>();

/** The connection for `path` in this process (a new private one for `:memory:`); counted. */
export function acquireConnection(
  path: string,
  settings: { busyTimeoutMs: number; synchronous: "full" | "normal" },
): SqliteConnection {
  let connection = path === ":memory:" ? undefined : shared.get(path);
  if (!connection) {
    connection = new SqliteConnection(path, settings);
    if (path !== ":memory:") shared.set(path, connection);
  }
  connection.refs++;
  return connection;
}

/** Drops one reference; closes the file when the last store let go. */
export function releaseConnection(connection: SqliteConnection): void {
  connection.refs--;
  if (connection.refs > 0) return;
  connection.close();
  if (shared.get(connection.path) === connection) shared.delete(connection.path);
}
