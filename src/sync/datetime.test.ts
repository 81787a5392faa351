import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { utcDateTime } from "./datetime.js";

const pad = (n: number, w = 2) => String(n).padStart(w, "0");

describe("utcDateTime", () => {
  it("writes an instant with any offset as its UTC wall-clock time (years 1 to 9999, as a JS Date reads them)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: Date.parse("0001-01-02T00:00:00Z"), max: Date.parse("9999-12-30T00:00:00Z") }),
        fc.integer({ min: -15 * 3600, max: 15 * 3600 }),
        fc.integer({ min: 0, max: 999_999 }),
        (ms, offset, micros) => {
          const at = new Date(Math.floor(ms / 1000) * 1000);
          const local = new Date(at.getTime() + offset * 1000);
          const abs = Math.abs(offset);
          const zone = `${offset < 0 ? "-" : "+"}${pad(Math.floor(abs / 3600))}:${pad(Math.floor(abs / 60) % 60)}:${pad(abs % 60)}`;
          const fraction = `.${pad(micros, 6)}`;
          const text = `${local.toISOString().slice(0, 19)}${fraction}${zone}`;
          const want = `${at.toISOString().slice(0, 19).replace("T", " ")}${fraction}`;
          expect(utcDateTime(text)).toBe(want);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it("keeps years after 9999 and before 1 AD (PostgreSQL's `BC`), across the year boundary", () => {
    expect(utcDateTime("294277-01-01 05:44:59.999999+05:45")).toBe("294276-12-31 23:59:59.999999");
    expect(utcDateTime("10000-01-01 05:45:00+05:45")).toBe("10000-01-01 00:00:00");
    expect(utcDateTime("0044-03-15 17:41:16+05:41:16 BC")).toBe("0044-03-15 12:00:00 BC");
    expect(utcDateTime("0001-01-01 05:00:00+05:45")).toBe("0001-12-31 23:15:00 BC");
    expect(utcDateTime("0001-12-31 23:00:00-02 BC")).toBe("0001-01-01 01:00:00");
    expect(utcDateTime("4713-11-24 00:00:00+00 BC")).toBe("4713-11-24 00:00:00 BC");
    expect(utcDateTime("2024-02-29 23:30:00-01")).toBe("2024-03-01 00:30:00");
    expect(utcDateTime("0044-03-15 12:00:00 BC")).toBe("0044-03-15 12:00:00 BC");
    expect(utcDateTime("infinity")).toBe("infinity");
  });
});
