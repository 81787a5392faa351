import { describe, expect, it } from "vitest";
import { compilePattern, matchesAny } from "./patterns.js";

describe("patterns", () => {
  it("match one segment with *, any number with #, and exact types otherwise", () => {
    expect(compilePattern("order.*")("order.created")).toBe(true);
    expect(compilePattern("order.*")("order.item.added")).toBe(false);
    expect(compilePattern("order.#")("order.item.added")).toBe(true);
    expect(compilePattern("order.#")("order")).toBe(true);
    expect(compilePattern("#")("anything.at.all")).toBe(true);
    expect(compilePattern("order.created")("order.created")).toBe(true);
    expect(compilePattern("order.created")("order.paid")).toBe(false);
  });

  it("matchesAny answers the same on repeated calls (its compiled patterns are reused)", () => {
    const patterns = ["user.*", "order.#"];
    for (let i = 0; i < 3; i++) {
      expect(matchesAny(patterns, "order.item.added")).toBe(true);
      expect(matchesAny(patterns, "user.registered")).toBe(true);
      expect(matchesAny(patterns, "payment.failed")).toBe(false);
    }
    expect(matchesAny([], "order.created")).toBe(false);
  });
});
