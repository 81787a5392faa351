/**
 * One run of a pipeline at a time, across processes: a lease in the Store's state table, taken and
 * renewed by compare-and-set. A lease whose holder stopped renewing expires; one held by a process
 * on this host that no longer exists (killed with SIGKILL) is broken at once. The destination's
 * fencing (`claim()`) makes a stale holder harmless even if it wakes up later.
 */
import { hostname } from "node:os";
import type { Clock } from "../core/clock.js";
import { isPatchbayError } from "../core/errors.js";
import type { StateStore } from "../store/contracts.js";
import { SyncLockedError, SyncLockLostError } from "./errors.js";

/** What the lock's state entry holds. */
export interface LeaseInfo {
  /** The run holding it. */
  owner: string;
  host: string;
  pid: number;
  /** ms since epoch; 0 once released. */
  until: number;
  acquiredAt: number;
}

/** A held lease. */
export interface Lease {
  readonly info: LeaseInfo;
  /** Extends the lease; throws `SYNC_LOCK_LOST` when another run took it over. */
  renew(): Promise<void>;
  /** Gives it up (a no-op when it was already taken over). */
  release(): Promise<void>;
}

/** The state key of a pipeline's lock. */
export const lockKey = (pipeline: string) => `sync/${pipeline}/lock`;

/** True when `pid` names no process on this host (it was killed). */
export function processGone(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "ESRCH";
  }
}

/** True when the lease is held by a live run (not expired, not released, holder not known dead). */
export function isHeld(info: LeaseInfo | undefined, now: number): info is LeaseInfo {
  if (!info || info.until <= now) return false;
  const deadHere = info.host === hostname() && info.pid !== process.pid && processGone(info.pid);
  return !deadHere;
}

/** Takes the pipeline's lease for `runId`, or throws `SYNC_LOCKED`. */
export async function acquireLease(
  state: StateStore,
  pipeline: string,
  runId: string,
  leaseMs: number,
  clock: Clock,
): Promise<Lease> {
  const key = lockKey(pipeline);
  const current = await state.get<LeaseInfo>(key);
  const now = clock.now();
  if (isHeld(current?.value, now)) {
    const held = current?.value;
    throw new SyncLockedError(pipeline, `${held.host}:${held.pid}`, held.until);
  }
  const info: LeaseInfo = {
    owner: runId,
    host: hostname(),
    pid: process.pid,
    until: now + leaseMs,
    acquiredAt: now,
  };
  let version: number;
  try {
    version = (await state.set(key, info, { expectedVersion: current?.version ?? 0 })).version;
  } catch (e) {
    if (!isPatchbayError(e, "STATE_VERSION_CONFLICT")) throw e;
    // Someone took it between our read and our write.
    const winner = (await state.get<LeaseInfo>(key))?.value;
    throw new SyncLockedError(
      pipeline,
      winner ? `${winner.host}:${winner.pid}` : "another run",
      winner?.until ?? now,
    );
  }
  return {
    info,
    async renew() {
      try {
        info.until = clock.now() + leaseMs;
        version = (await state.set(key, info, { expectedVersion: version })).version;
      } catch (e) {
        if (!isPatchbayError(e, "STATE_VERSION_CONFLICT")) throw e;
        throw new SyncLockLostError(
          pipeline,
          `run ${runId} lost its lock (its lease expired and another run took it)`,
        );
      }
    },
    async release() {
      try {
        await state.set(key, { ...info, until: 0 }, { expectedVersion: version });
      } catch (e) {
        if (!isPatchbayError(e, "STATE_VERSION_CONFLICT")) throw e;
      }
    },
  };
}
