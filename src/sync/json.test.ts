import { describe, expect, it } from "vitest";
import { parseExactJson } from "./json.js";

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
