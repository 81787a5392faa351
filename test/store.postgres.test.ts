import { describe, expect, inject, it } from "vitest";
import { postgres, type PostgresStoreOptions } from "../src/adapters/postgres/index.js";
import { defineStoreConformance } from "./conformance/store.js";
import { postgresDatabase } from "./support/stores.js";

const { postgres: service } = inject("services");

if (!service.reachable) {
  describe("Store conformance: PostgreSQL", () => {
    it.skip(`skipped: PostgreSQL unreachable at ${service.where} (${service.error}); set PATCHBAY_PG_URL`, () => {});
  });
} else {
  defineStoreConformance({
    name: `PostgreSQL (pg, ${service.where}, own schema per test)`,
    fresh: () => Promise.resolve(postgresDatabase(service.url)),
  });

  describe("prepared statements on PostgreSQL (the prepare hint)", () => {
    const prepared = `SELECT name, statement FROM pg_prepared_statements WHERE statement LIKE 'SELECT $1::int%'`;

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

    it("prepares nothing with prepareStatements: false (for poolers that cannot route them)", async () => {
      const db = postgresDatabase(service.url);
      const store = postgres({ ...(db.config as PostgresStoreOptions), prepareStatements: false });
      try {
        const seen = await store.transaction(async (tx) => {
          const { rows } = await tx.query<{ n: number }>("SELECT $1::int + 1 AS n", [41], { prepare: true });
          expect(rows[0]?.n).toBe(42);
          return (await tx.query(prepared)).rows;
        });
        expect(seen).toEqual([]);
      } finally {
        await store.close();
        await db.cleanup();
      }
    });
  });
}
