/**
 * The adapter kit: a store adapter written with `patchbay/adapter` alone (test/fixtures/
 * tiny-adapter.ts) passes the shipped Store conformance suite, its cross-process tests included;
 * `patchbay/adapter/conformance` ships a suite for every contract (the bus, saga, sync and
 * webhooks suites run on this repository's stores in their own test files, and on the harness).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import type { SqlStoreOptions } from "../src/adapter/index.js";
import * as conformance from "../src/adapter/conformance/index.js";
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

describe("patchbay/adapter/conformance", () => {
  it("ships one suite per contract, and the helpers they take", () => {
    const suites = Object.keys(conformance).filter((name) => /^define\w+Conformance$/.test(name));
    expect(suites.sort()).toEqual(
      [
        "defineBusConformance",
        "defineSagaConformance",
        "defineStoreConformance",
        "defineSyncConformance",
        "defineTransportConformance",
        "defineWebhooksConformance",
      ].sort(),
    );
    for (const name of suites) expect(typeof conformance[name as keyof typeof conformance]).toBe("function");
    expect(typeof conformance.until).toBe("function");
    expect(typeof conformance.startReceiver).toBe("function");
    expect(conformance.testRows(3).map((r) => r.id)).toEqual([1, 2, 3]);
  });
});
