import { describe, expect, it } from "vitest";
import { arrayLiteral, copyChunks, copyValue } from "./copy.js";

describe("COPY text encoding", () => {
  it("escapes backslash, tab, newline and carriage return, and writes NULL as \\N", () => {
    expect(copyValue("a\tb\nc\\d\re", false)).toBe("a\\tb\\nc\\\\d\\re");
    expect(copyValue(null, false)).toBe("\\N");
    expect(copyValue(undefined, false)).toBe("\\N");
    expect(copyValue("\\N", false)).toBe("\\\\N");
  });

  it("writes booleans, numbers, dates, bytes and JSON", () => {
    expect(copyValue(true, false)).toBe("t");
    expect(copyValue(12.5, false)).toBe("12.5");
    expect(copyValue(10n, false)).toBe("10");
    expect(copyValue(new Date(0), false)).toBe("1970-01-01T00:00:00.000Z");
    expect(copyValue(Buffer.from([1, 255]), false)).toBe("\\\\x01ff");
    expect(copyValue({ a: "x\ty" }, false)).toBe('{"a":"x\\\\ty"}');
  });

  it("writes a JS array as a PostgreSQL array literal for array columns, as JSON otherwise", () => {
    expect(arrayLiteral([1, null, 'q"uote', [2, 3]])).toBe('{"1",NULL,"q\\"uote",{"2","3"}}');
    expect(copyValue([1, 2], true)).toBe('{"1","2"}');
    expect(copyValue([1, 2], false)).toBe("[1,2]");
  });

  it("makes one line per row, columns in order", () => {
    const text = [...copyChunks([{ a: 1, b: "x" }, { b: "y" }], ["a", "b"], new Set())].join("");
    expect(text).toBe("1\tx\n\\N\ty\n");
  });
});
