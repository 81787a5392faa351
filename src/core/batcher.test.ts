import { describe, expect, it } from "vitest";
import { createBatcher } from "./batcher.js";

/** A flush whose completion the test controls, recording every batch it was given. */
function gatedFlush() {
  const batches: number[][] = [];
  const gates: Array<() => void> = [];
  const flush = async (items: number[]) => {
    batches.push(items);
    await new Promise<void>((resolve) => gates.push(resolve));
    return items.map((n) => n * 10);
  };
  const open = async () => {
    await new Promise((r) => setImmediate(r));
    gates.shift()?.();
    await new Promise((r) => setImmediate(r));
  };
  return { batches, flush, open };
}

describe("createBatcher", () => {
  it("flushes a lone item at once and gives each caller its own result", async () => {
    const batcher = createBatcher(async (items: number[]) => Promise.resolve(items.map((n) => n + 1)));
    await expect(batcher.add(1)).resolves.toBe(2);
    const results = await Promise.all([batcher.add(5), batcher.add(7)]);
    expect(results).toEqual([6, 8]);
  });

  it("groups the items that arrive while a flush is in flight into the next flush", async () => {
    const { batches, flush, open } = gatedFlush();
    const batcher = createBatcher(flush);
    const first = batcher.add(1);
    await new Promise((r) => setImmediate(r));
    const rest = [2, 3, 4].map((n) => batcher.add(n));
    await new Promise((r) => setImmediate(r));
    expect(batches).toEqual([[1]]); // the others wait for the first flush
    await open();
    await expect(first).resolves.toBe(10);
    expect(batches).toEqual([[1], [2, 3, 4]]);
    await open();
    await expect(Promise.all(rest)).resolves.toEqual([20, 30, 40]);
  });

  it("never puts more than maxBatch items in one flush", async () => {
    const sizes: number[] = [];
    const batcher = createBatcher(
      async (items: number[]) => {
        sizes.push(items.length);
        return Promise.resolve(items);
      },
      { maxBatch: 3 },
    );
    await Promise.all(Array.from({ length: 8 }, (_, i) => batcher.add(i)));
    expect(sizes).toEqual([3, 3, 2]);
  });

  it("rejects every caller of a failed batch, and later batches still run", async () => {
    let fail = true;
    const batcher = createBatcher(async (items: number[]) => {
      if (fail) throw new Error("database down");
      return Promise.resolve(items);
    });
    const failed = await Promise.allSettled([batcher.add(1), batcher.add(2)]);
    expect(failed.map((r) => r.status)).toEqual(["rejected", "rejected"]);
    fail = false;
    await expect(batcher.add(3)).resolves.toBe(3);
  });

  it("with isolateFailures, fails only the caller whose item the flush refuses", async () => {
    const flushed: number[][] = [];
    const batcher = createBatcher(
      async (items: number[]) => {
        flushed.push(items);
        if (items.includes(13)) throw new Error("13 is refused");
        return Promise.resolve(items);
      },
      { isolateFailures: true },
    );
    const results = await Promise.allSettled([12, 13, 14].map((n) => batcher.add(n)));
    expect(results.map((r) => r.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    expect((results[1] as PromiseRejectedResult).reason).toMatchObject({ message: "13 is refused" });
    expect(flushed).toEqual([[12, 13, 14], [12], [13], [14]]);
  });

  it("rejects when the flush returns the wrong number of results", async () => {
    const batcher = createBatcher(async () => Promise.resolve([] as number[]));
    await expect(batcher.add(1)).rejects.toThrow(/0 results for 1 items/);
  });
});

describe("createBatcher's async context", () => {
  it("flushes in the context the batcher was created in, not the first caller's", async () => {
    const { AsyncLocalStorage } = await import("node:async_hooks");
    const als = new AsyncLocalStorage<string>();
    const seen: Array<string | undefined> = [];
    const batcher = als.run("creator", () =>
      createBatcher(async (items: number[]) => {
        seen.push(als.getStore());
        return Promise.resolve(items);
      }),
    );
    await als.run("caller-in-a-transaction", () => batcher.add(1));
    expect(seen).toEqual(["creator"]);
  });
});
