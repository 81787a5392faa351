import { randomBytes } from "node:crypto";
import pg from "pg";
import { describe, inject, it } from "vitest";
import { postgres } from "../src/adapters/postgres/index.js";
import { defineStoreConformance } from "./conformance/store.js";

const { postgres: service } = inject("services");

if (!service.reachable) {
  describe("Store conformance: PostgreSQL", () => {
    it.skip(`skipped: PostgreSQL unreachable at ${service.where} (${service.error}); set PATCHBAY_PG_URL`, () => {});
  });
} else {
  defineStoreConformance({
    name: `PostgreSQL (pg, ${service.where}, own schema per test)`,
    fresh() {
      // Each test gets its own schema; dropped afterwards with everything in it.
      const schema = `pb_test_${randomBytes(6).toString("hex")}`;
      const config = { url: service.url, schema, max: 4 };
      const admin = async (sql: string) => {
        const client = new pg.Client({ connectionString: service.url });
        await client.connect();
        try {
          await client.query(sql);
        } finally {
          await client.end();
        }
      };
      return Promise.resolve({
        // User tables (CREATE TABLE orders) land in the test's schema too, via search_path.
        make: (options) =>
          postgres({ ...config, ...options, pool: undefined, url: withSearchPath(service.url, schema) }),
        child: {
          adapter: "postgres" as const,
          config: { ...config, url: withSearchPath(service.url, schema) },
        },
        p: (n: number) => `$${n}`,
        cleanup: () => admin(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`),
      });
    },
  });
}

function withSearchPath(url: string, schema: string): string {
  const u = new URL(url);
  u.searchParams.set("options", `-c search_path=${schema}`);
  return u.toString();
}
