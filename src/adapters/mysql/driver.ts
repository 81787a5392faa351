import { InvalidArgumentError } from "../../core/errors.js";
import type {
  QueryOptions,
  QueryResult,
  StoreCapabilities,
  TransactionOptions,
} from "../../store/contracts.js";
import type { SqlDialect } from "../../store/dialect.js";
import { StoreQueryError, StoreUnavailableError, TransactionRolledBackError } from "../../store/errors.js";
import type { MigrationTx } from "../../store/migrations.js";
import { runFirstAndLast, type StoreDriver } from "../../store/sql-store.js";
import { run as runOn, SET_SESSION } from "./connection.js";
import { toStoreError } from "./errors.js";
import {
  loadMysql,
  type MysqlPoolConnection,
  type MysqlPoolLike,
  type MysqlQueryable,
  type MysqlResultHeader,
} from "./load.js";
import { mysqlMigrations, NO_PAD_COLLATIONS, statements, tableOptions } from "./migrations.js";
import { mysqlRoles } from "./roles.js";

/** Options of the MariaDB/MySQL store. */
export interface MysqlDriverOptions {
  /** `mysql://user:pass@host:3306/database`. Default `PATCHBAY_MYSQL_URL`. */
  url?: string;
  /** Prefix of Patchbay's table names in the database. Default `patchbay_`. */
  tablePrefix?: string;
  /** Pool size. Default 10. */
  max?: number;
}

const CAPABILITIES: StoreCapabilities = {
  dialect: "mysql",
  concurrentWriters: true,
  skipLocked: true,
  notifications: false,
};

const ISOLATION: Record<NonNullable<TransactionOptions["isolation"]>, string> = {
  "read committed": "READ COMMITTED",
  "repeatable read": "REPEATABLE READ",
  serializable: "SERIALIZABLE",
};

/**
 * Every session of the store's pool: READ COMMITTED (InnoDB's default, REPEATABLE READ, would
 * make a claim's `SKIP LOCKED` read take gap locks, and a transaction see the rows of its first
 * read only), and the settings every Patchbay session pins (`SESSION_SETTINGS` in connection.ts: UTC, strict,
 * no mode that changes what a statement means, autocommit, UTF-8).
 */
const SESSION = ["SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED", SET_SESSION];

/** Errors after which InnoDB has rolled back the whole transaction, not only the statement. */
const DEADLOCK = 1213;
const LOCK_WAIT_TIMEOUT = 1205;

const DATABASE = "MariaDB/MySQL";

/** One statement; errors carry the SQLSTATE, as the other stores' do. */
const run = <Row>(on: MysqlQueryable, text: string, params: readonly unknown[] = []) =>
  runOn<Row>(on, text, params, {}, true);

/**
 * `INSERT IGNORE` skips a duplicate key, which is what Patchbay uses it for, but it also stores a
 * value too long for its column cut short, with only a warning, strict mode or not: a 300-character
 * message id kept as its first 255 would make a second message of the same first 255 a duplicate,
 * dropped though its publish succeeded. These statements run on a transaction's connection and
 * their warnings are read: any but a duplicate key refuses the statement and its transaction.
 */
const INSERT_IGNORE = /^\s*INSERT\s+IGNORE\b/i;
/** `ER_DUP_ENTRY`: the row `INSERT IGNORE` is meant to skip. */
const DUPLICATE_KEY = 1062;

/** Runs an `INSERT IGNORE` on `conn`; rejects when it raised a warning other than a duplicate key. */
async function runIgnoringDuplicates<Row>(
  conn: MysqlQueryable,
  text: string,
  params: readonly unknown[],
): Promise<QueryResult<Row>> {
  let result: unknown;
  try {
    [result] = await conn.query({ sql: text, values: params as unknown[] });
  } catch (e) {
    throw toStoreError(e, text, true);
  }
  // A result set (`RETURNING`) does not say how many warnings there were: they are read.
  const rows = Array.isArray(result);
  if (rows || ((result as MysqlResultHeader).warningStatus ?? 0) > 0) {
    const { rows: warnings } = await run<{ Code: unknown; Message: unknown }>(conn, "SHOW WARNINGS");
    const other = warnings.find((w) => Number(w.Code) !== DUPLICATE_KEY);
    if (other) {
      const first = text.trim().split("\n")[0]?.slice(0, 120) ?? "";
      throw new StoreQueryError(
        `MySQL: ${String(other.Message)} (in: ${first})`,
        Number(other.Code) === 1406 || Number(other.Code) === 1265 ? "22001" : "HY000",
      );
    }
  }
  return rows
    ? { rows: result as Row[], rowCount: (result as Row[]).length }
    : { rows: [], rowCount: (result as MysqlResultHeader).affectedRows };
}

/** host:port/database, never the password. */
function describe(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || "3306"}${u.pathname}`;
  } catch {
    throw new InvalidArgumentError("url is not a valid mysql:// URL", "url");
  }
}

/** The `mysql2` {@link StoreDriver}. */
export function mysqlDriver(options: MysqlDriverOptions = {}): StoreDriver {
  const url = options.url ?? process.env.PATCHBAY_MYSQL_URL;
  if (!url) {
    throw new InvalidArgumentError("give url (mysql://user@host:3306/db) or set PATCHBAY_MYSQL_URL", "url");
  }
  const prefix = options.tablePrefix ?? "patchbay_";
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,20}$/.test(prefix) && prefix !== "") {
    throw new InvalidArgumentError(
      "tablePrefix must be letters, digits and _ (at most 21), starting with a letter or _",
      "tablePrefix",
    );
  }
  const location = `${describe(url)}#${prefix}`;
  // The tables' collation: the server's first of NO_PAD_COLLATIONS, read when connecting.
  let collation = "utf8mb4_bin";
  const migrationsFor = (c: string) =>
    mysqlMigrations.map((m) => ({
      ...m,
      sql: m.sql.replaceAll("{{t}}", prefix).replaceAll("{{options}}", tableOptions(c)),
    }));
  let pool: MysqlPoolLike | undefined;
  /**
   * The pool of atomic scripts (`atomicScript`: Patchbay's own multi-statement text, a saga
   * step's outcome), made on first use: its connections accept several statements in one query,
   * so it never runs anything else — on the main pool a stacked `; DROP …` in a caller's badly
   * built SQL stays one statement's error.
   */
  let scripts: MysqlPoolLike | undefined;
  let makePool: ((multipleStatements: boolean) => MysqlPoolLike) | undefined;
  // Whether a lock wait timeout rolls back the whole transaction (`innodb_rollback_on_timeout`).
  let timeoutRollsBack = false;

  const dialect: SqlDialect = {
    name: "mysql",
    placeholders: "question",
    roles: mysqlRoles,
    table: (name) => `\`${prefix}${name}\``,
    quote: (name) => `\`${name}\``,
    encodeJson: (value) => JSON.stringify(value),
    decodeJson: (raw) => (typeof raw === "string" ? (JSON.parse(raw) as unknown) : raw),
  };

  const ready = (): MysqlPoolLike => {
    if (!pool) throw new StoreUnavailableError(`the MariaDB/MySQL store at ${location} is not connected`);
    return pool;
  };
  const checkout = async (): Promise<MysqlPoolConnection> => {
    try {
      return await ready().getConnection();
    } catch (e) {
      throw new StoreUnavailableError(
        `cannot connect to MariaDB/MySQL at ${location}: ${(e as Error).message}`,
        {
          cause: e,
        },
      );
    }
  };

  /**
   * Runs `fn` in a transaction on `conn`. A deadlock (and, with `innodb_rollback_on_timeout`, a
   * lock wait timeout) rolls the whole transaction back on the server, and later statements
   * would each commit on their own: after one, every statement and the commit are refused.
   */
  const inTransaction = async <T>(
    conn: MysqlPoolConnection,
    fn: (tx: MigrationTx) => Promise<T>,
    isolation: TransactionOptions["isolation"],
    onBroken: () => void,
  ): Promise<T> => {
    let rolledBack: unknown;
    const statement = async <Row>(text: string, params: readonly unknown[]): Promise<QueryResult<Row>> => {
      if (!INSERT_IGNORE.test(text)) return run<Row>(conn, text, params);
      try {
        return await runIgnoringDuplicates<Row>(conn, text, params);
      } catch (e) {
        // What it wrote cut short stays in the transaction: none of it may commit.
        if (!(e as { cause?: unknown }).cause) rolledBack ??= e;
        throw e;
      }
    };
    const note = (e: unknown) => {
      const errno = ((e as { cause?: { errno?: unknown } }).cause ?? {}).errno;
      const lost = isConnectionLost(e); // the server rolls back a disconnected session's transaction
      if (lost || errno === DEADLOCK || (errno === LOCK_WAIT_TIMEOUT && timeoutRollsBack)) rolledBack ??= e;
      return e;
    };
    const guard = <R>(work: () => Promise<R>): Promise<R> =>
      rolledBack !== undefined
        ? Promise.reject(TransactionRolledBackError.after(DATABASE, rolledBack))
        : work().catch((e: unknown) => {
            throw note(e);
          });
    const tx: MigrationTx = {
      query: <Row>(text: string, params: readonly unknown[] = []) =>
        guard(() => statement<Row>(text, params)),
      exec: (ddl: string) =>
        guard(async () => {
          for (const statement of statements(ddl)) await run(conn, statement);
        }),
    };
    if (isolation && isolation !== "read committed") {
      await run(conn, `SET TRANSACTION ISOLATION LEVEL ${ISOLATION[isolation]}`);
    }
    await run(conn, "START TRANSACTION");
    try {
      const result = await fn(tx);
      if (rolledBack !== undefined) throw TransactionRolledBackError.after(DATABASE, rolledBack);
      try {
        await conn.query("COMMIT");
      } catch (e) {
        // The server answered: it did not commit (and has rolled back). No answer: unknown, and
        // the connection is dropped below.
        if (
          typeof (e as { errno?: unknown }).errno === "number" &&
          (e as { fatal?: unknown }).fatal !== true
        ) {
          throw TransactionRolledBackError.after(DATABASE, toStoreError(e, "COMMIT", true));
        }
        throw toStoreError(e, "COMMIT", true);
      }
      return result;
    } catch (e) {
      await conn.query("ROLLBACK").catch(onBroken);
      throw e;
    }
  };

  /** A pooled connection for `use`; dropped instead of reused when its state is unknown. */
  const withConnection = async <T>(
    use: (conn: MysqlPoolConnection, onBroken: () => void) => Promise<T>,
    from: () => Promise<MysqlPoolConnection> = checkout,
  ): Promise<T> => {
    const conn = await from();
    let broken = false;
    try {
      return await use(conn, () => (broken = true));
    } catch (e) {
      if (isConnectionLost(e)) broken = true;
      throw e;
    } finally {
      if (broken) conn.destroy();
      else conn.release();
    }
  };

  const scriptCheckout = async (): Promise<MysqlPoolConnection> => {
    ready();
    if (!makePool) throw new StoreUnavailableError(`the MariaDB/MySQL store at ${location} is not connected`);
    scripts ??= makePool(true);
    try {
      return await scripts.getConnection();
    } catch (e) {
      throw new StoreUnavailableError(
        `cannot connect to MariaDB/MySQL at ${location}: ${(e as Error).message}`,
        { cause: e },
      );
    }
  };

  /**
   * Runs `text` (statements each ending `;` at the end of a line) as one transaction in one
   * round trip; `rowCount` is the first statement's. The server stops at a failing statement,
   * inside the transaction (or with it rolled back, after a deadlock): ROLLBACK undoes what ran
   * before it, and a connection that cannot is dropped (the server rolls back a closed session's
   * transaction).
   */
  const script = <Row>(text: string, params: readonly unknown[]): Promise<QueryResult<Row>> =>
    withConnection(async (conn, onBroken) => {
      let results: unknown;
      try {
        [results] = await conn.query({
          sql: `START TRANSACTION;\n${text}\nCOMMIT`,
          values: params as unknown[],
        });
      } catch (e) {
        await conn.query("ROLLBACK").catch(onBroken);
        throw toStoreError(e, text, true);
      }
      const first = Array.isArray(results) ? (results as unknown[])[1] : undefined;
      return { rows: [], rowCount: (first as MysqlResultHeader | undefined)?.affectedRows ?? 0 };
    }, scriptCheckout);

  return {
    dialect,
    capabilities: CAPABILITIES,
    get migrations() {
      return migrationsFor(collation);
    },
    location,
    resource: Symbol(`mysql ${location}`),

    async connect() {
      if (pool) return;
      const mysql = await loadMysql();
      const make = (multipleStatements: boolean) => {
        const made = mysql.createPool({
          uri: url,
          connectionLimit: options.max ?? 10,
          charset: "UTF8MB4_BIN",
          supportBigNumbers: true,
          bigNumberStrings: false,
          decimalNumbers: true,
          jsonStrings: true,
          dateStrings: true,
          multipleStatements,
          // No stack captured for every query (mysql2's `trace`, ~3 % of a saga's CPU here): a
          // failure is a StoreQueryError with its own stack, the driver's error as its cause.
          trace: false,
        });
        // Queued on each new connection before anything else is sent on it.
        made.pool.on("connection", (c) => {
          for (const statement of SESSION) {
            c.query(statement, (e: Error | null) => {
              if (e) c.destroy();
            });
          }
        });
        return made;
      };
      const created = make(false);
      try {
        const conn = await created.getConnection();
        try {
          const [rows] = await conn.query("SELECT @@innodb_rollback_on_timeout AS r");
          timeoutRollsBack = Number((rows as Array<{ r: unknown }>)[0]?.r) === 1;
          const [found] = await conn.query({
            sql: "SELECT COLLATION_NAME AS c FROM information_schema.COLLATIONS WHERE COLLATION_NAME IN (?)",
            values: [[...NO_PAD_COLLATIONS]],
          });
          const names = new Set((found as Array<{ c: unknown }>).map((r) => String(r.c)));
          collation = NO_PAD_COLLATIONS.find((c) => names.has(c)) ?? "utf8mb4_bin";
        } finally {
          conn.release();
        }
      } catch (e) {
        await created.end().catch(() => undefined);
        throw new StoreUnavailableError(
          `cannot connect to MariaDB/MySQL at ${location}: ${(e as Error).message}`,
          {
            cause: e,
          },
        );
      }
      pool = created;
      makePool = make;
    },

    async disconnect() {
      const p = pool;
      const q = scripts;
      pool = undefined;
      scripts = undefined;
      makePool = undefined;
      await Promise.all([p?.end(), q?.end()]);
    },

    query: <Row>(
      text: string,
      params: readonly unknown[],
      queryOptions?: QueryOptions,
    ): Promise<QueryResult<Row>> => {
      // A statement outside a transaction that InnoDB picks as a deadlock's victim is rolled back
      // whole, so it runs again (a few times): two processes pausing and resuming one group at
      // once, say, must not see a deadlock. An INSERT IGNORE runs in a transaction of its own, so
      // a value cut short is undone; its duplicate's shared lock is then held until the COMMIT,
      // another way to meet a racing DELETE or INSERT of that row in a deadlock.
      const once = (): Promise<QueryResult<Row>> =>
        queryOptions?.atomicScript
          ? script<Row>(text, params)
          : INSERT_IGNORE.test(text)
            ? withConnection((conn, onBroken) =>
                inTransaction(conn, (tx) => tx.query<Row>(text, params), undefined, onBroken),
              )
            : run<Row>(ready(), text, params);
      const attempt = async (left: number): Promise<QueryResult<Row>> => {
        try {
          return await once();
        } catch (e) {
          const errno = ((e as { cause?: { errno?: unknown } }).cause ?? {}).errno;
          if (left > 0 && errno === DEADLOCK) return attempt(left - 1);
          throw e;
        }
      };
      return attempt(5);
    },

    transaction: (fn, txOptions) =>
      withConnection((conn, onBroken) =>
        inTransaction(
          conn,
          (tx) => runFirstAndLast(tx, dialect, txOptions, fn),
          txOptions.isolation,
          onBroken,
        ),
      ),

    withMigrationLock: (fn) =>
      withConnection(async (conn, onBroken) => {
        // GET_LOCK is the server's, held by this session: one migrating process per database and
        // prefix at a time. DDL commits on its own in MySQL, so it is the lock, not the
        // transaction, that keeps two processes from applying one migration twice.
        const name = "CONCAT('pb.migrate.', LEFT(SHA1(CONCAT(DATABASE(), '/', ?)), 40))";
        const { rows } = await run<{ got: unknown }>(conn, `SELECT GET_LOCK(${name}, 600) AS got`, [prefix]);
        if (Number(rows[0]?.got) !== 1) {
          throw new StoreUnavailableError(`timed out waiting for the migration lock at ${location}`);
        }
        try {
          await run(
            conn,
            `CREATE TABLE IF NOT EXISTS \`${prefix}migrations\` (version INT NOT NULL PRIMARY KEY, name VARCHAR(255) NOT NULL, applied_at BIGINT NOT NULL) ${tableOptions(collation)}`,
          );
          return await inTransaction(conn, fn, undefined, onBroken);
        } finally {
          await run(conn, `SELECT RELEASE_LOCK(${name})`, [prefix]).catch(() => undefined);
        }
      }),
  };
}

/** The connection itself failed (not one statement): it must not go back to the pool. */
function isConnectionLost(e: unknown): boolean {
  const cause = (e as { cause?: { fatal?: unknown } }).cause;
  return cause?.fatal === true || (e as { fatal?: unknown }).fatal === true;
}
