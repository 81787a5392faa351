/**
 * The test harness (`patchbay/testing`) runs the same bus conformance cases as the production
 * transports: its setup — an in-memory SQLite store and the harness's observed local transport
 * (what it records `published()` and `consumed()` through), both on a fake clock — under the
 * shipped bus suite. The cases are written in real time, so the fake clock is moved along with
 * real time while they run; the harness's loops all sleep on it, so they are exercised too.
 */
import { randomUUID } from "node:crypto";
import { defineBusConformance } from "../src/adapter/conformance/index.js";
import { sqlite } from "../src/adapters/sqlite/index.js";
import { PARKED } from "../src/bus/local-transport.js";
import type { SqlStore } from "../src/store/sql-store.js";
import { createHarness } from "../src/testing/harness.js";
import { FakeClock } from "../src/testing/fake-clock.js";

/** The current test's clock, made by `transports()` (called before `database()` for each test). */
let clock: FakeClock | undefined;

/** Messages of `group` parked in the queue (their dead letter refused). */
async function parked(store: SqlStore, group: string) {
  const { rows } = await store.query<{ n: number }>(
    `SELECT COUNT(*) AS n FROM ${store.dialect.table("bus_jobs")} WHERE grp = ? AND run_at = ${PARKED}`,
    [group],
  );
  return Number(rows[0]?.n ?? 0);
}

/** A queued row whose headers are not JSON, as a damaged row would leave it. */
async function undecodable(store: SqlStore, group: string) {
  const id = randomUUID();
  const body = JSON.stringify({
    specversion: "1.0",
    id,
    source: "/broken",
    type: "order.created",
    data: { orderId: "corrupt", qty: 1 },
  });
  await store.query(
    `INSERT INTO ${store.dialect.table("bus_jobs")} (grp, message_id, type, body, headers, attempt, run_at, created_at)
     VALUES (?, ?, 'order.created', ?, '{not json', 0, 0, 0)`,
    [group, id, body],
  );
  return { id, body };
}

defineBusConformance({
  name: "the test harness (in-memory SQLite, its local transport, a fake clock)",
  database: () => ({
    make: (options) => sqlite({ file: ":memory:", ...(clock ? { clock } : {}), ...options }),
    cleanup: () => Promise.resolve(),
    statementErrorAbortsTransaction: false,
    async refuseDeadLetters(store, group) {
      await store.query(
        `CREATE TRIGGER refuse_letters BEFORE INSERT ON ${store.dialect.table("bus_dead_letters")}
         WHEN NEW.grp = '${group}' BEGIN SELECT RAISE(ABORT, 'dead letters refused'); END`,
      );
    },
  }),
  transports: () => {
    const testClock = new FakeClock(Date.now());
    clock = testClock;
    // Fake time follows real time while the case runs (every sleeper due wakes within ~5 ms).
    const pump = setInterval(() => testClock.set(Math.max(testClock.now(), Date.now())), 5);
    return {
      // Each bus of a test gets a harness of its own on the test's store and clock: the buses of
      // one test (a restart) share the queue through the store, as production workers do.
      make: (store) => createHarness({ store, clock: testClock }).pb.bus.transport,
      async cleanup() {
        clearInterval(pump);
        clock = undefined;
        return Promise.resolve();
      },
      undecodable,
      parked,
    };
  },
});
