/**
 * Drives one claimed saga instance: runs its current step (or compensation), records the outcome,
 * and goes on with the next while the runner runs — every outcome committed before the next step
 * starts, every write fenced by the instance's claim token.
 */
import type { EventBus } from "../bus/bus.js";
import type { Clock } from "../core/clock.js";
import { isPatchbayError } from "../core/errors.js";
import type { Logger } from "../core/logger.js";
import { timeout } from "../resilience/timeout.js";
import type { SqlStore } from "../store/sql-store.js";
import type { SagaTx, StepContext } from "./context.js";
import type { AnySagaDefinition, ResolvedStep } from "./definition.js";
import { SagaDeadlineError, SagaError, SagaStepAbandonedError, SagaVersionError } from "./errors.js";
import { leaseLost, mirror, nextCompensable, stepKey, type Live, type Next } from "./live.js";
import { forever } from "./policy.js";
import type { SagaPhase, SagaStepRecord } from "./records.js";
import type { InstanceChanges, InstanceRow, SagaRepository, StepWrite } from "./repository.js";
import { createTransitions } from "./transitions.js";

/** What the executor needs from its runner. */
export interface ExecutorDeps {
  store: SqlStore;
  bus: EventBus | undefined;
  repo: SagaRepository;
  clock: Clock;
  logger: Logger;
  random: () => number;
  /** This worker's id, written as the owner of its leases. */
  owner: string;
  leaseMs: number;
  /** The definition of `name` at `version`, if this code has it. */
  definition(name: string, version: number): AnySagaDefinition | undefined;
  knownVersions(name: string): number[];
  /** False once the runner is stopping: finish the step in flight, then let go. */
  running(): boolean;
  /** Aborts when the runner's drain timeout passed. */
  stopSignal: AbortSignal;
  /** Called when a drive ends (the instance settled, waits for a retry, was released or lost). */
  finished(row: InstanceRow): void;
}

/** Ends an attempt's deadline timer (a plain reason: no DOMException to build). */
const ATTEMPT_OVER = Object.freeze({ reason: "attempt over" });

function encodeResult(value: unknown, id: string, step: string): string | null {
  if (value === undefined || value === null) return null;
  try {
    return JSON.stringify(value) ?? null;
  } catch (cause) {
    throw new SagaError(
      "SAGA_RESULT_INVALID",
      `step ${JSON.stringify(step)} resolved with a value that is not JSON: ${(cause as Error).message}`,
      id,
      { cause },
    );
  }
}

/** Creates the function that drives claimed instances. */
export function createExecutor(deps: ExecutorDeps) {
  const { repo, clock, logger, owner, leaseMs } = deps;
  const {
    transact,
    writeFenced,
    commit,
    moveTo,
    carryOn,
    stepWrite,
    compensateFrom,
    fail,
    release,
    onFailure,
  } = createTransitions(deps);

  /** One attempt of `step`'s run or compensate, and its outcome recorded. */
  async function attempt(
    live: Live,
    def: AnySagaDefinition,
    step: ResolvedStep,
    phase: SagaPhase,
    pastPivot: boolean,
  ): Promise<Next> {
    const r = live.row;
    const settings =
      phase === "compensate" ? step.compensateRetry : pastPivot ? forever(step.retry) : step.retry;
    const startedAt = clock.now();
    if (r.attempt > settings.maxAttempts) {
      const abandoned = new SagaStepAbandonedError(r.id, step.name, r.attempt);
      r.attempt -= 1; // the record counts attempts made, not this one that will not be
      return phase === "run" && !pastPivot
        ? compensateFrom(live, def, step, abandoned, startedAt)
        : fail(live, step, phase, abandoned, startedAt);
    }
    if (phase === "compensate") {
      // Each compensation's start is on record before it runs.
      await commit(live, { step: step.index }, stepWrite(step, phase, "running", live, startedAt));
    }

    const controller = new AbortController();
    live.attempt = controller;
    const onStop = () => controller.abort(deps.stopSignal.reason);
    deps.stopSignal.addEventListener("abort", onStop, { once: true });
    let deadlineTimer: AbortController | undefined;
    if (phase === "run" && !pastPivot && r.deadline !== undefined) {
      const deadline = r.deadline;
      deadlineTimer = new AbortController();
      clock.sleep(Math.max(0, deadline - clock.now()), deadlineTimer.signal).then(
        () => controller.abort(new SagaDeadlineError(r.id, deadline)),
        () => undefined,
      );
    }

    const results: Record<string, unknown> = {};
    for (const s of live.steps.values()) {
      if (s.phase === "run" && (s.status === "succeeded" || s.status === "skipped"))
        results[s.name] = s.result;
    }
    const input = r.input;
    const runResult = live.steps.get(stepKey("run", step.index))?.result ?? null;
    const call = async (signal: AbortSignal, tx: SagaTx | undefined): Promise<unknown> => {
      const ctx: StepContext = {
        sagaId: r.id,
        sagaName: r.name,
        step: step.name,
        phase,
        idempotencyKey: phase === "run" ? `${r.id}:${step.name}` : `${r.id}:${step.name}:compensate`,
        attempt: r.attempt,
        signal,
        get tx(): SagaTx {
          if (tx) return tx;
          throw new SagaError(
            "SAGA_NO_TRANSACTION",
            `step ${JSON.stringify(step.name)} of saga ${JSON.stringify(r.name)} has no ctx.tx; declare it with transaction: true`,
            r.id,
          );
        },
        results,
        logger: logger.child({ sagaId: r.id, saga: r.name, step: step.name, phase, attempt: r.attempt }),
      };
      return await (phase === "run" ? step.run(input, ctx) : step.compensate!(runResult, ctx));
    };
    /** Set when the saga's deadline aborted this attempt and the step returned all the same. */
    let pastDeadline = false;
    const invoke = async (tx: SagaTx | undefined): Promise<unknown> => {
      const value = await (step.timeoutMs === undefined
        ? call(controller.signal, tx)
        : timeout(step.timeoutMs, { clock }).execute(({ signal }) => call(signal, tx), controller.signal));
      if (controller.signal.aborted) {
        const reason: unknown = controller.signal.reason;
        // A step that returned after its signal aborted may have caught the abort without doing
        // its work, or ignored it and done it: its value is no outcome (as with a step timeout,
        // which rejects even when the callee resolves late). After stop() or a lost lease the
        // step runs again (its idempotency key dedupes the call); a transactional step's writes
        // roll back with the attempt. But past the deadline the saga compensates instead of
        // running it again: a call that went through (a charge) must be undone, not forgotten.
        // So a step that calls out keeps its value as its result, and its compensation runs with
        // the others (a compensation copes with a call that did not happen: docs/saga.md).
        if (tx !== undefined || phase !== "run" || !(reason instanceof SagaDeadlineError)) throw reason;
        pastDeadline = true;
      }
      return value;
    };

    /** The outcome of a successful attempt: the step record and where the saga goes next. */
    const outcome = (value: unknown): { changes: InstanceChanges; record: StepWrite } => {
      const resultJson = phase === "run" ? encodeResult(value, r.id, step.name) : null;
      const record = stepWrite(step, phase, "succeeded", live, startedAt, { resultJson });
      const now = clock.now();
      if (phase === "run") {
        const next = step.index + 1;
        // Past the deadline the saga does not complete: the next round compensates, this step too.
        const changes: InstanceChanges =
          next >= def.steps.length && !pastDeadline
            ? { status: "completed", step: next, owner: null, runAt: now, lastDelay: null }
            : moveTo(live, next, now);
        return { changes, record };
      }
      // The next compensation, looking past this one as if it were already recorded.
      const after: Live = { ...live, steps: new Map(live.steps) };
      after.steps.set(stepKey("compensate", step.index), {
        ...record,
        result: null,
        error: undefined,
        finishedAt: now,
        note: undefined,
      });
      const next = nextCompensable(def, after, step.index - 1);
      const changes: InstanceChanges =
        next < 0
          ? { status: "compensated", step: -1, owner: null, runAt: now, lastDelay: null }
          : moveTo(live, next, now);
      return { changes, record };
    };

    try {
      if (step.transaction) {
        // The step's writes and its outcome commit together (or neither does): exactly once.
        live.inTx = true;
        const done = await transact(r.id, async (tx) => {
          if (!(await repo.holds(tx, r.id, r.claim))) throw leaseLost(r.id);
          const o = outcome(await invoke(tx));
          await writeFenced(tx, live, o.changes, o.record);
          return o;
        }).finally(() => (live.inTx = false));
        mirror(live, done.changes, done.record);
      } else {
        const o = outcome(await invoke(undefined));
        await commit(live, o.changes, o.record);
      }
      return carryOn(live);
    } catch (e) {
      if (live.lost || isPatchbayError(e, "SAGA_LEASE_LOST")) {
        logger.warn(
          { sagaId: r.id, saga: r.name, step: step.name },
          "patchbay saga: lease lost; another worker has it",
        );
        live.lost = true;
        return "stop";
      }
      if (deps.stopSignal.aborted) return release(live, true);
      return onFailure(live, def, step, phase, pastPivot, settings, e, startedAt);
    } finally {
      deps.stopSignal.removeEventListener("abort", onStop);
      deadlineTimer?.abort(ATTEMPT_OVER);
      live.attempt = undefined;
    }
  }

  /** Takes the instance one step further; "stop" when it is settled, released or lost. */
  async function advance(live: Live): Promise<Next> {
    const r = live.row;
    const def = deps.definition(r.name, r.version);
    if (!def) {
      const phase: SagaPhase = r.status === "compensating" ? "compensate" : "run";
      return fail(
        live,
        null,
        phase,
        new SagaVersionError(r.id, r.name, r.version, deps.knownVersions(r.name)),
        clock.now(),
      );
    }
    if (!deps.running()) return release(live, true);
    if (r.status === "running") {
      const pastPivot = def.pivotIndex >= 0 && r.step > def.pivotIndex;
      // Before completion: a last step that returned past the deadline is compensated with the rest.
      if (!pastPivot && r.deadline !== undefined && clock.now() >= r.deadline) {
        return compensateFrom(live, def, null, new SagaDeadlineError(r.id, r.deadline), clock.now());
      }
      if (r.step >= def.steps.length) {
        await commit(live, { status: "completed", owner: null, runAt: clock.now() });
        return "stop";
      }
      return attempt(live, def, def.steps[r.step]!, "run", pastPivot);
    }
    if (r.status === "compensating") {
      const index = nextCompensable(def, live, r.step);
      if (index < 0) {
        await commit(live, { status: "compensated", step: -1, owner: null, runAt: clock.now() });
        return "stop";
      }
      r.step = index;
      return attempt(live, def, def.steps[index]!, "compensate", false);
    }
    return "stop";
  }

  async function heartbeat(live: Live): Promise<void> {
    if (live.done || live.lost || live.inTx) return;
    const r = live.row;
    // A store hiccup is not a lost lease: the next beat (or the fenced outcome write) decides.
    const until = clock.now() + leaseMs;
    const held = await repo.heartbeat(r.id, r.claim, owner, until).catch(() => undefined);
    if (held === true && r.owner === owner) r.runAt = Math.max(r.runAt, until);
    if (held === false && !live.done && r.owner === owner) {
      live.lost = true;
      live.attempt?.abort(leaseLost(r.id));
    }
  }

  /**
   * Drives a claimed instance until it is settled, waits for a retry, is released (the runner
   * stops) or is lost (another worker took it over). Never throws: a store failure is logged and
   * the lease brings the instance back.
   */
  return async function drive(row: InstanceRow, steps: readonly SagaStepRecord[]): Promise<void> {
    const live: Live = {
      row,
      steps: new Map(steps.map((s) => [stepKey(s.phase, s.index), s])),
      lost: false,
      done: false,
      inTx: false,
      attempt: undefined,
      writtenAt: row.updatedAt,
    };
    const beat = setInterval(() => void heartbeat(live), Math.max(50, Math.floor(leaseMs / 3)));
    try {
      while ((await advance(live)) === "continue" && !live.lost);
    } catch (e) {
      logger.error(
        { err: e, sagaId: row.id, saga: row.name },
        "patchbay saga: could not record progress; the instance comes back when its lease expires",
      );
    } finally {
      live.done = true;
      clearInterval(beat);
      deps.finished(live.row);
    }
  };
}
