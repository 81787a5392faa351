/**
 * The one claim loop every worker runs (the local transport's consumer, the saga runner, the
 * webhooks worker, the outbox relay): claim as much work as there are free slots, hand it off,
 * and when nothing more is due sleep until the next due time, a wake-up, or the poll interval —
 * whichever comes first. A failed claim backs off (never a hot loop, never leaving the loop).
 *
 * Time comes from the injected clock: the due-time sleep is `clock.sleep`, so a test's fake clock
 * moving past a due time wakes the loop at once. Real time bounds every sleep (the poll interval),
 * since work may also appear in other processes that cannot wake this one.
 */
import { systemClock, type Clock } from "./clock.js";

/**
 * The shortest sleep between two rounds, in ms. Work that is due but locked by another worker (or
 * a due time already past) must not make the loop spin; 5 ms is far below any poll interval and
 * any latency a user would notice, and still caps an idle-but-busy loop at 200 rounds a second.
 */
export const MIN_PAUSE_MS = 5;

/**
 * How long a slot freed while work waits is held for others to free (see `gather`): long enough
 * to gather the handlers that finish together under load, far below any latency a user would
 * notice when the other slots hold slow work.
 */
export const GATHER_MS = 5;

/** The backoff after a failed claim: 100 ms, doubling, at most 5 s. */
export function claimBackoff(previousMs: number): number {
  return Math.min(Math.max(previousMs * 2, 100), 5000);
}

/** What one claim took. */
export interface ClaimRound {
  /** Items claimed (and handed off). */
  claimed: number;
  /** When work known to the claim falls due, if it said (saves a `nextDue` query). */
  wakeAt?: number | undefined;
  /** The claim knew when the next work falls due (`wakeAt`, or none when undefined): no `nextDue` query. */
  dueKnown?: boolean;
}

/** Options of {@link startClaimLoop}. */
export interface ClaimLoopOptions {
  /** Runs before each round's count of free slots (e.g. one event-loop turn for work just finished to settle). */
  beforeRound?(): Promise<void>;
  /** Slots free for new work now; 0 when full (a finished item should call `freed()`). */
  free(): number;
  /**
   * Gathers freed slots into fewer, larger claims (each claim is a write): while work may be
   * waiting, a slot freed since the last claim is claimed once at least `gather` slots are free,
   * or {@link GATHER_MS} after it freed, whichever comes first — so work never waits long behind
   * slow items in the other slots. Slots left idle by a claim that found less than it asked are
   * claimed at once when work arrives. Default 1 (every freed slot at once).
   */
  gather?: number;
  /** Claims up to `slots` items and hands them off (not awaiting their work). */
  claim(slots: number): Promise<ClaimRound>;
  /**
   * Items handed off by `claim` (or started beside the loop) and still running. Lets a test
   * harness on a fake clock know exactly when the worker is idle ({@link claimLoopsOn}).
   */
  inFlight?(): number;
  /** The earliest due time of work not due yet at `now`, or undefined when there is none. */
  nextDue?(now: number): Promise<number | undefined>;
  clock: Clock;
  /** The longest sleep when idle: how soon work no one woke us for is found. */
  pollMs: number;
  /** A claim failed; the loop waits `pauseMs` and tries again. */
  onError(error: unknown, pauseMs: number): void;
}

/** A running claim loop. */
export interface ClaimLoop {
  /** Work may be waiting: claim now (or right after the round in progress). */
  wake(): void;
  /** An item ended and its slot is free: claims again if work may be waiting (see `gather`). */
  freed(): void;
  /** Ends the loop after the round in progress; resolves when it has. Safe twice. */
  stop(): Promise<void>;
}

/** What one or more rounds of a loop did, from a wake-up until it slept again. */
export interface RoundResult {
  claimed: number;
  /** The last claim's error, when a claim failed. */
  error?: unknown;
}

/**
 * A claim loop as a test harness sees it: whether it is idle, and a way to make it look again.
 * Only loops on an injected clock (not the system clock) are observed.
 */
export interface ObservedLoop {
  /** It waits for a wake-up, its next due time or its poll, with no wake-up pending. */
  readonly asleep: boolean;
  /** Items it handed off that are still running (0 when the worker does not say). */
  inFlight(): number;
  /** Wakes it; resolves once a round that began after this call ended and it sleeps again (or stopped). */
  round(): Promise<RoundResult>;
}

const observed = new WeakMap<Clock, Set<ObservedLoop>>();

/** The running claim loops on `clock` (a test's fake clock): every worker that follows it. */
export function claimLoopsOn(clock: Clock): ObservedLoop[] {
  return [...(observed.get(clock) ?? [])];
}

/** Starts a claim loop (see the module comment). */
export function startClaimLoop(options: ClaimLoopOptions): ClaimLoop {
  const { clock } = options;
  const gather = options.gather ?? 1;
  let running = true;
  let woken = false;
  let asleep = false;
  let wakeUp: (() => void) | undefined;
  /** Work may be waiting: woken for it, or the last claim took all it asked. */
  let hungry = true;
  /** When the first slot freed since the last claim did (`performance.now()`). */
  let freedAt: number | undefined;
  let gatherTimer: NodeJS.Timeout | undefined;
  const rouse = () => {
    woken = true;
    asleep = false;
    wakeUp?.();
  };
  /** wake() calls so far: one during a claim means work may be waiting whatever the claim found. */
  let wakes = 0;
  const wake = () => {
    hungry = true;
    wakes++;
    rouse();
  };
  /** Wakes the loop when the slot freed first has waited GATHER_MS. */
  const gatherLater = () => {
    if (!running) return; // stop() cleared the timer; a round ending after it makes none
    gatherTimer ??= setTimeout(
      () => {
        gatherTimer = undefined;
        rouse();
      },
      Math.max(0, (freedAt ?? performance.now()) + GATHER_MS - performance.now()),
    );
    gatherTimer.unref();
  };
  const freed = () => {
    freedAt ??= performance.now();
    if (!hungry || !running) return; // nothing known to wait: new work wakes the loop
    if (options.free() >= gather) rouse();
    else gatherLater();
  };
  /** Free slots to claim now: none while freed slots still gather (see `gather`). */
  const claimable = () => {
    const slots = options.free();
    if (slots <= 0 || slots >= gather || !hungry || freedAt === undefined) return slots;
    if (performance.now() - freedAt >= GATHER_MS) return slots;
    gatherLater();
    return 0;
  };
  /** Callers of round() waiting for a round to begin, and those waiting for it to end. */
  let kicked: Array<(r: RoundResult) => void> = [];
  let watching: Array<(r: RoundResult) => void> = [];
  let result: RoundResult = { claimed: 0 };
  const report = () => {
    const done = watching;
    watching = [];
    for (const resolve of done) resolve(result);
  };

  /** Sleeps up to `ms` of real time, less when woken or when the clock reaches `dueAt`. */
  const sleep = async (ms: number, dueAt: number | undefined, now: number) => {
    const sleeping = new AbortController();
    await new Promise<void>((resolve) => {
      const up = () => {
        asleep = false;
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(up, ms);
      wakeUp = up;
      if (dueAt !== undefined)
        clock.sleep(Math.max(dueAt - now, 1), sleeping.signal).then(up, () => undefined);
      // Asleep from here: the clock's sleeper (if any) is registered; a harness may now judge it idle.
      asleep = true;
      report();
    });
    asleep = false;
    sleeping.abort();
    wakeUp = undefined;
  };

  const loop = (async () => {
    let pause = 0;
    while (running) {
      woken = false;
      if (kicked.length > 0) {
        if (watching.length === 0) result = { claimed: 0 };
        watching.push(...kicked);
        kicked = [];
      }
      if (options.beforeRound) await options.beforeRound();
      const slots = claimable();
      let round: ClaimRound = { claimed: 0 };
      if (slots > 0) {
        try {
          freedAt = undefined;
          clearTimeout(gatherTimer);
          gatherTimer = undefined;
          const wakesBefore = wakes;
          round = await options.claim(slots);
          hungry = round.claimed >= slots || wakes !== wakesBefore;
          pause = 0;
          result = { claimed: result.claimed + round.claimed };
        } catch (e) {
          pause = claimBackoff(pause);
          result = { claimed: result.claimed, error: e };
          options.onError(e, pause);
        }
      }
      if (!running) break;
      if (slots > 0 && round.claimed >= slots && pause === 0) continue; // more may be due
      if (woken) continue;
      const now = clock.now();
      let dueAt = pause ? undefined : round.wakeAt;
      if (!pause && slots > round.claimed && options.nextDue && !round.dueKnown) {
        const next = await options.nextDue(now).catch(() => undefined);
        if (next !== undefined) dueAt = dueAt === undefined ? next : Math.min(dueAt, next);
      }
      if (woken || !running) continue;
      await sleep(Math.max(pause || options.pollMs, MIN_PAUSE_MS), dueAt, now);
    }
  })();

  const loops = clock === systemClock ? undefined : (observed.get(clock) ?? new Set<ObservedLoop>());
  const self: ObservedLoop = {
    get asleep() {
      return asleep && !woken;
    },
    inFlight: () => options.inFlight?.() ?? 0,
    round: () =>
      running
        ? new Promise<RoundResult>((resolve) => {
            kicked.push(resolve);
            wake();
          })
        : Promise.resolve({ claimed: 0 }),
  };
  if (loops) {
    loops.add(self);
    observed.set(clock, loops);
  }

  let stopped: Promise<void> | undefined;
  return {
    wake,
    freed,
    stop() {
      stopped ??= (async () => {
        running = false;
        loops?.delete(self);
        clearTimeout(gatherTimer);
        wake();
        await loop;
        for (const resolve of [...kicked, ...watching]) resolve({ claimed: 0 });
        kicked = [];
        watching = [];
      })();
      return stopped;
    },
  };
}
