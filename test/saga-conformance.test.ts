/**
 * The shipped saga conformance suite (`patchbay/adapter/conformance`) on this repository's stores:
 * a SQLite file, a PostgreSQL schema and a MariaDB database.
 */
import { describe, inject, it } from "vitest";
import { defineSagaConformance } from "../src/adapter/conformance/index.js";
import { mysqlDatabase, postgresDatabase, sqliteDatabase } from "./support/stores.js";

const { postgres: pg, mysql: maria } = inject("services");

defineSagaConformance({ name: "SQLite", fresh: sqliteDatabase });
if (pg.reachable) defineSagaConformance({ name: "PostgreSQL", fresh: () => postgresDatabase(pg.url) });
else console.log(`saga conformance on PostgreSQL skipped: ${pg.where} unreachable (${pg.error})`);
if (maria.reachable)
  defineSagaConformance({ name: "MariaDB", fresh: () => mysqlDatabase(maria.url), keyText: "VARCHAR(255)" });
else
  describe("saga conformance on MariaDB", () =>
    it.skip(`skipped: MariaDB unreachable at ${maria.where} (${maria.error}); set PATCHBAY_MYSQL_URL`, () => {}));
