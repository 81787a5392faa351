import { describe, expect, it } from "vitest";
import { z } from "zod";
import { discardDrift, prepareBatch, unknownColumns } from "./transform.js";

const context = { pipeline: "p", runId: "r" };

describe("the row stage", () => {
  it("quarantines a row whose transform throws, with the error, and keeps the rest", async () => {
    const out = await prepareBatch([{ id: 1 }, { id: 2 }, { id: 3 }], {
      transform: (row) => {
        if (row.id === 2) throw new Error("no");
        return { ...row, ok: true };
      },
      schema: undefined,
      key: ["id"],
      context,
    });
    expect(out.rows).toEqual([
      { id: 1, ok: true },
      { id: 3, ok: true },
    ]);
    expect(out.quarantine).toEqual([{ reason: "transform", error: { message: "no" }, row: { id: 2 } }]);
  });

  it("fans out arrays, drops null/undefined/[] and counts the drops", async () => {
    const out = await prepareBatch([{ id: 1 }, { id: 2 }, { id: 3 }, { id: 4 }], {
      transform: (row) =>
        row.id === 1 ? [{ id: 10 }, { id: 11 }] : row.id === 2 ? null : row.id === 3 ? [] : undefined,
      schema: undefined,
      key: ["id"],
      context,
    });
    expect(out.rows).toEqual([{ id: 10 }, { id: 11 }]);
    expect(out.dropped).toBe(3);
  });

  it("validates with a Standard Schema, keeps its output, and quarantines failures with the issue path", async () => {
    const schema = z.object({ id: z.number(), total: z.coerce.number().nonnegative() });
    const out = await prepareBatch(
      [
        { id: 1, total: "5" },
        { id: 2, total: -1 },
      ],
      { transform: undefined, schema, key: ["id"], context },
    );
    expect(out.rows).toEqual([{ id: 1, total: 5 }]);
    expect(out.quarantine[0]).toMatchObject({
      reason: "schema",
      error: { code: "SCHEMA_INVALID" },
      row: { id: 2, total: -1 },
    });
    expect(out.quarantine[0]?.error.message).toContain("total:");
  });

  it("quarantines rows with a non-plain column name or without their key", async () => {
    const out = await prepareBatch(
      [{ id: 1, 'x"; DROP TABLE y; --': 1 }, { name: "no key" }, { id: null }, { id: 4 }],
      {
        transform: undefined,
        schema: undefined,
        key: ["id"],
        context,
      },
    );
    expect(out.rows).toEqual([{ id: 4 }]);
    expect(out.quarantine.map((q) => q.reason)).toEqual(["column", "key", "key"]);
  });

  it("stores quarantined rows JSON-safe (dates, bigints, bytes)", async () => {
    const out = await prepareBatch([{ id: 1, at: new Date(0), big: 10n, bytes: Buffer.from("hi") }], {
      transform: () => {
        throw new Error("x");
      },
      schema: undefined,
      key: ["id"],
      context,
    });
    expect(out.quarantine[0]?.row).toEqual({
      id: 1,
      at: "1970-01-01T00:00:00.000Z",
      big: "10",
      bytes: { base64: "aGk=" },
    });
  });

  it("finds unknown columns with a non-null sample, and discards drifting rows to quarantine", () => {
    const rows = [
      { id: 1, a: null },
      { id: 2, a: 5, b: "x" },
    ];
    expect(unknownColumns(rows, new Set(["id"]))).toEqual([
      { name: "a", sample: 5 },
      { name: "b", sample: "x" },
    ]);
    const batch = { rows, quarantine: [], dropped: 0 };
    discardDrift(batch, new Set(["id", "a"]));
    expect(batch.rows).toEqual([{ id: 1, a: null }]);
    expect(batch.quarantine).toMatchObject([{ reason: "drift", error: { code: "SYNC_SCHEMA_DRIFT" } }]);
  });
});
