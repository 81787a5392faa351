import { defineStoreConformance } from "./conformance/store.js";
import { sqliteDatabase } from "./support/stores.js";

defineStoreConformance({
  name: "SQLite (better-sqlite3, temporary file)",
  fresh: () => Promise.resolve(sqliteDatabase()),
});
