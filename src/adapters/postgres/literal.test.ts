import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { postgresLiteral } from "./driver.js";

// pg itself, for comparison only: the adapter no longer needs it to write a literal.
const pg = (await import("pg")).default;

describe("postgresLiteral", () => {
  it("escapes every string exactly as pg.escapeLiteral does", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary" }), (text) => {
        fc.pre(!text.includes("\u0000"));
        expect(postgresLiteral(text)).toBe(pg.escapeLiteral(text));
      }),
      { numRuns: 2000 },
    );
    for (const text of ["", "'", "\\", "a'b\\c", "it's", "C:\\dir\\", "''\\\\", "é€😀"]) {
      expect(postgresLiteral(text)).toBe(pg.escapeLiteral(text));
    }
  });

  it("writes quotes doubled, and backslashes doubled in an escape string", () => {
    expect(postgresLiteral("it's")).toBe("'it''s'");
    expect(postgresLiteral("a\\b'c")).toBe(" E'a\\\\b''c'");
    expect(postgresLiteral(12)).toBe("'12'");
    expect(postgresLiteral(null)).toBe("NULL");
    expect(postgresLiteral("a\u0000b")).toBeUndefined();
  });
});
