import { describe, expect, it } from "vitest";
import type { SyncProgress } from "../../sync/run.js";
import { progressLine } from "./sync.js";

const progress = (p: Partial<SyncProgress>): SyncProgress => ({
  runId: "r",
  pipeline: "orders",
  rowsRead: 0,
  rowsWritten: 0,
  rowsDeleted: 0,
  rowsQuarantined: 0,
  batches: 0,
  elapsedMs: 0,
  rowsPerSecond: 0,
  total: undefined,
  cursor: null,
  ...p,
});

describe("the sync progress line", () => {
  it("shows rows, a bar, rows/s and an ETA when the source can count", () => {
    expect(progressLine("orders", progress({ rowsRead: 25_000, total: 100_000, rowsPerSecond: 5000 }))).toBe(
      "orders  25,000 / 100,000 rows  [#####...............]  25%  5,000 rows/s  ETA 0:15",
    );
  });

  it("shows rows and rows/s (and quarantined rows) when it cannot", () => {
    expect(
      progressLine("orders", progress({ rowsRead: 1234, rowsPerSecond: 99.6, rowsQuarantined: 2 })),
    ).toBe("orders  1,234 rows  100 rows/s  2 quarantined");
  });
});
