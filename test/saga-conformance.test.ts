/**
 * The shipped saga conformance suite (`patchbay/adapter/conformance`) on this repository's stores:
 * a SQLite file and a PostgreSQL schema.
 */
import { inject } from "vitest";
import { defineSagaConformance } from "../src/adapter/conformance/index.js";
import { postgresDatabase, sqliteDatabase } from "./support/stores.js";

const { postgres: pg } = inject("services");

defineSagaConformance({ name: "SQLite", fresh: sqliteDatabase });
if (pg.reachable) defineSagaConformance({ name: "PostgreSQL", fresh: () => postgresDatabase(pg.url) });
else console.log(`saga conformance on PostgreSQL skipped: ${pg.where} unreachable (${pg.error})`);
