import { describe, expect, it } from "vitest";
import { isPatchbayError } from "../core/errors.js";
import { retryBudget } from "./budget.js";

describe("retryBudget", () => {
  it("starts full and allows retries while tokens > maxTokens / 2", () => {
    const budget = retryBudget({ maxTokens: 10, tokenRatio: 0.1 });
    expect(budget.tokens).toBe(10);
    expect(budget.canRetry()).toBe(true);
    for (let i = 0; i < 4; i++) budget.recordFailure();
    expect(budget.tokens).toBe(6);
    expect(budget.canRetry()).toBe(true);
    budget.recordFailure();
    expect(budget.tokens).toBe(5);
    expect(budget.canRetry()).toBe(false);
  });

  it("earns tokenRatio per success back, exactly (no float drift), capped at maxTokens", () => {
    const budget = retryBudget();
    for (let i = 0; i < 5; i++) budget.recordFailure();
    expect(budget.canRetry()).toBe(false);
    for (let i = 0; i < 10; i++) budget.recordSuccess();
    expect(budget.tokens).toBe(6);
    expect(budget.canRetry()).toBe(true);
    for (let i = 0; i < 1_000; i++) budget.recordSuccess();
    expect(budget.tokens).toBe(10);
  });

  it("never goes below zero", () => {
    const budget = retryBudget({ maxTokens: 2 });
    for (let i = 0; i < 10; i++) budget.recordFailure();
    expect(budget.tokens).toBe(0);
    budget.recordSuccess();
    expect(budget.tokens).toBe(0.1);
  });

  it("rejects bad options with INVALID_ARGUMENT", () => {
    for (const options of [
      { maxTokens: 0 },
      { maxTokens: Number.NaN },
      { tokenRatio: 0 },
      { tokenRatio: 2 },
    ]) {
      let error: unknown;
      try {
        retryBudget(options);
      } catch (e) {
        error = e;
      }
      expect(isPatchbayError(error, "INVALID_ARGUMENT")).toBe(true);
    }
  });
});
