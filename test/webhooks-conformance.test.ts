/**
 * The shipped webhooks conformance suite (`patchbay/adapter/conformance`) on this repository's
 * stores: a SQLite file and a PostgreSQL schema.
 */
import { inject } from "vitest";
import { defineWebhooksConformance } from "../src/adapter/conformance/index.js";
import { postgresDatabase, sqliteDatabase } from "./support/stores.js";

const { postgres: pg } = inject("services");

defineWebhooksConformance({ name: "SQLite", fresh: sqliteDatabase });
if (pg.reachable) defineWebhooksConformance({ name: "PostgreSQL", fresh: () => postgresDatabase(pg.url) });
else console.log(`webhooks conformance on PostgreSQL skipped: ${pg.where} unreachable (${pg.error})`);
