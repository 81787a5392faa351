import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { sqlite } from "../adapters/sqlite/index.js";
import { isPatchbayError } from "../core/errors.js";
import { onMeasurement } from "../core/instruments.js";
import type { SqlStore } from "../store/sql-store.js";
import type {
  DestinationBatch,
  JsonValue,
  Row,
  SourceBatch,
  SyncDestination,
  SyncSource,
} from "./contracts.js";
import { pipeline, type PipelineOptions } from "./pipeline.js";

/** Rows 1..n, read in batches; the cursor is the last id. */
function memorySource(rows: Row[], extra: Partial<SourceBatch> = {}): SyncSource & { fail?: Error } {
  const source: SyncSource & { fail?: Error } = {
    description: "memory",
    capabilities: { modes: ["full", "incremental"], streaming: false },
    async *read(request) {
      const after = typeof request.cursor === "number" ? request.cursor : 0;
      const rest = rows.filter((r) => Number(r.id) > after);
      for (let i = 0; i < rest.length; i += request.batchSize) {
        if (source.fail) throw source.fail;
        const batch = rest.slice(i, i + request.batchSize);
        yield { rows: batch, cursor: Number(batch.at(-1)?.id), ...extra };
        await Promise.resolve();
      }
    },
    close: () => Promise.resolve(),
  };
  return source;
}

/** A destination in memory; `gate` (when set) holds every write until resolved. */
function memoryDestination() {
  const state = {
    rows: new Map<unknown, Row>(),
    checkpoint: undefined as JsonValue | undefined,
    batches: [] as DestinationBatch[],
  };
  let gate: Promise<void> | undefined;
  let entered: (() => void) | undefined;
  const destination: SyncDestination = {
    description: "memory",
    write: "merge",
    key: ["id"],
    capabilities: { transactional: true, columns: false },
    close: () => Promise.resolve(),
    open: () =>
      Promise.resolve({
        claim: () => Promise.resolve(state.checkpoint),
        readCheckpoint: () => Promise.resolve(state.checkpoint),
        columns: () => Promise.resolve(undefined),
        evolve: () => Promise.resolve(),
        beginReplace: () => Promise.resolve(false),
        async write(batch) {
          entered?.();
          await gate;
          state.batches.push(batch);
          for (const r of batch.rows) state.rows.set(r.id, r);
          for (const r of batch.deletes) state.rows.delete(r.id);
          state.checkpoint = batch.checkpoint;
          return { written: batch.rows.length, deleted: batch.deletes.length };
        },
        commitReplace: () => Promise.resolve({ written: 0, deleted: 0 }),
        reset: () => Promise.resolve(void (state.checkpoint = undefined)),
        close: () => Promise.resolve(),
      }),
  };
  return {
    destination,
    state,
    hold() {
      let release!: () => void;
      gate = new Promise((r) => (release = r));
      const inside = new Promise<void>((r) => (entered = r));
      return { inside, release };
    },
  };
}

const rows = (n: number) => Array.from({ length: n }, (_, i) => ({ id: i + 1, v: `v${i + 1}` }));
const codeOf = (fn: () => unknown) => {
  try {
    fn();
    return "ok";
  } catch (e) {
    return isPatchbayError(e) ? e.code : String(e);
  }
};

describe("pipeline", () => {
  let store: SqlStore;
  beforeEach(() => {
    store = sqlite({ file: ":memory:" });
  });
  afterEach(() => store.close());
  const base = (o: Partial<PipelineOptions> = {}): PipelineOptions => ({
    store,
    source: memorySource(rows(25)),
    destination: memoryDestination().destination,
    mode: "incremental",
    batchSize: 10,
    ...o,
  });

  it("refuses bad configuration with INVALID_ARGUMENT before doing anything", () => {
    expect(codeOf(() => pipeline("bad name!", base()))).toBe("INVALID_ARGUMENT");
    expect(codeOf(() => pipeline("p", base({ mode: "sometimes" as never })))).toBe("INVALID_ARGUMENT");
    expect(codeOf(() => pipeline("p", base({ batchSize: 0 })))).toBe("INVALID_ARGUMENT");
    expect(codeOf(() => pipeline("p", base({ schedule: "every tuesday" })))).toBe("INVALID_ARGUMENT");
    expect(codeOf(() => pipeline("p", base({ schema: {} as never })))).toBe("INVALID_ARGUMENT");
    const replace = { ...memoryDestination().destination, write: "replace" as const };
    expect(codeOf(() => pipeline("p", base({ destination: replace })))).toBe("INVALID_ARGUMENT");
  });

  it("reports its committed cursor's time per batch (from the stored checkpoint at the start), and forgets it on reset", async () => {
    const seen: number[] = [];
    const stop = onMeasurement((name, value, labels) => {
      if (name === "pipeline.cursor_time" && (labels as { pipeline: string }).pipeline === "timed") {
        seen.push(value);
      }
    });
    try {
      const dst = memoryDestination();
      // The cursor is the last id; say id n was written at n seconds after the epoch.
      const source = { ...memorySource(rows(25)), cursorTime: (c: JsonValue) => Number(c) * 1000 };
      const p = pipeline("timed", base({ source, destination: dst.destination }));
      await p.run();
      expect(seen).toEqual([10_000, 20_000, 25_000]);
      seen.length = 0;
      await p.run();
      expect(seen).toEqual([25_000]); // nothing new: the stored cursor, once
      await p.reset();
      expect(seen).toEqual([25_000, Number.NaN]);

      // A source that cannot read its cursor's time reports nothing and fails nothing.
      seen.length = 0;
      const broken = {
        ...memorySource(rows(5)),
        cursorTime: (): number => {
          throw new Error("unreadable");
        },
      };
      const q = pipeline("timed", base({ source: broken, destination: memoryDestination().destination }));
      expect((await q.run()).status).toBe("succeeded");
      expect(seen).toEqual([]);
    } finally {
      stop();
    }
  });

  it("refuses start() without a schedule with INVALID_ARGUMENT", async () => {
    await expect(pipeline("p", base()).start()).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
  });

  it("writes every batch with its checkpoint, and resumes after it", async () => {
    const mem = memoryDestination();
    const source = memorySource(rows(25));
    const p = pipeline("p", base({ source, destination: mem.destination }));
    const first = await p.run();
    expect(first).toMatchObject({ status: "succeeded", rowsRead: 25, batches: 3 });
    expect(mem.state.checkpoint).toEqual({ v: 1, cursor: 25, full: null });
    expect((await p.run()).rowsRead).toBe(0);
  });

  it("stop() lets the batch being written commit, then ends the run as cancelled", async () => {
    const mem = memoryDestination();
    const p = pipeline("p", base({ destination: mem.destination }));
    const held = mem.hold();
    const running = p.run();
    await held.inside;
    let stopped = false;
    const stopping = p.stop().then(() => (stopped = true));
    await new Promise((r) => setImmediate(r));
    expect(stopped).toBe(false);
    held.release();
    const report = await running;
    await stopping;
    expect(report).toMatchObject({ status: "cancelled", batches: 1, rowsRead: 10 });
    expect(mem.state.checkpoint).toMatchObject({ cursor: 10 });
    await p.stop(); // safe twice
  });

  it("a failing source fails the run with its error, records it, and frees the lock", async () => {
    const source = memorySource(rows(25));
    source.fail = new Error("source went away");
    const p = pipeline("p", base({ source }));
    await expect(p.run()).rejects.toThrow("source went away");
    const status = await p.status();
    expect(status.runs[0]).toMatchObject({ status: "failed", error: { message: "source went away" } });
    expect(status.running).toBe(false);
    source.fail = undefined;
    expect((await p.run()).status).toBe("succeeded");
  });

  it("fails the run with SYNC_QUARANTINE_LIMIT past maxQuarantined, after committing the batches before", async () => {
    const mem = memoryDestination();
    const p = pipeline(
      "p",
      base({
        destination: mem.destination,
        maxQuarantined: 3,
        transform: (row) => {
          if (Number(row.id) > 12) throw new Error("bad");
          return row;
        },
      }),
    );
    const error = await p.run().catch((e: unknown) => e);
    expect(isPatchbayError(error, "SYNC_QUARANTINE_LIMIT")).toBe(true);
    expect(mem.state.rows.size).toBe(10);
  });

  it("passes a change stream's deletes to the destination with the batch", async () => {
    const mem = memoryDestination();
    mem.state.rows.set(99, { id: 99 });
    const p = pipeline(
      "p",
      base({ destination: mem.destination, source: memorySource(rows(5), { deletes: [{ id: 99 }] }) }),
    );
    await p.run();
    expect(mem.state.rows.has(99)).toBe(false);
    expect(mem.state.rows.size).toBe(5);
  });

  it("ignores an onProgress that throws", async () => {
    const p = pipeline("p", base());
    const report = await p.run({
      onProgress: () => {
        throw new Error("ui broke");
      },
    });
    expect(report.status).toBe("succeeded");
  });

  it("runs on its cron schedule after start(), and stop() ends it", async () => {
    const mem = memoryDestination();
    const p = pipeline("p", base({ destination: mem.destination, schedule: "* * * * * *" }));
    await p.start();
    await p.start(); // a no-op
    expect((await p.status()).nextRunAt).toBeInstanceOf(Date);
    while ((await p.status()).runs.length === 0) await new Promise((r) => setTimeout(r, 50));
    await p.stop();
    expect((await p.status()).nextRunAt).toBeUndefined();
    expect(mem.state.rows.size).toBe(25);
    await expect(p.start()).rejects.toMatchObject({ code: "STOPPED" }); // a stopped part stays stopped
  });
});
