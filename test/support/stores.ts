/**
 * Isolated stores on the real databases for integration tests: a temporary SQLite file, or a
 * PostgreSQL schema of its own (`pb_test_<random>`, dropped by `cleanup`).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { postgres } from "../../src/adapters/postgres/index.js";
import { sqlite } from "../../src/adapters/sqlite/index.js";
import type { SqlStore, SqlStoreOptions } from "../../src/store/sql-store.js";

/** A SQL string literal (the tests' own constants only). */
const quoteLiteral = (text: string) => `'${text.replaceAll("'", "''")}'`;

export interface IsolatedDatabase {
  adapter: "sqlite" | "postgres";
  /** A new store on this database (own connections). */
  make(options?: SqlStoreOptions): SqlStore;
  /** Config for the Store conformance suite's child process (`src/adapter/conformance/store-child.ts`). */
  config: Record<string, unknown>;
  /** The n-th placeholder in this dialect. */
  p(n: number): string;
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
