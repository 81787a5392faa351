import { describe, expect, it } from "vitest";
import { parseExactJson, parseExactRow, toJsonSafe } from "./json.js";

describe("parseExactJson", () => {
  it("keeps every number's text through JSON.stringify, and reads the rest as JSON.parse does", () => {
    const text = `{"big": 12345678901234567890, "tiny": 0.1000000000000000055511151231257827, "neg": -9223372036854775809, "exp": 1.5e300, "plain": [1, 2.5, -0], "s": "x", "n": null}`;
    const parsed = parseExactJson(text) as Record<string, unknown>;
    expect(parsed.s).toBe("x");
    expect((parsed.plain as unknown[]).slice(0, 2)).toEqual([1, 2.5]); // -0 stays raw: String(-0) is "0"
    parsed.added = true;
    expect(JSON.stringify(parsed)).toBe(
      `{"big":12345678901234567890,"tiny":0.1000000000000000055511151231257827,"neg":-9223372036854775809,"exp":1.5e300,"plain":[1,2.5,-0],"s":"x","n":null,"added":true}`,
    );
    expect(parseExactJson(`"just a string"`)).toBe("just a string");
    expect(JSON.stringify(parseExactJson("12345678901234567890"))).toBe("12345678901234567890");
  });
});

describe("parseExactRow", () => {
  it("gives a column a JS number only when it is the text's value; otherwise the digits, as a string or (nested) raw JSON", () => {
    const row = parseExactRow(
      `{"big": 12345678901234567890, "safe": 9007199254740991, "over": 9007199254740993, "e": 1E2, "z": -0.0, "f": 2.50, "__proto__": 123456789012345678901, "doc": {"n": [0.1000000000000000055511151231257827, 1.0]}}`,
    ) as Record<string, unknown>;
    expect(row.big).toBe("12345678901234567890");
    expect(row.safe).toBe(9007199254740991);
    expect(row.over).toBe("9007199254740993");
    expect(row.e).toBe(100);
    expect(Object.is(row.z, -0)).toBe(true);
    expect(row.f).toBe(2.5);
    expect(Object.getOwnPropertyDescriptor(row, "__proto__")?.value).toBe("123456789012345678901");
    expect(Object.getPrototypeOf(row)).toBe(Object.prototype);
    expect(JSON.stringify(row.doc)).toBe(`{"n":[0.1000000000000000055511151231257827,1]}`);
    expect(JSON.stringify(toJsonSafe(row.doc))).toBe(`{"n":[0.1000000000000000055511151231257827,1]}`);
  });
});
