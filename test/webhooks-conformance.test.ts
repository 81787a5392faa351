/**
 * The shipped webhooks conformance suite (`patchbay/adapter/conformance`) on this repository's
 * stores: a SQLite file, a PostgreSQL schema and a MariaDB database.
 */
import { describe, inject, it } from "vitest";
import { defineWebhooksConformance } from "../src/adapter/conformance/index.js";
import { mysqlDatabase, postgresDatabase, sqliteDatabase } from "./support/stores.js";

const { postgres: pg, mysql: maria } = inject("services");

defineWebhooksConformance({ name: "SQLite", fresh: sqliteDatabase });
if (pg.reachable) defineWebhooksConformance({ name: "PostgreSQL", fresh: () => postgresDatabase(pg.url) });
else console.log(`webhooks conformance on PostgreSQL skipped: ${pg.where} unreachable (${pg.error})`);
if (maria.reachable) defineWebhooksConformance({ name: "MariaDB", fresh: () => mysqlDatabase(maria.url) });
else
  describe("webhooks conformance on MariaDB", () =>
    it.skip(`skipped: MariaDB unreachable at ${maria.where} (${maria.error}); set PATCHBAY_MYSQL_URL`, () => {}));
