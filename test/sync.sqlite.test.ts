import { defineSyncConformance } from "./conformance/sync.js";
import { sqliteSyncDb } from "./support/sync-dbs.js";

defineSyncConformance({
  name: "SQLite (node:sqlite, temporary files)",
  fresh: () => sqliteSyncDb(),
});
