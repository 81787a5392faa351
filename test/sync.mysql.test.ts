import { describe, inject, it } from "vitest";
import { defineSyncConformance } from "../src/adapter/conformance/index.js";
import { mysqlSyncDb } from "./support/sync-dbs.js";

const { mysql: service } = inject("services");

if (!service.reachable) {
  describe("Sync conformance: MariaDB", () => {
    it.skip(`skipped: MariaDB unreachable at ${service.where} (${service.error}); set PATCHBAY_MYSQL_URL`, () => {});
  });
} else {
  defineSyncConformance({
    name: `MariaDB (mysql2, ${service.where}, own database per test)`,
    fresh: () => mysqlSyncDb(service.url),
  });
}
