import { describe, expect, it } from "vitest";
import { z } from "zod";
import { isPatchbayError } from "../core/errors.js";
import { defineSaga, isSagaDefinition } from "./definition.js";

const run = () => undefined;
const invalid = (fn: () => unknown, argument: string) => {
  try {
    fn();
  } catch (e) {
    expect(isPatchbayError(e, "INVALID_ARGUMENT") && e.argument).toBe(argument);
    return;
  }
  throw new Error("expected INVALID_ARGUMENT");
};

describe("defineSaga", () => {
  it("resolves steps with their defaults, the pivot and the deadline", () => {
    const def = defineSaga("order", {
      version: 2,
      timeout: "1h",
      steps: [
        { name: "reserve", run, compensate: (r: { id: string }) => void r.id },
        { name: "charge", run, retry: { maxAttempts: 5 }, transaction: true, timeout: "10s" },
        { name: "ship", run, pivot: true },
        { name: "confirm", run },
      ],
    });
    expect(isSagaDefinition(def)).toBe(true);
    expect(def.timeoutMs).toBe(3_600_000);
    expect(def.pivotIndex).toBe(2);
    expect(
      def.steps.map((s) => [s.name, s.retry.maxAttempts, s.compensateRetry.maxAttempts, s.transaction]),
    ).toEqual([
      ["reserve", 3, 10, false],
      ["charge", 5, 10, true],
      ["ship", 3, 10, false],
      ["confirm", 3, 10, false],
    ]);
    expect(def.steps[1]!.timeoutMs).toBe(10_000);
    expect(def.steps[0]!.compensate).toBeTypeOf("function");
  });

  it("refuses what can never work, naming the option at fault", () => {
    invalid(() => defineSaga("bad name!", { version: 1, steps: [{ name: "a", run }] }), "name");
    invalid(() => defineSaga("s", { version: 0, steps: [{ name: "a", run }] }), "options.version");
    invalid(() => defineSaga("s", { version: 1, steps: [] }), "options.steps");
    invalid(
      () =>
        defineSaga("s", {
          version: 1,
          steps: [
            { name: "a", run },
            { name: "a", run },
          ],
        }),
      "options.steps[1].name",
    );
    invalid(() => defineSaga("s", { version: 1, steps: [{ name: "a:b", run }] }), "options.steps[0].name");
    invalid(() => defineSaga("s", { version: 1, steps: [{ name: "a" } as never] }), "options.steps[0].run");
    invalid(
      () => defineSaga("s", { version: 1, steps: [{ name: "a", run, pivot: true, compensate: run }] }),
      "options.steps[0].compensate",
    );
    invalid(
      () =>
        defineSaga("s", {
          version: 1,
          steps: [
            { name: "a", run, pivot: true },
            { name: "b", run, compensate: run },
          ],
        }),
      "options.steps[1].compensate",
    );
    invalid(
      () =>
        defineSaga("s", {
          version: 1,
          steps: [
            { name: "a", run, pivot: true },
            { name: "b", run, pivot: true },
          ],
        }),
      "options.steps[1].pivot",
    );
    invalid(
      () => defineSaga("s", { version: 1, steps: [{ name: "a", run, retry: { maxAttempts: -1 } }] }),
      "options.steps[0].retry.maxAttempts",
    );
    expect(() => defineSaga("s", { version: 1, timeout: "soon", steps: [{ name: "a", run }] })).toThrow(
      /duration/,
    );
  });

  it("validates the input with its schema", async () => {
    const def = defineSaga("s", {
      version: 1,
      input: z.object({ orderId: z.string() }),
      steps: [{ name: "a", run: (input) => input.orderId }],
    });
    await expect(def.parseInput({ orderId: "o-1" })).resolves.toEqual({ orderId: "o-1" });
    await expect(def.parseInput({ orderId: 1 })).rejects.toMatchObject({ code: "SCHEMA_INVALID" });
  });
});
