/**
 * The sync conformance suite: the SyncSource and SyncDestination invariants of
 * `src/sync/contracts.ts`, and the pipeline guarantees (no row skipped or duplicated by paging,
 * late commits, deletes, crashes), checked against one real backend (source and destination
 * tables in the same database). Each test asserts destination == source by key and by content
 * afterwards. An adapter's test file calls {@link defineSyncConformance} inside a vitest run.
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { isPatchbayError } from "../../core/errors.js";
import type { Row } from "../../sync/contracts.js";
import { pipeline, type Pipeline, type PipelineOptions } from "../../sync/pipeline.js";
import type { SqlSourceOptions } from "../../sync/keyset.js";
import type { SqlDestinationOptions } from "../../sync/sql-destination.js";
import type { SqlStore } from "../../store/sql-store.js";
import type { SyncDestination, SyncSource } from "../../sync/contracts.js";
import { objectSchema } from "./events.js";

/** A test row: `age` seconds before the database's clock, or an exact `at` (µs since epoch). */
export interface TestRow {
  id: number;
  name: string;
  amount: string;
  age?: number;
  at?: number;
}

/** A row read back, in a form equal across source and destination of the same backend. */
export interface StoredRow {
  id: number;
  name: string;
  amount: string;
  updated_at: string;
}

/**
 * One isolated database for one test of {@link defineSyncConformance}: tables made and changed
 * in the backend's own SQL, and the adapter's source, destination and pipeline store on them.
 */
export interface SyncDatabase {
  /** JSON that rebuilds the same database handles in another process (see `child`). */
  config: object;
  /** Qualified table name for adapter options. */
  table(name: string): string;
  /** Quoted, qualified table name for raw SQL in {@link SyncDatabase.exec}. */
  sqlName(name: string): string;
  /** Runs SQL in the backend's own dialect and placeholders. */
  exec(sql: string, params?: unknown[]): Promise<Record<string, unknown>[]>;
  /** `(id, name, amount, updated_at)` with a primary key on id (or none) and an index on (updated_at, id). */
  createTable(name: string, options?: { primaryKey?: boolean }): Promise<void>;
  insert(table: string, rows: readonly TestRow[]): Promise<void>;
  /** Sets name and moves updated_at to the database's clock minus `age` seconds. */
  update(table: string, ids: readonly number[], name: string, age?: number): Promise<void>;
  remove(table: string, ids: readonly number[]): Promise<void>;
  rows(table: string): Promise<StoredRow[]>;
  count(table: string): Promise<number>;
  /** The database clock, µs since the epoch. */
  nowMicros(): Promise<number>;
  source(options: Omit<SqlSourceOptions, "table"> & { table: string }): SyncSource;
  destination(options: SqlDestinationOptions): SyncDestination;
  /** A pipeline Store. */
  store(): SqlStore;
  /** Makes the insert of row `id` into `table` stall inside its transaction (for SIGKILL tests). */
  stallOn(table: string, id: number): Promise<void>;
  /** Resolves once some writer is stalled inside a transaction by {@link SyncDatabase.stallOn}. */
  waitForStall(): Promise<void>;
  /** Ends the server side of a stalled writer whose process was killed; removes the stall. */
  clearStall(table: string): Promise<void>;
  /**
   * For the test that SIGKILLs a pipeline in another process: `module` (an absolute file path)
   * exports `export`, a function of {@link SyncDatabase.config} returning this database. Without
   * it that test is skipped.
   */
  child?: { module: string; export: string };
  cleanup(): Promise<void>;
}

/** How {@link defineSyncConformance} reaches an adapter. */
export interface SyncHarness {
  name: string;
  /** A fresh, isolated, empty database for one test. */
  fresh(): SyncDatabase;
}

const here = fileURLToPath(import.meta.url);
const CHILD = here.replace(/sync\.(ts|js)$/, "sync-child.$1");

/** `n` rows from `first`, the later ids with the newer timestamps (`age` seconds before now). */
export function testRows(n: number, first = 1, oldest = 5000): TestRow[] {
  return Array.from({ length: n }, (_, i) => ({
    id: first + i,
    name: `row ${first + i}`,
    amount: `${((first + i) * 1.25).toFixed(2)}`,
    age: oldest - i * (oldest / (n + 1)),
  }));
}

async function expectCode(promise: Promise<unknown>, code: string) {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isPatchbayError(error, code), `expected ${code}, got ${String(error)}`).toBe(true);
  return error;
}

function expectThrowsCode(fn: () => unknown, code: string) {
  let error: unknown;
  try {
    fn();
  } catch (e) {
    error = e;
  }
  expect(isPatchbayError(error, code), `expected ${code}, got ${String(error)}`).toBe(true);
}

const byId = (rows: StoredRow[]) => new Map(rows.map((r) => [Number(r.id), r]));

export function defineSyncConformance(harness: SyncHarness): void {
  describe(`Sync conformance: ${harness.name}`, () => {
    let db: SyncDatabase;
    const pipelines: Pipeline[] = [];

    beforeEach(() => {
      db = harness.fresh();
    });
    afterEach(async () => {
      await Promise.allSettled(pipelines.splice(0).map((p) => p.close()));
      await db.cleanup();
    });

    const sourceOptions = (o: Partial<SqlSourceOptions> = {}) => ({
      table: "src",
      cursor: "updated_at",
      key: "id",
      safetyLag: 0,
      ...o,
    });
    const make = (
      o: Partial<PipelineOptions> & {
        src?: Partial<SqlSourceOptions>;
        dst?: Partial<SqlDestinationOptions>;
      } = {},
    ) => {
      const { src, dst, ...rest } = o;
      const p = pipeline(rest.mode === "full" ? "orders_full" : "orders", {
        store: db.store(),
        source: db.source(sourceOptions(src)),
        destination: db.destination({ table: "dst", key: "id", version: "updated_at", ...dst }),
        mode: "incremental",
        batchSize: 100,
        ...rest,
      });
      pipelines.push(p);
      return p;
    };
    const expectEqual = async (from = "src", to = "dst") => {
      const [source, destination] = await Promise.all([db.rows(from), db.rows(to)]);
      expect(destination.length).toBe(source.length);
      expect(destination).toEqual(source);
    };
    // Rows stamped just now wait while a transaction that began before them is open (in this
    // database: other tests' too) and, on MariaDB, for 1.1 s (docs/sync.md): delayed, never
    // skipped. Runs again until the destination caught up; a skipped row never would.
    const catchUp = async (p: Pipeline) => {
      for (let i = 0; i < 40; i++) {
        await p.run();
        const [source, destination] = await Promise.all([db.rows("src"), db.rows("dst")]);
        if (JSON.stringify(source) === JSON.stringify(destination)) return;
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    };
    const tables = async (options: { primaryKey?: boolean } = {}) => {
      await db.createTable("src");
      await db.createTable("dst", options);
    };

    describe("SyncSource", () => {
      it("reading from any batch's cursor yields exactly the rows after that batch", async () => {
        await tables();
        await db.insert("src", testRows(450));
        const source = db.source(sourceOptions());
        const read = async (cursor: unknown) => {
          const batches: Array<{ ids: number[]; cursor: unknown }> = [];
          const signal = new AbortController().signal;
          for await (const b of source.read({
            mode: "incremental",
            cursor: cursor as never,
            batchSize: 100,
            signal,
          })) {
            batches.push({ ids: b.rows.map((r) => Number(r.id)), cursor: b.cursor });
          }
          return batches;
        };
        const all = await read(undefined);
        expect(all.map((b) => b.ids.length)).toEqual([100, 100, 100, 100, 50]);
        expect(all.flatMap((b) => b.ids)).toEqual(Array.from({ length: 450 }, (_, i) => i + 1));
        for (const k of [0, 2, 3]) {
          const rest = await read(JSON.parse(JSON.stringify(all[k]?.cursor)));
          expect(rest.flatMap((b) => b.ids)).toEqual(all.slice(k + 1).flatMap((b) => b.ids));
        }
        expect(await source.count?.({ mode: "incremental", cursor: undefined })).toBe(450);
      });

      it("refuses a cursor made by other paging columns", async () => {
        await tables();
        await db.insert("src", testRows(10));
        const source = db.source(sourceOptions());
        const batches = source.read({
          mode: "incremental",
          cursor: { columns: ["other"], values: [1] },
          batchSize: 10,
          signal: new AbortController().signal,
        });
        await expectCode(
          (async () => {
            for await (const _ of batches) void _;
          })(),
          "SYNC_CURSOR_INVALID",
        );
      });
    });

    describe("SyncDestination", () => {
      it("a newer session's claim fences out the older one: its write fails and changes nothing", async () => {
        await tables();
        const destination = db.destination({ table: "dst", key: "id" });
        const store = db.store();
        await store.open();
        const ctx = (runId: string) => ({
          pipeline: "fence",
          runId,
          state: store.state,
          logger: console as never,
        });
        const older = await destination.open(ctx("run-a"));
        const newer = await destination.open(ctx("run-b"));
        try {
          await older.claim();
          await newer.claim();
          const rows: Row[] = [{ id: 1, name: "x", amount: "1.00", updated_at: "2026-01-01 00:00:00" }];
          await expectCode(
            older.write({ rows, deletes: [], quarantine: [], checkpoint: { v: 1 } }),
            "SYNC_LOCK_LOST",
          );
          expect(await db.count("dst")).toBe(0);
          await newer.write({ rows, deletes: [], quarantine: [], checkpoint: { v: 2 } });
          expect(await db.count("dst")).toBe(1);
          expect(await newer.readCheckpoint()).toEqual({ v: 2 });
        } finally {
          await older.close();
          await newer.close();
        }
      });

      it("another pipeline's session cannot claim the table while one holds it (SYNC_DESTINATION_BUSY); it can once the holder closed", async () => {
        await tables();
        const store = db.store();
        await store.open();
        const ctx = (pipeline: string, runId: string) => ({
          pipeline,
          runId,
          state: store.state,
          logger: console as never,
        });
        const holder = await db
          .destination({ table: "dst", key: "id", write: "replace" })
          .open(ctx("full", "run-a"));
        const other = await db.destination({ table: "dst", key: "id" }).open(ctx("incremental", "run-b"));
        try {
          await holder.claim();
          await expectCode(other.claim(), "SYNC_DESTINATION_BUSY");
          await holder.close();
          expect(await other.claim()).toBeUndefined();
          const rows: Row[] = [{ id: 1, name: "x", amount: "1.00", updated_at: "2026-01-01 00:00:00" }];
          await other.write({ rows, deletes: [], quarantine: [], checkpoint: { v: 1 } });
          expect(await db.count("dst")).toBe(1);
        } finally {
          await holder.close();
          await other.close();
        }
      });

      it("a batch's deletes are applied before its rows: a delete and a row sharing a key leave the row", async () => {
        await tables();
        const destination = db.destination({ table: "dst", key: "id" });
        const store = db.store();
        await store.open();
        const session = await destination.open({
          pipeline: "deletes_first",
          runId: "run-a",
          state: store.state,
          logger: console as never,
        });
        try {
          await session.claim();
          const row = (name: string): Row => ({
            id: 1,
            name,
            amount: "1.00",
            updated_at: "2026-01-01 00:00:00",
          });
          await session.write({ rows: [row("old")], deletes: [], quarantine: [], checkpoint: { v: 1 } });
          // A change stream keyed finer than the table (every column): an update as delete + upsert.
          await session.write({
            rows: [row("new")],
            deletes: [{ id: 1 }],
            quarantine: [],
            checkpoint: { v: 2 },
          });
          expect((await db.rows("dst")).map((r) => [Number(r.id), r.name])).toEqual([[1, "new"]]);
        } finally {
          await session.close();
        }
      });

      it("merge applies a row only when it is newer than the stored one: replays change nothing", async () => {
        await tables();
        await db.insert("src", [
          { id: 1, name: "old", amount: "1.00", age: 100 },
          { id: 2, name: "two", amount: "2.00", age: 90 },
        ]);
        await db.insert("dst", [{ id: 1, name: "new", amount: "9.00", age: 10 }]);
        const report = await make().run();
        const rows = await db.rows("dst");
        expect(rows.map((r) => r.name)).toEqual(["new", "two"]);
        expect(report.rowsRead).toBe(2);
        expect(report.rowsWritten).toBe(1);
      });
    });

    describe("merge", () => {
      it("batches mixing new and existing keys: older stored rows are updated, newer ones kept", async () => {
        await tables();
        await db.insert("src", testRows(300));
        const older = Array.from({ length: 30 }, (_, i) => i * 10 + 1);
        const newer = Array.from({ length: 30 }, (_, i) => i * 10 + 5);
        await db.insert("dst", [
          ...older.map((id) => ({ id, name: "stale", amount: "0.00", age: 9000 })),
          ...newer.map((id) => ({ id, name: "fresher", amount: "0.00", age: 0.5 })),
        ]);
        const report = await make().run();
        expect(report).toMatchObject({ status: "succeeded", rowsRead: 300, rowsWritten: 270 });
        const source = await db.rows("src");
        const destination = byId(await db.rows("dst"));
        for (const row of source) {
          if (newer.includes(row.id)) expect(destination.get(row.id)?.name).toBe("fresher");
          else expect(destination.get(row.id)).toEqual(row);
        }
      });
    });

    describe("incremental", () => {
      it("copies every row; source and destination are equal by key and content", async () => {
        await tables();
        await db.insert("src", testRows(1000));
        const p = make();
        const report = await p.run();
        expect(report).toMatchObject({
          status: "succeeded",
          rowsRead: 1000,
          rowsWritten: 1000,
          batches: 10,
          rowsQuarantined: 0,
        });
        await expectEqual();
        const again = await p.run();
        expect(again).toMatchObject({ status: "succeeded", rowsRead: 0, rowsWritten: 0 });
        const status = await p.status();
        expect(status.runs.map((r) => r.status)).toEqual(["succeeded", "succeeded"]);
        expect(status.running).toBe(false);
        expect(status.checkpoint).toMatchObject({ v: 1, full: null });
      });

      it("rows updated during a run are neither skipped nor lost: the next run brings their new version", async () => {
        await tables();
        await db.insert("src", testRows(1000));
        const behind = [10, 20, 30];
        const ahead = [800, 900, 950];
        let touched = false;
        const p = make();
        const first = await p.run({
          onProgress: async (progress) => {
            if (progress.batches !== 3 || touched) return;
            touched = true;
            await db.update("src", [...behind, ...ahead], "changed during the run");
            await db.insert("src", testRows(10, 2001, 0.001));
          },
        });
        expect(first.status).toBe("succeeded");
        const [source, destination] = await Promise.all([db.rows("src"), db.rows("dst")]);
        const dst = byId(destination);
        for (const row of source) {
          if ([...behind, ...ahead].includes(row.id) || row.id > 2000) continue;
          expect(dst.get(row.id)).toEqual(row);
        }
        await catchUp(p);
        await expectEqual();
      });

      it("many rows sharing one cursor value across batch boundaries: each read exactly once, even across a stop", async () => {
        await tables();
        const tie = (await db.nowMicros()) - 60_000_000;
        await db.insert("src", [
          ...testRows(50, 1, 200),
          ...testRows(350, 51).map((r) => ({ ...r, age: undefined, at: tie })),
          // Newer than the tie, but not within a run's bound of now (on MariaDB 1.1 s plus the age
          // of any open transaction): rows that recent are rightly left to the next run.
          ...testRows(50, 401, 30).map((r) => ({ ...r, age: (r.age ?? 0) + 5 })),
        ]);
        const stop = new AbortController();
        const p = make();
        const first = await p.run({
          signal: stop.signal,
          onProgress: (progress) => {
            if (progress.batches === 2) stop.abort();
          },
        });
        expect(first).toMatchObject({ status: "cancelled", rowsRead: 200 });
        const second = await p.run();
        expect(second.status).toBe("succeeded");
        // Each row read exactly once across the runs: none twice (the sum would pass 450), none
        // missed (the tables would differ). A transaction open elsewhere on the server may leave
        // the newest rows to a later run (MariaDB's bound); they are counted when it reads them.
        let read = first.rowsRead + second.rowsRead;
        for (let i = 0; i < 40 && read < 450; i++) {
          await new Promise((resolve) => setTimeout(resolve, 250));
          read += (await p.run()).rowsRead;
        }
        expect(read).toBe(450);
        await expectEqual();
      });

      it("a row committed late with an older timestamp is picked up when inside the lookback window", async () => {
        await tables();
        await db.insert("src", testRows(100, 1, 100));
        const p = make({ src: { lookback: "2m" } });
        await p.run();
        // Committed now, but stamped 30 s before the checkpoint (a long transaction).
        await db.insert("src", [{ id: 500, name: "late", amount: "5.00", age: 30 }]);
        const second = await p.run();
        expect(second.rowsRead).toBeGreaterThan(1);
        await expectEqual();
      });

      it("without a lookback window such a late row is missed (why lookback exists)", async () => {
        await tables();
        await db.insert("src", testRows(100, 1, 100));
        const p = make();
        await p.run();
        await db.insert("src", [{ id: 500, name: "late", amount: "5.00", age: 30 }]);
        await p.run();
        expect((await db.rows("dst")).some((r) => r.id === 500)).toBe(false);
      });

      it("rows newer than the source clock minus the safety lag wait for a later run", async () => {
        await tables();
        await db.insert("src", [
          ...testRows(20).map((r) => ({ ...r, age: 8000 - r.id })),
          ...testRows(5, 21).map((r) => ({ ...r, age: 30 - r.id })),
        ]);
        const lagged = make({ src: { safetyLag: "1h" } });
        expect((await lagged.run()).rowsRead).toBe(20);
        expect(await db.count("dst")).toBe(20);
        const next = make();
        expect((await next.run()).rowsRead).toBe(5);
        await expectEqual();
      });

      it("deletes are not seen by incremental runs, and are by a full run", async () => {
        await tables();
        await db.insert("src", testRows(100));
        await make().run();
        await db.remove("src", [3, 33, 66]);
        await make().run();
        expect(await db.count("dst")).toBe(100);
        const full = make({ mode: "full", dst: { write: "replace", version: undefined } });
        const report = await full.run();
        expect(report.rowsDeleted).toBe(3);
        await expectEqual();
      });

      it("reset() forgets the checkpoint: the next run reads everything again", async () => {
        await tables();
        await db.insert("src", testRows(150));
        const p = make();
        await p.run();
        await p.reset();
        expect((await p.status()).checkpoint).toBeUndefined();
        expect((await p.run()).rowsRead).toBe(150);
        await expectEqual();
      });
    });

    describe("append", () => {
      it("appends only new rows, each exactly once", async () => {
        await tables({ primaryKey: false });
        await db.insert("src", testRows(250));
        const p = make({ mode: "append", dst: { write: "append", version: undefined } });
        await p.run();
        await db.insert("src", testRows(30, 251, 0.5));
        await catchUp(p);
        await expectEqual();
      });
    });

    describe("full", () => {
      it("removes deleted rows atomically: a concurrent reader sees the old table or the new one, never an empty or half one", async () => {
        await tables();
        await db.insert("src", testRows(1000));
        const p = make({ mode: "full", dst: { write: "replace", version: undefined } });
        await p.run();
        await expectEqual();
        await db.remove(
          "src",
          Array.from({ length: 100 }, (_, i) => i * 10 + 1),
        );
        await db.update(
          "src",
          Array.from({ length: 50 }, (_, i) => i * 10 + 2),
          "updated",
        );
        await db.insert("src", testRows(30, 5001, 1));
        const seen: number[] = [];
        let done = false;
        const reader = (async () => {
          while (!done) {
            seen.push(await db.count("dst"));
            await new Promise((resolve) => setImmediate(resolve));
          }
        })();
        const report = await p.run().finally(() => (done = true));
        await reader;
        seen.push(await db.count("dst"));
        expect(report).toMatchObject({ status: "succeeded", rowsRead: 930, rowsDeleted: 100 });
        expect(new Set(seen)).toEqual(new Set([1000, 930]));
        await expectEqual();
      });

      it("a full run stopped half way leaves the table untouched, and the next run finishes from its stage", async () => {
        await tables();
        await db.insert("src", testRows(500));
        const p = make({ mode: "full", dst: { write: "replace", version: undefined } });
        await p.run();
        await db.remove("src", [1, 2, 3]);
        const stop = new AbortController();
        const first = await p.run({
          signal: stop.signal,
          onProgress: (pr) => (pr.batches === 2 ? stop.abort() : undefined),
        });
        expect(first.status).toBe("cancelled");
        expect(await db.count("dst")).toBe(500);
        const second = await p.run();
        // It staged 200 of the 497 rows before it stopped; the other 297 come from where it stopped.
        expect(second).toMatchObject({ status: "succeeded", rowsRead: 297, rowsDeleted: 3 });
        await expectEqual();
      });
    });

    describe("quarantine and drift", () => {
      it("a bad row is quarantined with its reason while the rest load", async () => {
        await tables();
        await db.insert("src", testRows(300));
        await db.update("src", [13], "boom", 4000);
        await db.exec(`UPDATE ${db.sqlName("src")} SET amount = -1 WHERE id = 27`);
        const p = make({
          transform: (row) => {
            if (row.name === "boom") throw new Error("cannot transform row 13");
            return row;
          },
          schema: objectSchema({
            amount: (a) =>
              typeof a !== "string"
                ? "expected a string"
                : Number(a) >= 0
                  ? undefined
                  : "amount must not be negative",
          }),
        });
        expect(await p.quarantined()).toEqual([]); // no quarantine table yet: nothing, and none made
        const report = await p.run();
        expect(report).toMatchObject({
          status: "succeeded",
          rowsRead: 300,
          rowsQuarantined: 2,
          rowsWritten: 298,
        });
        const kept = (await db.rows("src")).filter((r) => r.id !== 13 && r.id !== 27);
        expect(await db.rows("dst")).toEqual(kept);
        const quarantined = await db.exec(
          `SELECT reason, error, row_data FROM ${db.sqlName("patchbay_sync_quarantine")} ORDER BY reason`,
        );
        expect(quarantined.map((q) => q.reason)).toEqual(["schema", "transform"]);
        expect(String(quarantined[1]?.error)).toContain("cannot transform row 13");
        expect(String(quarantined[0]?.error)).toContain("amount must not be negative");
        expect(JSON.parse(String(quarantined[0]?.row_data))).toMatchObject({ id: 27 });

        // Read back through the pipeline: newest first, paged by id.
        const [newest, ...more] = (await p.quarantined({ limit: 1 })) ?? [];
        expect(more).toEqual([]);
        const [older, ...none] = (await p.quarantined({ limit: 5, before: newest!.id })) ?? [];
        expect(none).toEqual([]);
        expect(Number(older!.id)).toBeLessThan(Number(newest!.id));
        expect([newest!.row, older!.row]).toEqual(
          expect.arrayContaining([expect.objectContaining({ id: 13 }), expect.objectContaining({ id: 27 })]),
        );
        for (const q of [newest!, older!]) {
          expect(q.runId).toBe(report.id);
          expect(Math.abs(q.at - Date.now())).toBeLessThan(60_000);
        }
        expect([newest!, older!].find((q) => q.reason === "transform")?.error.message).toBe(
          "cannot transform row 13",
        );

        // The cursor's time: the newest source row's stamp (about 17 s before the database's clock).
        const source = db.source(sourceOptions());
        const at = source.cursorTime?.(report.cursorAfter ?? null);
        await source.close();
        expect(at).toBeGreaterThan(Date.now() - 120_000);
        expect(at).toBeLessThan(Date.now());
      });

      it("a bad row re-read by the lookback window is quarantined once, not once per run", async () => {
        await tables();
        await db.insert("src", testRows(50, 1, 600));
        await db.update("src", [13], "boom", 300);
        const p = make({
          src: { lookback: "1h" },
          transform: (row) => {
            if (row.name === "boom") throw new Error("cannot transform row 13");
            return row;
          },
        });
        for (let i = 0; i < 3; i++) expect((await p.run()).status).toBe("succeeded");
        const quarantined = await db.exec(
          `SELECT reason, row_data FROM ${db.sqlName("patchbay_sync_quarantine")}`,
        );
        expect(quarantined.map((q) => q.reason)).toEqual(["transform"]);
        expect(JSON.parse(String(quarantined[0]?.row_data))).toMatchObject({ id: 13 });
        // A different failure of the same row is a new entry.
        await db.update("src", [13], "boom", 200);
        await p.run();
        expect(await db.count("patchbay_sync_quarantine")).toBe(2);
        const source = (await db.rows("src")).filter((r) => r.id !== 13);
        expect(await db.rows("dst")).toEqual(source);
      });

      it("drift freeze: a new column fails the run before anything of the batch is written", async () => {
        await tables();
        await db.insert("src", testRows(50));
        const p = make({ drift: "freeze", transform: (row) => ({ ...row, extra: "x" }) });
        const error = await expectCode(p.run(), "SYNC_SCHEMA_DRIFT");
        expect((error as { columns: string[] }).columns).toEqual(["extra"]);
        expect(await db.count("dst")).toBe(0);
        expect((await p.status()).runs[0]).toMatchObject({
          status: "failed",
          error: { code: "SYNC_SCHEMA_DRIFT" },
        });
      });

      it("drift discard: rows with unknown columns are quarantined, the others load", async () => {
        await tables();
        await db.insert("src", testRows(50));
        const p = make({
          drift: "discard",
          transform: (row) => (Number(row.id) % 2 ? row : { ...row, extra: "x" }),
        });
        const report = await p.run();
        expect(report).toMatchObject({ rowsQuarantined: 25, rowsWritten: 25 });
        expect((await db.rows("dst")).map((r) => r.id)).toEqual(
          Array.from({ length: 25 }, (_, i) => i * 2 + 1),
        );
      });

      it("drift evolve: missing columns are added and a missing table is created", async () => {
        await tables();
        await db.insert("src", testRows(50));
        const p = make({ drift: "evolve", transform: (row) => ({ ...row, extra: `e${String(row.id)}` }) });
        await p.run();
        const extra = await db.exec(`SELECT extra FROM ${db.sqlName("dst")} ORDER BY id`);
        expect(extra.map((r) => r.extra)).toEqual(Array.from({ length: 50 }, (_, i) => `e${i + 1}`));
        const fresh = make({ drift: "evolve", dst: { table: "created_by_sync" } });
        await fresh.run();
        expect(await db.count("created_by_sync")).toBe(50);
      });

      it("a hostile table or column name is rejected with INVALID_ARGUMENT and nothing is executed", async () => {
        await db.createTable("y");
        await db.insert("y", testRows(3));
        for (const hostile of [
          'x"; DROP TABLE y; --',
          "x`; DROP TABLE y; --",
          "y; DROP TABLE y",
          "a.b.c",
          "",
          "y--",
        ]) {
          expectThrowsCode(() => db.source(sourceOptions({ table: hostile })), "INVALID_ARGUMENT");
          expectThrowsCode(() => db.destination({ table: hostile, key: "id" }), "INVALID_ARGUMENT");
          expectThrowsCode(
            () => db.source(sourceOptions({ table: "y", cursor: hostile })),
            "INVALID_ARGUMENT",
          );
          expectThrowsCode(() => db.destination({ table: "y", key: ["id", hostile] }), "INVALID_ARGUMENT");
        }
        // A hostile column name produced by a transform is quarantined, never turned into SQL.
        await tables();
        await db.insert("src", testRows(5));
        const report = await make({
          drift: "evolve",
          transform: (row) => (row.id === 2 ? { ...row, 'x"; DROP TABLE y; --': 1 } : row),
        }).run();
        expect(report).toMatchObject({ rowsQuarantined: 1, rowsWritten: 4 });
        expect(await db.count("y")).toBe(3);
      });
    });

    describe("runs", () => {
      it("never runs twice at once: a second run of the pipeline gets SYNC_LOCKED", async () => {
        await tables();
        await db.insert("src", testRows(300));
        const first = make();
        const second = make();
        let release!: () => void;
        const gate = new Promise<void>((resolve) => (release = resolve));
        let inside!: () => void;
        const entered = new Promise<void>((resolve) => (inside = resolve));
        const running = first.run({
          onProgress: async () => {
            inside();
            await gate;
          },
        });
        await entered;
        await expectCode(second.run(), "SYNC_LOCKED");
        expect((await second.status()).running).toBe(true);
        await expectCode(second.reset(), "SYNC_LOCKED");
        release();
        expect((await running).status).toBe("succeeded");
        await expectEqual();
      });

      it("a run SIGKILLed in the middle of a batch, twice, then resumed: no row skipped, none duplicated", async (test) => {
        const factory = db.child;
        if (!factory) return test.skip("the database gives no child factory");
        await tables({ primaryKey: false });
        await db.insert("src", testRows(1000));
        const args = {
          module: factory.module,
          export: factory.export,
          config: db.config,
          name: "killed",
          mode: "incremental",
          batchSize: 100,
          source: sourceOptions(),
          destination: { table: "dst", key: "id", write: "append" },
        };
        for (const stallAt of [350, 720]) {
          await db.stallOn("dst", stallAt);
          const loader = CHILD.endsWith(".ts") ? ["--import", "tsx"] : [];
          const child = spawn(process.execPath, [...loader, CHILD, JSON.stringify(args)], {
            stdio: ["ignore", "pipe", "pipe"],
          });
          let err = "";
          child.stderr.on("data", (d: Buffer) => (err += d.toString()));
          const exited = new Promise<NodeJS.Signals | null>((resolve) =>
            child.once("exit", (_code, signal) => resolve(signal)),
          );
          try {
            await Promise.race([
              db.waitForStall(),
              exited.then(() => Promise.reject(new Error(`child exited before stalling: ${err}`))),
            ]);
          } finally {
            child.kill("SIGKILL");
          }
          expect(await exited).toBe("SIGKILL");
          await db.clearStall("dst");
          // Killed inside the batch holding the stalled row: only whole batches before it landed.
          expect(await db.count("dst")).toBe(Math.floor((stallAt - 1) / 100) * 100);
        }
        const p = pipeline("killed", {
          store: db.store(),
          source: db.source(sourceOptions()),
          destination: db.destination({ table: "dst", key: "id", write: "append" }),
          mode: "incremental",
          batchSize: 100,
        });
        pipelines.push(p);
        const report = await p.run();
        expect(report).toMatchObject({ status: "succeeded", rowsRead: 300 });
        await expectEqual();
        const runs = (await p.status()).runs;
        expect(runs.map((r) => r.status)).toEqual(["succeeded", "abandoned", "abandoned"]);
      });
    });
  });
}
