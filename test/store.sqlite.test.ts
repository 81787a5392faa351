import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sqlite } from "../src/adapters/sqlite/index.js";
import { defineStoreConformance } from "./conformance/store.js";

defineStoreConformance({
  name: "SQLite (better-sqlite3, temporary file)",
  fresh() {
    const dir = mkdtempSync(join(tmpdir(), "patchbay-store-"));
    const config = { file: join(dir, "nested", "patchbay.db") };
    return Promise.resolve({
      make: (options) => sqlite({ ...config, ...options }),
      child: { adapter: "sqlite" as const, config },
      p: () => "?",
      cleanup: () => {
        rmSync(dir, { recursive: true, force: true });
        return Promise.resolve();
      },
    });
  },
});
