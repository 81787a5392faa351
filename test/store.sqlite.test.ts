import { defineStoreConformance } from "./conformance/store.js";
import { sqliteDatabase } from "./support/stores.js";

defineStoreConformance({
  name: "SQLite (node:sqlite, temporary file)",
  fresh: () => Promise.resolve(sqliteDatabase()),
});
