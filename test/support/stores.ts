/**
 * Isolated stores on the real databases for integration tests: a temporary SQLite file, or a
 * PostgreSQL schema or MariaDB database of its own (`pb_test_<random>`, dropped by `cleanup`).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import mysql2 from "mysql2/promise";
import pg from "pg";
import { mysql } from "../../src/adapters/mysql/index.js";
import { postgres } from "../../src/adapters/postgres/index.js";
import { sqlite } from "../../src/adapters/sqlite/index.js";
import type { SqlStore, SqlStoreOptions } from "../../src/store/sql-store.js";

/** A SQL string literal (the tests' own constants only). */
const quoteLiteral = (text: string) => `'${text.replaceAll("'", "''")}'`;

export interface IsolatedDatabase {
  adapter: "sqlite" | "postgres" | "mysql";
  /** A new store on this database (own connections). */
  make(options?: SqlStoreOptions): SqlStore;
  /** Config for the Store conformance suite's child process (`src/adapter/conformance/store-child.ts`). */
  config: Record<string, unknown>;
  /** The n-th placeholder in this dialect. */
  p(n: number): string;
  /** The type of a text column in a key of a test's own table (`TEXT`; MySQL needs a length). */
  keyText: string;
  cleanup(): Promise<void>;
  /** A failed statement aborts the whole transaction (PostgreSQL), or only undoes itself (SQLite). */
  statementErrorAbortsTransaction: boolean;
  /** Makes the store refuse every dead letter of `group` (a trigger that raises). */
  refuseDeadLetters(store: SqlStore, group: string): Promise<void>;
}

export function sqliteDatabase(): IsolatedDatabase {
  const dir = mkdtempSync(join(tmpdir(), "patchbay-test-"));
  // A generous busy timeout: tests race several processes on one file on a loaded 2-core machine.
  const config = { file: join(dir, "nested", "patchbay.db"), busyTimeoutMs: 30_000 };
  return {
    adapter: "sqlite",
    make: (options) => sqlite({ ...config, ...options }),
    config,
    p: () => "?",
    keyText: "TEXT",
    cleanup: () => Promise.resolve(rmSync(dir, { recursive: true, force: true })),
    statementErrorAbortsTransaction: false,
    async refuseDeadLetters(store, group) {
      await store.query(
        `CREATE TRIGGER refuse_letters BEFORE INSERT ON ${store.dialect.table("bus_dead_letters")}
         WHEN NEW.grp = ${quoteLiteral(group)} BEGIN SELECT RAISE(ABORT, 'dead letters refused'); END`,
      );
    },
  };
}

/**
 * Session defaults a database or role may carry (`ALTER DATABASE … SET`, `ALTER ROLE … SET`) that
 * change how statements behave or values are written: serializable transactions, non-standard
 * strings, another zone and date style, rounded doubles, escaped bytes.
 */
export const HOSTILE_SESSION_DEFAULTS =
  "-c default_transaction_isolation=serializable -c standard_conforming_strings=off -c TimeZone=America/New_York -c DateStyle=SQL,DMY -c IntervalStyle=sql_standard -c extra_float_digits=0 -c bytea_output=escape";

/**
 * A schema of its own; user tables land in it too, through `search_path`. `startup` adds
 * startup options to the URL (as a database's or role's defaults would apply).
 */
export function postgresDatabase(url: string, startup = ""): IsolatedDatabase {
  const schema = `pb_test_${randomBytes(6).toString("hex")}`;
  const u = new URL(url);
  u.searchParams.set("options", `-c search_path=${schema} ${startup}`.trim());
  const config = { url: u.toString(), schema, max: 4 };
  return {
    adapter: "postgres",
    make: (options) => postgres({ ...config, ...options }),
    config,
    p: (n) => `$${n}`,
    keyText: "TEXT",
    statementErrorAbortsTransaction: true,
    async refuseDeadLetters(store, group) {
      await store.query(
        `CREATE FUNCTION refuse_letters() RETURNS trigger LANGUAGE plpgsql AS
         $$ BEGIN IF NEW.grp = ${quoteLiteral(group)} THEN RAISE EXCEPTION 'dead letters refused'; END IF; RETURN NEW; END $$`,
      );
      await store.query(
        `CREATE TRIGGER refuse_letters BEFORE INSERT ON ${store.dialect.table("bus_dead_letters")}
         FOR EACH ROW EXECUTE FUNCTION refuse_letters()`,
      );
    },
    async cleanup() {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      } finally {
        await client.end();
      }
    },
  };
}

/** A database of its own on the MariaDB/MySQL server, made on first use; user tables land in it too. */
export function mysqlDatabase(url: string): IsolatedDatabase & { create(): Promise<unknown> } {
  const database = `pb_test_${randomBytes(6).toString("hex")}`;
  const u = new URL(url);
  u.pathname = `/${database}`;
  const config = { url: u.toString(), max: 4 };
  const admin = async <T>(fn: (c: mysql2.Connection) => Promise<T>): Promise<T> => {
    const c = await mysql2.createConnection({ uri: url });
    try {
      return await fn(c);
    } finally {
      await c.end();
    }
  };
  let created: Promise<unknown> | undefined;
  const create = () =>
    (created ??= admin((c) =>
      c.query(`CREATE DATABASE IF NOT EXISTS \`${database}\` CHARACTER SET utf8mb4`),
    ));
  return {
    adapter: "mysql",
    make: (options) => {
      const store = mysql({ ...config, ...options });
      const open = store.open.bind(store);
      // The database exists before the store first connects (whichever call opens it).
      return Object.assign(store, {
        open: async () => {
          await create();
          return open();
        },
      });
    },
    create,
    config,
    p: () => "?",
    keyText: "VARCHAR(255)",
    async cleanup() {
      await admin((c) => c.query(`DROP DATABASE IF EXISTS \`${database}\``));
    },
    statementErrorAbortsTransaction: false,
    async refuseDeadLetters(store, group) {
      await store.query(
        `CREATE TRIGGER refuse_letters BEFORE INSERT ON ${store.dialect.table("bus_dead_letters")}
         FOR EACH ROW BEGIN
           IF NEW.grp = ${quoteLiteral(group)} THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'dead letters refused'; END IF;
         END`,
      );
    },
  };
}
