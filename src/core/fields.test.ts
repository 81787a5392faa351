import { describe, expect, it } from "vitest";
import { setField } from "./fields.js";

describe("setField", () => {
  it("keeps a field named __proto__ as an own property that JSON and spreads carry", () => {
    const row: Record<string, unknown> = {};
    setField(row, "__proto__", { polluted: true });
    setField(row, "id", 1);
    expect(Object.keys(row)).toEqual(["__proto__", "id"]);
    expect(JSON.stringify(row)).toBe('{"__proto__":{"polluted":true},"id":1}');
    expect(Object.getPrototypeOf(row)).toBe(Object.prototype);
    expect(Object.keys({ ...row })).toEqual(["__proto__", "id"]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});
