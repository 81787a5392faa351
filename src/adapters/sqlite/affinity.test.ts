import { describe, expect, it } from "vitest";
import { affinity, numericCheck } from "./affinity.js";

describe("SQLite affinity", () => {
  it("follows SQLite's rules for declared types", () => {
    expect(
      [
        "INTEGER",
        "BIGINT",
        "VARCHAR(20)",
        "CLOB",
        "BLOB",
        "",
        "DOUBLE",
        "FLOAT",
        "DECIMAL(10,5)",
        "BOOLEAN",
        "DATETIME",
      ].map(affinity),
    ).toEqual([
      "INTEGER",
      "INTEGER",
      "TEXT",
      "TEXT",
      "BLOB",
      "BLOB",
      "REAL",
      "REAL",
      "NUMERIC",
      "NUMERIC",
      "NUMERIC",
    ]);
  });

  it("lets through what a numeric column stores exactly, and says why it refuses the rest", () => {
    const numeric = numericCheck("NUMERIC");
    const real = numericCheck("REAL");
    expect(numericCheck("TEXT")).toBeUndefined();
    expect(numericCheck("BLOB")).toBeUndefined();
    const exact = [
      "9223372036854775807",
      "-9223372036854775808",
      "0.1",
      "1.5",
      "-0.25e2",
      "007",
      "1e21",
      "not a number",
      "",
    ];
    expect(exact.map((v) => numeric?.(v))).toEqual(exact.map(() => undefined));
    expect([1.5, true, null, Buffer.from("1"), 2n ** 63n - 1n].map((v) => numeric?.(v))).toEqual(
      Array.from({ length: 5 }, () => undefined),
    );
    expect(numeric?.("9223372036854775808")).toBe(
      "(NUMERIC, NUMERIC affinity) would store 9223372036854775808 as the REAL 9223372036854776000; declare it TEXT to keep the exact text",
    );
    expect(numeric?.("1234567890123456.7")).toMatch(/as the REAL 1234567890123456\.8;/);
    expect(numeric?.(2n ** 64n)).toMatch(/would store 18446744073709551616 as the REAL/);
    expect(real?.("9007199254740993")).toMatch(/as the REAL 9007199254740992;/);
    expect(real?.(2n ** 53n + 1n)).toMatch(/as the REAL 9007199254740992;/);
    expect(real?.(2n ** 53n)).toBeUndefined();
    expect(numericCheck("INTEGER")?.("9007199254740993")).toBeUndefined();
  });
});
