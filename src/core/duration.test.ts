import { describe, expect, it } from "vitest";
import { toMs } from "./duration.js";
import { isPatchbayError } from "./errors.js";

describe("toMs", () => {
  it.each([
    [250, 250],
    ["250", 250],
    ["250ms", 250],
    ["30s", 30_000],
    ["5m", 300_000],
    ["1h30m", 5_400_000],
    ["1.5s", 1_500],
    ["7d", 604_800_000],
    ["2w", 1_209_600_000],
    [" 10s ", 10_000],
    [0, 0],
  ])("reads %j as %d ms", (input, expected) => {
    expect(toMs(input)).toBe(expected);
  });

  it.each([
    ["5 parsecs"],
    [""],
    ["s"],
    ["10S"],
    ["-5s"],
    ["1h 30m"],
    [-1],
    [Number.NaN],
    [Infinity],
    ["9".repeat(400)],
    [null],
    [{}],
  ])("rejects %j with DURATION_INVALID naming the option", (input) => {
    let error: unknown;
    try {
      toMs(input as never, "retry.max");
    } catch (e) {
      error = e;
    }
    expect(isPatchbayError(error, "DURATION_INVALID")).toBe(true);
    expect((error as Error).message).toContain("retry.max");
  });
});
