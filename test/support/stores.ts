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
  };
}

/** A schema of its own; user tables land in it too, through `search_path`. */
export function postgresDatabase(url: string): IsolatedDatabase {
  const schema = `pb_test_${randomBytes(6).toString("hex")}`;
  const u = new URL(url);
  u.searchParams.set("options", `-c search_path=${schema}`);
  const config = { url: u.toString(), schema, max: 4 };
  return {
    adapter: "postgres",
    make: (options) => postgres({ ...config, ...options }),
    config,
    p: (n) => `$${n}`,
    keyText: "TEXT",
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
  };
}
