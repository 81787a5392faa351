/**
 * Pipelines that overwrite each other (issue 20, item 7): a `full` + `replace` run overlapping an
 * incremental run on the same destination table must not undo what the incremental run wrote.
 * The destination claim fences them: while one pipeline's run writes the table, another's gets
 * SYNC_DESTINATION_BUSY and writes nothing, and a replace stage kept from an interrupted run is
 * refilled when another pipeline wrote the table since it was begun. On the real PostgreSQL,
 * MariaDB and SQLite; after quiescence the destination equals the source.
 */
import { spawnSync } from "node:child_process";
import { hostname } from "node:os";
import { afterEach, beforeEach, describe, expect, inject, it } from "vitest";
import { isPatchbayError } from "../src/core/errors.js";
import { pipeline, type Pipeline } from "../src/sync/pipeline.js";
import { mysqlSyncDb, postgresSyncDb, sqliteSyncDb, type SyncDb } from "./support/sync-dbs.js";

const services = inject("services");
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const backends: Array<{ name: string; reachable: boolean; skipWhy: string; fresh: () => SyncDb }> = [
  {
    name: "PostgreSQL",
    reachable: services.postgres.reachable,
    skipWhy: `PostgreSQL unreachable at ${services.postgres.where}`,
    fresh: () => postgresSyncDb(services.postgres.url),
  },
  {
    name: "MariaDB",
    reachable: services.mysql.reachable,
    skipWhy: `MariaDB unreachable at ${services.mysql.where}`,
    fresh: () => mysqlSyncDb(services.mysql.url),
  },
  { name: "SQLite", reachable: true, skipWhy: "", fresh: () => sqliteSyncDb() },
];

for (const backend of backends) {
  describe(`Sync overlap: ${backend.name}`, () => {
    if (!backend.reachable) {
      it.skip(`skipped: ${backend.skipWhy}`, () => {});
      return;
    }
    let db: SyncDb;
    const pipelines: Pipeline[] = [];
    beforeEach(() => {
      db = backend.fresh();
    });
    afterEach(async () => {
      await Promise.allSettled(pipelines.splice(0).map((p) => p.close()));
      await db.cleanup();
    });

    /** The nightly full + replace and the frequent incremental merge, both writing `dst`. */
    const setup = async () => {
      await db.createTable("src");
      await db.createTable("dst");
      // Even ids, stamped in the past: the odd ones are free for rows inserted behind a full read.
      await db.insert(
        "src",
        Array.from({ length: 600 }, (_, i) => ({
          id: 2 * (i + 1),
          name: `row ${i}`,
          amount: "1.00",
          age: 60,
        })),
      );
      const store = db.store();
      const nightly = pipeline("nightly", {
        store,
        source: db.source({ table: "src", key: "id" }),
        destination: db.destination({ table: "dst", key: "id", write: "replace" }),
        mode: "full",
        batchSize: 100,
      });
      const frequent = pipeline("frequent", {
        store,
        source: db.source({ table: "src", cursor: "updated_at", key: "id", safetyLag: 0 }),
        destination: db.destination({ table: "dst", key: "id", version: "updated_at" }),
        mode: "incremental",
        batchSize: 100,
      });
      pipelines.push(nightly, frequent);
      await frequent.run();
      expect(await db.count("dst")).toBe(600);
      return { nightly, frequent };
    };

    /** Changes behind the full read's position: a row inserted there, a row already read updated. */
    const changeBehind = async () => {
      await db.insert("src", [{ id: 101, name: "inserted during the full run", amount: "5.00" }]);
      await db.update("src", [10], "updated during the full run");
      // A MariaDB source passes rows stamped within the last 1.1 s to a later run.
      await sleep(backend.name === "MariaDB" ? 1300 : 100);
    };

    /** Incremental runs until the destination equals the source, or a few seconds pass. */
    const quiesce = async (frequent: Pipeline) => {
      for (let i = 0; i < 12; i++) {
        await frequent.run();
        if (JSON.stringify(await db.rows("dst")) === JSON.stringify(await db.rows("src"))) return;
        await sleep(250);
      }
    };

    it("an incremental run during a full + replace run is fenced out, and the table ends equal to the source", async () => {
      const { nightly, frequent } = await setup();
      let overlapped: unknown = "not attempted";
      await nightly.run({
        onProgress: async (p) => {
          if (p.batches !== 2) return; // ids up to 400 are staged
          await changeBehind();
          overlapped = await frequent.run().then(
            (r) => r.status,
            (e: unknown) => e,
          );
        },
      });
      await quiesce(frequent);
      const rows = await db.rows("dst");
      expect(rows.find((r) => Number(r.id) === 101)?.name).toBe("inserted during the full run");
      expect(rows.find((r) => Number(r.id) === 10)?.name).toBe("updated during the full run");
      expect(rows).toEqual(await db.rows("src"));
      // How: the incremental run met the full run's claim and wrote nothing.
      expect(isPatchbayError(overlapped, "SYNC_DESTINATION_BUSY")).toBe(true);
      expect((overlapped as { retryable?: boolean }).retryable).toBe(true);
    }, 60_000);

    it("a replace stage kept from an interrupted full run is refilled when another pipeline wrote the table since", async () => {
      const { nightly, frequent } = await setup();
      const stop = new AbortController();
      const interrupted = await nightly.run({
        signal: stop.signal,
        onProgress: (p) => {
          if (p.batches === 2) stop.abort();
        },
      });
      expect(interrupted.status).toBe("cancelled");
      await changeBehind();
      await frequent.run(); // the table is free: it copies both changes
      const copied = await db.rows("dst");
      expect(copied.find((r) => Number(r.id) === 10)?.name).toBe("updated during the full run");
      const resumed = await nightly.run();
      expect(resumed.status).toBe("succeeded");
      await quiesce(frequent);
      const rows = await db.rows("dst");
      expect(rows.find((r) => Number(r.id) === 101)?.name).toBe("inserted during the full run");
      expect(rows.find((r) => Number(r.id) === 10)?.name).toBe("updated during the full run");
      expect(rows).toEqual(await db.rows("src"));
    }, 60_000);

    it("a run of the same pipeline takes the claim over; a released claim is free for any pipeline", async () => {
      const { nightly, frequent } = await setup();
      await nightly.run();
      await frequent.run();
      await nightly.run();
      expect(await db.rows("dst")).toEqual(await db.rows("src"));
      const [claim] = await db.exec(`SELECT pipeline, owner FROM ${db.sqlName("patchbay_sync_claims")}`);
      expect(claim).toMatchObject({ pipeline: "nightly", owner: null });
    }, 60_000);
    it("a claim that ran out is taken by another pipeline: the first run's next write fails with SYNC_LOCK_LOST, and the table ends equal to the source", async () => {
      const { nightly, frequent } = await setup();
      const claims = db.sqlName("patchbay_sync_claims");
      let during: unknown = "not attempted";
      const failed = await nightly
        .run({
          onProgress: async (p) => {
            if (p.batches !== 2) return;
            await changeBehind();
            // As if the full run had committed no batch for longer than its lease.
            await db.exec(`UPDATE ${claims} SET expires_at = 0`);
            during = await frequent.run().then((r) => r.status);
          },
        })
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(during).toBe("succeeded");
      expect(isPatchbayError(failed, "SYNC_LOCK_LOST")).toBe(true);
      await nightly.run(); // its stage was written over by another pipeline: staged again
      await quiesce(frequent);
      expect(await db.rows("dst")).toEqual(await db.rows("src"));
    }, 60_000);

    it("a claim held by a process of this host that is gone is taken at once; a live one is not", async () => {
      const { frequent } = await setup();
      const claims = db.sqlName("patchbay_sync_claims");
      const gone = spawnSync(process.execPath, ["-e", ""]).pid;
      const holdBy = (pid: number) =>
        db.exec(
          `UPDATE ${claims} SET pipeline = 'other', owner = 'a-run', host = '${hostname()}', pid = ${pid}, expires_at = ${Date.now() + 3_600_000}`,
        );
      await holdBy(process.ppid); // alive: the test runner's parent
      const busy = await frequent.run().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isPatchbayError(busy, "SYNC_DESTINATION_BUSY")).toBe(true);
      expect(busy).toMatchObject({ holder: "other", table: expect.stringContaining("dst") as string });
      await holdBy(gone); // SIGKILLed, say: it cannot renew
      expect((await frequent.run()).status).toBe("succeeded");
    }, 60_000);
  });
}
