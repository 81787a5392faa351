import { describe, inject, it } from "vitest";
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
}
