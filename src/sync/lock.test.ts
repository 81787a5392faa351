import { spawnSync } from "node:child_process";
import { hostname } from "node:os";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { sqlite } from "../adapters/sqlite/index.js";
import { isPatchbayError } from "../core/errors.js";
import type { SqlStore } from "../store/sql-store.js";
import { FakeClock } from "../testing/fake-clock.js";
import { acquireLease, lockKey } from "./lock.js";

async function codeOf(p: Promise<unknown>) {
  return p.then(
    () => "ok",
    (e: unknown) => (isPatchbayError(e) ? e.code : String(e)),
  );
}

describe("pipeline lock (a lease in the store's state)", () => {
  let store: SqlStore;
  const clock = new FakeClock();
  beforeEach(async () => {
    store = sqlite({ file: ":memory:", clock });
    await store.open();
  });
  afterEach(() => store.close());

  it("is held by one run at a time, and free again once released", async () => {
    const a = await acquireLease(store.state, "p", "run-a", 60_000, clock);
    expect(await codeOf(acquireLease(store.state, "p", "run-b", 60_000, clock))).toBe("SYNC_LOCKED");
    await a.release();
    const b = await acquireLease(store.state, "p", "run-b", 60_000, clock);
    expect(b.info.owner).toBe("run-b");
  });

  it("expires when not renewed; the old holder's renewal then fails with SYNC_LOCK_LOST", async () => {
    const a = await acquireLease(store.state, "p", "run-a", 60_000, clock);
    await clock.advance("30s");
    await a.renew();
    await clock.advance("61s");
    await acquireLease(store.state, "p", "run-b", 60_000, clock);
    expect(await codeOf(a.renew())).toBe("SYNC_LOCK_LOST");
    await a.release(); // a no-op: it must not free b's lease
    expect(await codeOf(acquireLease(store.state, "p", "run-c", 60_000, clock))).toBe("SYNC_LOCKED");
  });

  it("is broken at once when its holder was a process on this host that no longer exists", async () => {
    const dead = spawnSync(process.execPath, ["-e", ""]).pid;
    await store.state.set(lockKey("p"), {
      owner: "ghost",
      host: hostname(),
      pid: dead,
      until: clock.now() + 60_000,
      acquiredAt: clock.now(),
    });
    const lease = await acquireLease(store.state, "p", "run-b", 60_000, clock);
    expect(lease.info.owner).toBe("run-b");
  });
});
