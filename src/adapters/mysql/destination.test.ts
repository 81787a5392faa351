import { describe, expect, it } from "vitest";
import { mysqlDateTime } from "./destination.js";

describe("mysqlDateTime", () => {
  it("converts zoned timestamps to UTC and keeps every fraction digit", () => {
    expect(mysqlDateTime("2026-11-26 10:00:00.123456+00")).toBe("2026-11-26 10:00:00.123456");
    expect(mysqlDateTime("2026-11-26T10:00:00.5+02:00")).toBe("2026-11-26 08:00:00.5");
    expect(mysqlDateTime("2026-11-26T23:30:00Z")).toBe("2026-11-26 23:30:00");
    expect(mysqlDateTime("2026-01-01 00:30:00-0130")).toBe("2026-01-01 02:00:00");
  });

  it("takes offsets to the second (PostgreSQL's historical zones) and years before 1000", () => {
    expect(mysqlDateTime("1883-11-18 12:03:57.999999-04:56:02")).toBe("1883-11-18 16:59:59.999999");
    expect(mysqlDateTime("0999-12-31 19:03:58.000001-04:56:02")).toBe("1000-01-01 00:00:00.000001");
    expect(mysqlDateTime("0099-01-01 00:00:00+00")).toBe("0099-01-01 00:00:00");
  });

  it("keeps zone-less text (only the T becomes a space), Dates as UTC, other values as they are", () => {
    expect(mysqlDateTime("2026-11-26T10:00:00")).toBe("2026-11-26 10:00:00");
    expect(mysqlDateTime(new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 6)))).toBe("2026-01-02 03:04:05.006");
    expect(mysqlDateTime("not a date")).toBe("not a date");
    expect(mysqlDateTime(null)).toBe(null);
  });
});
