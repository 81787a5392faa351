import { describe, expect, it } from "vitest";
import { FakeClock } from "../testing/fake-clock.js";
import { systemClock } from "./clock.js";
import { claimBackoff, claimLoopsOn, GATHER_MS, startClaimLoop } from "./claim-loop.js";

const tick = (ms = 20) => new Promise((r) => setTimeout(r, ms));

describe("startClaimLoop", () => {
  it("claims up to the free slots, and again at once while claims come back full", async () => {
    const asked: number[] = [];
    let queue = 7;
    const loop = startClaimLoop({
      free: () => 3,
      claim: (slots) => {
        asked.push(slots);
        const n = Math.min(slots, queue);
        queue -= n;
        return Promise.resolve({ claimed: n });
      },
      clock: new FakeClock(0),
      pollMs: 60_000,
      onError: () => undefined,
    });
    await tick();
    await loop.stop();
    expect(asked).toEqual([3, 3, 3]); // 3 + 3 + 1: the short claim ends the burst
    expect(queue).toBe(0);
  });

  it("follows the injected clock: sleeps until the next due time and claims when the fake clock reaches it", async () => {
    const clock = new FakeClock(1000);
    let due = 5000;
    let claims = 0;
    let tookAt: number | undefined;
    const loop = startClaimLoop({
      free: () => 1,
      claim: () => {
        claims++;
        if (clock.now() >= due) {
          due = Infinity;
          tookAt = clock.now();
          return Promise.resolve({ claimed: 1 });
        }
        return Promise.resolve({ claimed: 0 });
      },
      nextDue: (now) => Promise.resolve(due > now && due !== Infinity ? due : undefined),
      clock,
      pollMs: 60_000, // real time would never wake it within the test
      onError: () => undefined,
    });
    await tick();
    expect(claims).toBe(1);
    await clock.advance(4000);
    await tick();
    expect(tookAt).toBe(5000);
    await loop.stop();
  });

  it("takes the next due time from a claim that knew it, without a nextDue query", async () => {
    const clock = new FakeClock(1000);
    let nextDueCalls = 0;
    const claimedAt: number[] = [];
    const loop = startClaimLoop({
      free: () => 3,
      claim: () => {
        claimedAt.push(clock.now());
        // Fewer than asked, and the claim said when the rest falls due.
        return Promise.resolve({ claimed: 1, wakeAt: 3000, dueKnown: true });
      },
      nextDue: () => {
        nextDueCalls++;
        return Promise.resolve(undefined);
      },
      clock,
      pollMs: 60_000,
      onError: () => undefined,
    });
    await tick();
    await clock.advance(2000);
    await tick();
    await loop.stop();
    expect(nextDueCalls).toBe(0);
    expect(claimedAt).toEqual([1000, 3000]);
  });

  it("wakes at once on wake(), and backs off after a failed claim without leaving the loop", async () => {
    const pauses: number[] = [];
    let fail = 2;
    let claims = 0;
    const loop = startClaimLoop({
      free: () => 1,
      claim: () => {
        claims++;
        if (fail-- > 0) return Promise.reject(new Error("store down"));
        return Promise.resolve({ claimed: 0 });
      },
      clock: new FakeClock(0),
      pollMs: 60_000,
      onError: (_e, pause) => pauses.push(pause),
    });
    await tick(400); // 100 ms, then 200 ms of backoff
    expect(pauses).toEqual([100, 200]);
    const before = claims;
    loop.wake();
    await tick();
    expect(claims).toBe(before + 1);
    await Promise.all([loop.stop(), loop.stop()]);
  });

  it("gathers freed slots while work waits: claims at `gather` free at once, fewer only after GATHER_MS", async () => {
    let inFlight = 0;
    const asked: number[] = [];
    const loop = startClaimLoop({
      free: () => 8 - inFlight,
      gather: 4,
      claim: (slots) => {
        asked.push(slots);
        inFlight += slots; // work keeps waiting: every claim comes back full
        return Promise.resolve({ claimed: slots });
      },
      clock: new FakeClock(0),
      pollMs: 60_000,
      onError: () => undefined,
    });
    await tick();
    expect(asked).toEqual([8]);
    // Three slots free at once: not yet; the fourth makes half, claimed at once.
    for (let i = 0; i < 3; i++) {
      inFlight--;
      loop.freed();
    }
    await new Promise((r) => setImmediate(r));
    expect(asked).toEqual([8]);
    inFlight--;
    loop.freed();
    await new Promise((r) => setImmediate(r));
    expect(asked).toEqual([8, 4]);
    // One slot alone (the rest held by slow work): claimed once GATHER_MS has passed, no later.
    const freedAt = performance.now();
    inFlight--;
    loop.freed();
    await new Promise((r) => setImmediate(r));
    expect(asked).toEqual([8, 4]);
    await tick(GATHER_MS * 10);
    expect(asked).toEqual([8, 4, 1]);
    expect(performance.now() - freedAt).toBeGreaterThanOrEqual(GATHER_MS - 1);
    await loop.stop();
  });

  it("claims idle slots at once when work arrives, and a freed slot wakes nothing while no work is known", async () => {
    let inFlight = 0;
    let queue = 2;
    const asked: number[] = [];
    const loop = startClaimLoop({
      free: () => 8 - inFlight,
      gather: 4,
      claim: (slots) => {
        asked.push(slots);
        const n = Math.min(slots, queue);
        queue -= n;
        inFlight += n;
        return Promise.resolve({ claimed: n });
      },
      clock: new FakeClock(0),
      pollMs: 60_000,
      onError: () => undefined,
    });
    await tick();
    expect(asked).toEqual([8]); // took the 2 there were
    inFlight--;
    loop.freed(); // the queue was found empty: no claim for it
    await tick(GATHER_MS * 4);
    expect(asked).toEqual([8]);
    queue = 1;
    inFlight = 7; // one slot free, below `gather`, but idle: new work is claimed at once
    loop.wake();
    await new Promise((r) => setImmediate(r));
    expect(asked).toEqual([8, 1]);
    await loop.stop();
  });

  it("backs off 100 ms, doubling, to at most 5 s", () => {
    expect([0, 100, 200, 3000, 5000].map(claimBackoff)).toEqual([100, 200, 400, 5000, 5000]);
  });

  it("is observed on an injected clock: asleep when idle, round() makes it claim once more and says what it took", async () => {
    const clock = new FakeClock(0);
    let queue = 0;
    let running = 0;
    const loop = startClaimLoop({
      free: () => 5 - running,
      inFlight: () => running,
      claim: (slots) => {
        const n = Math.min(slots, queue);
        queue -= n;
        running += n;
        return Promise.resolve({ claimed: n });
      },
      clock,
      pollMs: 60_000,
      onError: () => undefined,
    });
    const [observed] = claimLoopsOn(clock);
    await tick();
    expect(observed?.asleep).toBe(true);
    expect(await observed?.round()).toEqual({ claimed: 0 });
    queue = 2; // work no one woke it for (another process's)
    expect(await observed?.round()).toEqual({ claimed: 2 });
    expect(observed?.inFlight()).toBe(2);
    await loop.stop();
    expect(claimLoopsOn(clock)).toEqual([]);
    // The system clock's loops are not kept anywhere.
    const real = startClaimLoop({
      free: () => 1,
      claim: () => Promise.resolve({ claimed: 0 }),
      clock: systemClock,
      pollMs: 60_000,
      onError: () => undefined,
    });
    expect(claimLoopsOn(systemClock)).toEqual([]);
    await real.stop();
  });
});
