import { describe, expect, expectTypeOf, it } from "vitest";
import { fallback } from "./fallback.js";

describe("fallback", () => {
  it("answers a failure with a value", async () => {
    const policy = fallback("cached");
    const value = await policy.execute(() => Promise.reject(new Error("down")));
    expect(value).toBe("cached");
    expectTypeOf(value).toEqualTypeOf<string>();
  });

  it("answers with a function of the error, sync or async", async () => {
    const failure = new Error("down");
    expect(
      await fallback((e) => `fallback for ${(e as Error).message}`).execute(() => Promise.reject(failure)),
    ).toBe("fallback for down");
    expect(await fallback(() => Promise.resolve(7)).execute(() => Promise.reject(failure))).toBe(7);
  });

  it("passes results through untouched", async () => {
    const value = await fallback(0).execute(() => "live");
    expect(value).toBe("live");
    expectTypeOf(value).toEqualTypeOf<string | number>();
  });

  it("passes through errors `handle` refuses", async () => {
    const policy = fallback("x", { handle: (e) => (e as Error).message === "down" });
    expect(await policy.execute(() => Promise.reject(new Error("down")))).toBe("x");
    await expect(policy.execute(() => Promise.reject(new Error("bug")))).rejects.toThrow("bug");
  });

  it("never answers a call the caller aborted", async () => {
    const caller = new AbortController();
    caller.abort(new Error("left"));
    await expect(
      fallback("x").execute(({ signal }) => Promise.reject(signal.reason as Error), caller.signal),
    ).rejects.toThrow("left");
  });
});
