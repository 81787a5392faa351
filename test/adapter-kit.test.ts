/**
 * The adapter kit: a store adapter written with `patchbay/adapter` alone (test/fixtures/
 * tiny-adapter.ts, its pattern tables from `patternMigrations`) passes the shipped Store
 * conformance suite, its cross-process tests included, and the bus (on its own queue), saga and
 * webhooks suites; `patchbay/adapter/conformance` ships a suite for every contract.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import type { SqlStore, SqlStoreOptions } from "../src/adapter/index.js";
import * as conformance from "../src/adapter/conformance/index.js";
import {
  defineBusConformance,
  defineSagaConformance,
  defineStoreConformance,
  defineWebhooksConformance,
} from "../src/adapter/conformance/index.js";
import { localTransport, PARKED } from "../src/bus/local-transport.js";
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

const kit = "a tiny adapter on node:sqlite";
defineSagaConformance({ name: kit, fresh: tinyDatabase });
defineWebhooksConformance({ name: kit, fresh: tinyDatabase });
defineBusConformance({
  name: `${kit}, its own queue`,
  database: () => ({ ...tinyDatabase(), statementErrorAbortsTransaction: false }),
  transports: () => ({
    make: (store) => localTransport(store, { lease: "2s", pollInterval: "100ms" }),
    cleanup: () => Promise.resolve(),
    parked: async (store: SqlStore, group: string) => {
      const { rows } = await store.query<{ n: number }>(
        `SELECT COUNT(*) AS n FROM ${store.dialect.table("bus_jobs")} WHERE grp = ? AND run_at = ?`,
        [group, PARKED],
      );
      return Number(rows[0]?.n ?? 0);
    },
  }),
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
