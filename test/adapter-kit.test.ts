/**
 * The adapter kit: a store adapter written with `patchbay/adapter` alone (test/fixtures/
 * tiny-adapter.ts) passes the shipped Store conformance suite, its cross-process tests included.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { SqlStoreOptions } from "../src/adapter/index.js";
import { defineStoreConformance } from "../src/adapter/conformance/index.js";
import { tinyStore } from "./fixtures/tiny-adapter.js";

function tinyDatabase() {
  const dir = mkdtempSync(join(tmpdir(), "patchbay-tiny-"));
  const config = { file: join(dir, "tiny.db") };
  return {
    make: (options?: SqlStoreOptions) => tinyStore(config, options),
    config,
    cleanup: () => Promise.resolve(rmSync(dir, { recursive: true, force: true })),
  };
}

defineStoreConformance({
  name: "a tiny adapter on node:sqlite, written with patchbay/adapter only",
  fresh: () => Promise.resolve(tinyDatabase()),
  statementErrorAbortsTransaction: false,
  child: {
    module: fileURLToPath(new URL("./fixtures/tiny-adapter.ts", import.meta.url)),
    export: "tinyStore",
  },
});
