import { defineSyncConformance } from "../src/adapter/conformance/index.js";
import { sqliteSyncDb } from "./support/sync-dbs.js";

defineSyncConformance({
  name: "SQLite (node:sqlite, temporary files)",
  fresh: () => sqliteSyncDb(),
});
