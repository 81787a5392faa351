import { defineSyncConformance } from "./conformance/sync.js";
import { sqliteSyncDb } from "./support/sync-dbs.js";

defineSyncConformance({
  name: "SQLite (better-sqlite3, temporary files)",
  fresh: () => sqliteSyncDb(),
});
