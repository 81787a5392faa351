import { describe, inject, it } from "vitest";
import { defineSyncConformance } from "../src/adapter/conformance/index.js";
import { postgresSyncDb } from "./support/sync-dbs.js";

const { postgres: service } = inject("services");

if (!service.reachable) {
  describe("Sync conformance: PostgreSQL", () => {
    it.skip(`skipped: PostgreSQL unreachable at ${service.where} (${service.error}); set PATCHBAY_PG_URL`, () => {});
  });
} else {
  defineSyncConformance({
    name: `PostgreSQL (pg + COPY, ${service.where}, own schema per test)`,
    fresh: () => postgresSyncDb(service.url),
  });
}
