import { fileURLToPath } from "node:url";
import { createHash } from "node:crypto";
import pg from "pg";
import { describe, expect, inject, it } from "vitest";
import { postgres, type PostgresStoreOptions } from "../src/adapters/postgres/index.js";
import type { StoreTx } from "../src/store/contracts.js";
import { sql } from "../src/store/sql.js";
import { runLast, type SqlStore } from "../src/store/sql-store.js";
import { defineStoreConformance } from "./conformance/store.js";
import { HOSTILE_SESSION_DEFAULTS, postgresDatabase } from "./support/stores.js";

const { postgres: service } = inject("services");
const md5 = (text: string) => createHash("md5").update(text).digest("hex");

if (!service.reachable) {
  describe("Store conformance: PostgreSQL", () => {
    it.skip(`skipped: PostgreSQL unreachable at ${service.where} (${service.error}); set PATCHBAY_PG_URL`, () => {});
  });
} else {
  defineStoreConformance({
    name: `PostgreSQL (pg, ${service.where}, own schema per test)`,
    fresh: () => Promise.resolve(postgresDatabase(service.url)),
    statementErrorAbortsTransaction: true,
    child: {
      module: fileURLToPath(new URL("../src/adapters/postgres/index.ts", import.meta.url)),
      export: "postgres",
    },
  });

  // The same suite with the session defaults a database or role may carry: the store's own
  // sessions must not depend on them (under a serializable default, four processes migrating at
  // once applied a migration twice).
  defineStoreConformance({
    name: `PostgreSQL with hostile session defaults (serializable, non-standard strings, New York, SQL dates)`,
    fresh: () => Promise.resolve(postgresDatabase(service.url, HOSTILE_SESSION_DEFAULTS)),
    statementErrorAbortsTransaction: true,
    child: {
      module: fileURLToPath(new URL("../src/adapters/postgres/index.ts", import.meta.url)),
      export: "postgres",
    },
  });

  describe("prepared statements on PostgreSQL (the prepare hint)", () => {
    const prepared = `SELECT name, statement FROM pg_prepared_statements WHERE statement LIKE 'SELECT $1::int%'`;
    /** A statement with the prepare hint runs right and leaves no prepared statement behind. */
    const expectNothingPrepared = async (store: SqlStore) => {
      const seen = await store.transaction(async (tx) => {
        const { rows } = await tx.query<{ n: number }>("SELECT $1::int + 1 AS n", [41], { prepare: true });
        expect(rows[0]?.n).toBe(42);
        return (await tx.query(prepared)).rows;
      });
      expect(seen).toEqual([]);
    };

    it("keeps a statement prepared on its connection, one name per text, with right results", async () => {
      const db = postgresDatabase(service.url);
      const store = db.make();
      try {
        await store.open();
        // Many runs on every connection of the pool, two texts side by side: no name clash.
        const results = await Promise.all(
          Array.from({ length: 40 }, (_, i) =>
            i % 2 === 0
              ? store.query<{ n: number }>("SELECT $1::int + 1 AS n", [i], { prepare: true })
              : store.query<{ n: number }>("SELECT $1::int * 2 AS n", [i], { prepare: true }),
          ),
        );
        expect(results.map((r) => r.rows[0]?.n)).toEqual(
          Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? i + 1 : i * 2)),
        );
        const seen = await store.transaction(async (tx) => {
          await tx.query("SELECT $1::int + 1 AS n", [1], { prepare: true });
          await tx.query("SELECT $1::int * 2 AS n", [1], { prepare: true });
          return (await tx.query<{ name: string; statement: string }>(prepared)).rows;
        });
        expect(seen.map((r) => r.statement).sort()).toEqual([
          "SELECT $1::int * 2 AS n",
          "SELECT $1::int + 1 AS n",
        ]);
        expect(new Set(seen.map((r) => r.name)).size).toBe(2);
      } finally {
        await store.close();
        await db.cleanup();
      }
    });

    it("plans a prepared statement for the table as it is now, not as it was at its first runs", async () => {
      const db = postgresDatabase(service.url); // its URL sets search_path through `options`
      const store = db.make();
      try {
        await store.open();
        const lookup = "SELECT v FROM plan_probe WHERE id = ANY($1::text[])";
        const scans = async (tx: StoreTx) =>
          (
            await tx.query<{ seq: string; idx: string }>(
              `SELECT seq_scan AS seq, coalesce(idx_scan, 0) AS idx FROM pg_stat_xact_user_tables WHERE relname = 'plan_probe'`,
            )
          ).rows[0];
        const { before, after, settings } = await store.transaction(async (tx) => {
          await tx.query("CREATE TABLE plan_probe (id text PRIMARY KEY, v int NOT NULL)");
          await tx.query("INSERT INTO plan_probe SELECT md5(i::text), i FROM generate_series(1, 200) AS i");
          await tx.query("ANALYZE plan_probe");
          // Small and analysed: a scan is its best plan. A generic plan made now would be kept.
          for (let i = 0; i < 10; i++) await tx.query(lookup, [["a", "b", "c"]], { prepare: true });
          await tx.query(
            "INSERT INTO plan_probe SELECT md5(i::text), i FROM generate_series(201, 60000) AS i",
          );
          const before = await scans(tx);
          const { rows } = await tx.query<{ v: number }>(lookup, [[md5("7"), md5("59999")]], {
            prepare: true,
          });
          expect(rows.map((r) => r.v).sort((a, b) => a - b)).toEqual([7, 59999]);
          const settings = await tx.query<{ p: string; s: string }>(
            "SELECT current_setting('plan_cache_mode') AS p, current_setting('search_path') AS s",
          );
          return { before, after: await scans(tx), settings: settings.rows[0] };
        });
        // The grown table was probed through its index, not read whole.
        expect(Number(after?.seq)).toBe(Number(before?.seq));
        expect(Number(after?.idx)).toBeGreaterThan(Number(before?.idx));
        // The URL's own startup options are kept beside the store's.
        expect(settings).toEqual({ p: "force_custom_plan", s: db.config.schema });
      } finally {
        await store.close();
        await db.cleanup();
      }
    });

    it("names no statements on an app's own pool by default (its sessions are not the store's to configure)", async () => {
      const db = postgresDatabase(service.url);
      const pool = new pg.Pool({ connectionString: String(db.config.url), max: 2 });
      const store = postgres({ pool, schema: String(db.config.schema) });
      try {
        await expectNothingPrepared(store);
      } finally {
        await store.close();
        await pool.end();
        await db.cleanup();
      }
    });

    /** Array elements that need escaping in an array literal, and the word NULL as text. */
    const TAGS = ['a"b', "c\\d", "e,f", "{g}", "NULL", "", "it's"];

    /**
     * An open store on a one-connection pool that records what it sends, statement by statement
     * (from after its `tagged` table was made), and reads back what a test wrote there.
     */
    async function spiedStore() {
      const db = postgresDatabase(service.url);
      const pool = new pg.Pool({ connectionString: String(db.config.url), max: 1 });
      const sent: string[] = [];
      const spied = new WeakSet<pg.PoolClient>();
      pool.on("acquire", (client) => {
        if (spied.has(client)) return;
        spied.add(client);
        const query = client.query.bind(client) as (...args: unknown[]) => unknown;
        (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args) => {
          const first = args[0] as string | { text: string };
          sent.push(typeof first === "string" ? first : first.text);
          return query(...args);
        };
      });
      const store = postgres({ pool, schema: String(db.config.schema) });
      const cleanup = async () => {
        await store.close();
        await pool.end();
        await db.cleanup();
      };
      try {
        await store.open();
        await store.query("CREATE TABLE tagged (id text PRIMARY KEY, tags text[], raw bytea)");
      } catch (e) {
        await cleanup();
        throw e;
      }
      sent.length = 0;
      const tagsOf = async (id: string) =>
        (await store.query<{ tags: string[] }>("SELECT tags FROM tagged WHERE id = $1", [id])).rows[0]?.tags;
      const bytesOf = async (id: string) => [
        ...((await store.query<{ raw: Buffer }>("SELECT raw FROM tagged WHERE id = $1", [id])).rows[0]?.raw ??
          []),
      ];
      return { store, sent, cleanup, tagsOf, bytesOf };
    }

    it("sends a lazy transaction's first statement with BEGIN (one round trip fewer), values exact", async () => {
      const { store, sent, cleanup, tagsOf, bytesOf } = await spiedStore();
      try {
        const checked: unknown[] = [];
        await store.lazyTransaction(
          async (tx) => void (await tx.query("UPDATE tagged SET raw = NULL WHERE id = $1", ["x"])),
          {
            first: {
              statement: sql`INSERT INTO tagged (id, tags) VALUES (${"x"}, ${TAGS}::text[]) RETURNING id`,
              check: (rows) => void checked.push(...rows.map((r) => r.id)),
            },
          },
        );
        expect(sent).toEqual([
          expect.stringMatching(
            /^BEGIN ISOLATION LEVEL READ COMMITTED; INSERT INTO tagged \(id, tags\) VALUES \('x', /,
          ),
          "UPDATE tagged SET raw = NULL WHERE id = $1",
          "COMMIT",
        ]);
        expect(checked).toEqual(["x"]);
        expect(await tagsOf("x")).toEqual(TAGS);

        // A value that cannot be a literal (bytes): the first statement goes on its own, as a parameterised statement.
        sent.length = 0;
        await store.lazyTransaction(async (tx) => void (await tx.query("SELECT 1")), {
          first: {
            statement: sql`INSERT INTO tagged (id, raw) VALUES (${"y"}, ${Buffer.from([0, 255])}) RETURNING id`,
            check: (rows) => expect(rows).toHaveLength(1),
          },
        });
        expect(sent).toEqual([
          "BEGIN ISOLATION LEVEL READ COMMITTED",
          "INSERT INTO tagged (id, raw) VALUES ($1, $2) RETURNING id",
          "SELECT 1",
          "COMMIT",
        ]);
        expect(await bytesOf("y")).toEqual([0, 255]);
      } finally {
        await cleanup();
      }
    });

    it("sends statements held for the commit with COMMIT (one round trip fewer), values exact", async () => {
      const { store, sent, cleanup, tagsOf, bytesOf } = await spiedStore();
      try {
        await store.lazyTransaction(async (tx) => void (await tx.query("SELECT 1")), {
          beforeCommit: (tx) =>
            runLast(tx, store.dialect, sql`INSERT INTO tagged (id, tags) VALUES (${"x"}, ${TAGS}::text[])`),
        });
        expect(sent).toEqual([
          "BEGIN ISOLATION LEVEL READ COMMITTED",
          "SELECT 1",
          expect.stringMatching(/^INSERT INTO tagged \(id, tags\) VALUES \('x', .*\); COMMIT$/),
        ]);
        expect(await tagsOf("x")).toEqual(TAGS);

        // A value that cannot be a literal (bytes): the statement runs at once, parameterised.
        sent.length = 0;
        await store.transaction((tx) =>
          runLast(
            tx,
            store.dialect,
            sql`INSERT INTO tagged (id, raw) VALUES (${"y"}, ${Buffer.from([0, 255])})`,
          ),
        );
        expect(sent).toEqual([
          "BEGIN ISOLATION LEVEL READ COMMITTED",
          "INSERT INTO tagged (id, raw) VALUES ($1, $2)",
          "COMMIT",
        ]);
        expect(await bytesOf("y")).toEqual([0, 255]);
      } finally {
        await cleanup();
      }
    });

    it("prepares nothing with prepareStatements: false (for poolers that cannot route them)", async () => {
      const db = postgresDatabase(service.url);
      const store = postgres({ ...(db.config as PostgresStoreOptions), prepareStatements: false });
      try {
        await expectNothingPrepared(store);
      } finally {
        await store.close();
        await db.cleanup();
      }
    });
  });
}
