/**
 * Consumer-group pause at its edges, on MariaDB and SQLite: a pause during a burst followed by a
 * stop and a restart that comes up paused, pause and resume racing from two processes' buses, and
 * group names that must be refused or kept apart. Counted in effect rows: none lost, none doubled,
 * none stuck, nothing dead-lettered.
 */
import { afterEach, beforeEach, describe, expect, inject, it } from "vitest";
import { createEventBus, type EventBus } from "../src/bus/bus.js";
import { localTransport } from "../src/bus/local-transport.js";
import { groupPauses } from "../src/bus/pause.js";
import { isPatchbayError } from "../src/core/errors.js";
import type { StoreTx } from "../src/store/contracts.js";
import type { SqlStore } from "../src/store/sql-store.js";
import { OrderCreated } from "../src/adapter/conformance/events.js";
import { until } from "./conformance/transport.js";
import { mysqlDatabase, postgresDatabase, sqliteDatabase, type IsolatedDatabase } from "./support/stores.js";

const { mysql: maria, postgres: pg } = inject("services");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const databases: Array<[string, () => IsolatedDatabase]> = [["SQLite", sqliteDatabase]];
if (pg.reachable) databases.push(["PostgreSQL", () => postgresDatabase(pg.url)]);
if (maria.reachable) databases.push(["MariaDB", () => mysqlDatabase(maria.url)]);

for (const [name, database] of databases) {
  describe(`bus pause edges on ${name}`, () => {
    let db: IsolatedDatabase;
    let store: SqlStore;
    const stores: SqlStore[] = [];
    const buses: EventBus[] = [];
    /** A bus as another process would have it: its own store connections. */
    const processBus = async (handle: (id: string, tx: StoreTx) => Promise<void>) => {
      const own = db.make();
      stores.push(own);
      await own.open();
      const b = createEventBus({
        store: own,
        transport: localTransport(own, { lease: "2s", pollInterval: "100ms" }),
        events: [OrderCreated],
        pausePollInterval: "100ms",
      });
      b.subscribe(OrderCreated, { group: "burst", concurrency: 4 }, (e, ctx) => handle(e.id, ctx.tx));
      buses.push(b);
      return b;
    };
    const p = (n: number) => (store.dialect.placeholders === "numbered" ? `$${n}` : "?");
    const effects = async () => {
      const { rows } = await store.query<{ n: unknown; d: unknown }>(
        "SELECT COUNT(*) AS n, COUNT(DISTINCT event_id) AS d FROM effects",
      );
      return { rows: Number(rows[0]?.n), distinct: Number(rows[0]?.d) };
    };
    const effect = (id: string, tx: StoreTx) =>
      tx.query(`INSERT INTO effects (event_id) VALUES (${p(1)})`, [id]).then(() => undefined);

    beforeEach(async () => {
      db = database();
      store = db.make();
      await store.open();
      await store.query(`CREATE TABLE effects (event_id ${db.keyText} NOT NULL)`);
    });
    afterEach(async () => {
      await Promise.all(buses.splice(0).map((b) => b.stop({ timeout: "5s" })));
      await Promise.all(stores.splice(0).map((s) => s.close()));
      await store.close();
      await db.cleanup();
    });

    it("paused mid-burst, stopped, restarted paused, resumed: every message handled exactly once, none dead-lettered", async () => {
      const N = 60;
      let handledBeforeStop = 0;
      // Past the tenth, handlers wait until the pause is asked for, then go on slowly: the pause
      // lands mid-burst however loaded the machine is.
      let pauseAsked!: () => void;
      const asked = new Promise<void>((resolve) => (pauseAsked = resolve));
      const first = await processBus(async (id, tx) => {
        if (++handledBeforeStop > 10) {
          await asked;
          await sleep(100);
        } else await sleep(20);
        await effect(id, tx);
      });
      await first.start();
      await first.transaction((tx) =>
        tx.publishMany(
          Array.from({ length: N }, (_, i) => ({ event: OrderCreated, data: { orderId: `o-${i}`, qty: 1 } })),
        ),
      );
      await until(() => handledBeforeStop > 10, 20_000, "part of the burst handled");
      const pausing = first.pause("burst", { by: "hostile" });
      pauseAsked();
      await pausing;
      await first.stop({ timeout: "5s" });
      const afterFirst = await effects();
      expect(afterFirst.rows).toBe(afterFirst.distinct);
      expect(afterFirst.rows).toBeLessThan(N);

      let handledAfterRestart = 0;
      const second = await processBus(async (id, tx) => {
        handledAfterRestart++;
        await effect(id, tx);
      });
      await second.start();
      await sleep(1_000);
      expect(handledAfterRestart).toBe(0); // it came up paused
      expect((await second.paused()).map((g) => g.group)).toEqual(["burst"]);
      await second.resume("burst");
      await until(async () => (await effects()).rows >= N, 30_000, `${N} effects`);
      await sleep(500);
      expect(await effects()).toEqual({ rows: N, distinct: N });
      expect(await second.deadLetters.count()).toBe(0);
      const jobs = await store.query<{ n: unknown }>(
        `SELECT COUNT(*) AS n FROM ${store.dialect.table("bus_jobs")}`,
      );
      expect(Number(jobs.rows[0]?.n)).toBe(0); // nothing stuck
    });

    it("pause and resume racing from two processes: both buses end on the stored state, nothing lost or doubled", async () => {
      const N = 40;
      const a = await processBus(effect);
      const b = await processBus(effect);
      await Promise.all([a.start(), b.start()]);
      const publishing = (async () => {
        for (let i = 0; i < N; i++) await a.publish(OrderCreated, { orderId: `o-${i}`, qty: 1 });
      })();
      const racing = Array.from({ length: 12 }, (_, i) =>
        (i % 2 === 0 ? (i % 4 === 0 ? a : b).pause("burst") : (i % 3 === 0 ? a : b).resume("burst")).catch(
          (e: unknown) => e,
        ),
      );
      const outcomes = await Promise.all(racing);
      await publishing;
      for (const outcome of outcomes) expect(outcome).toBeUndefined();
      // Settle on paused: within their polls neither bus takes any more.
      await b.pause("burst");
      await sleep(800);
      const paused = await effects();
      await sleep(800);
      expect(await effects()).toEqual(paused);
      await a.resume("burst");
      await until(async () => (await effects()).rows >= N, 30_000, `${N} effects`);
      await sleep(500);
      expect(await effects()).toEqual({ rows: N, distinct: N });
      expect(await a.deadLetters.count()).toBe(0);
    });

    it("pause and stop at once while handlers run: both settle, and after a restart and resume each message is handled once", async () => {
      const N = 30;
      let running = 0;
      const first = await processBus(async (id, tx) => {
        running++;
        await sleep(50);
        await effect(id, tx);
      });
      await first.start();
      for (let i = 0; i < N; i++) await first.publish(OrderCreated, { orderId: `o-${i}`, qty: 1 });
      await until(() => running >= 4, 20_000, "handlers running");
      const [paused, stopped] = await Promise.allSettled([
        first.pause("burst"),
        first.stop({ timeout: "5s" }),
      ]);
      expect(stopped.status).toBe("fulfilled");
      if (paused.status === "rejected") expect(isPatchbayError(paused.reason)).toBe(true);
      const before = await effects();
      expect(before.rows).toBe(before.distinct);
      const second = await processBus(effect);
      await second.start();
      await second.resume("burst"); // whether or not the pause was stored
      await until(async () => (await effects()).rows >= N, 30_000, `${N} effects`);
      await sleep(500);
      expect(await effects()).toEqual({ rows: N, distinct: N });
      expect(await second.deadLetters.count()).toBe(0);
    });

    it("hostile group names are refused whole; names differing only by case are two groups", async () => {
      const pauses = groupPauses(store);
      const hostile = [
        "",
        " ",
        "a ",
        "a\u0000b",
        "😀",
        "é",
        "x".repeat(101),
        "../etc",
        "g'; DROP TABLE effects; --",
        "g%",
        "g_\n",
        "a\u200Bb",
        null,
        42,
      ];
      for (const bad of hostile) {
        const error = await pauses.pause(bad as string).catch((e: unknown) => e);
        expect(isPatchbayError(error, "INVALID_ARGUMENT")).toBe(true);
        expect(
          isPatchbayError(await pauses.resume(bad as string).catch((e: unknown) => e), "INVALID_ARGUMENT"),
        ).toBe(true);
      }
      expect(await pauses.list()).toEqual([]);
      const longest = "x".repeat(100);
      expect(await pauses.pause(longest)).toBe(true);
      expect(await pauses.pause("Burst")).toBe(true);
      expect(await pauses.pause("burst")).toBe(true); // not the same group as "Burst"
      expect((await pauses.list()).map((g) => g.group).sort()).toEqual(["Burst", "burst", longest].sort());
      expect(await pauses.resume("BURST")).toBe(false);
      expect(await pauses.resume("Burst")).toBe(true);
      expect((await pauses.list()).map((g) => g.group).sort()).toEqual(["burst", longest].sort());
      await store.query("SELECT COUNT(*) AS n FROM effects"); // still there
    });
  });
}
