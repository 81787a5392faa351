/**
 * The moves of a saga instance a worker records: carry on, retry later, compensate, fail (with
 * the `patchbay.saga.failed` event), release. Every write is fenced by the claim token.
 */
import { isPatchbayError } from "../core/errors.js";
import { summarizedWarn } from "../core/log-summary.js";
import type { StoreTx } from "../store/contracts.js";
import type { SqlStore } from "../store/sql-store.js";
import type { SagaTx } from "./context.js";
import type { AnySagaDefinition, ResolvedStep } from "./definition.js";
import { SagaDeadlineError, SagaError } from "./errors.js";
import { SagaFailed } from "./events.js";
import type { ExecutorDeps } from "./executor.js";
import { leaseLost, mirror, nextCompensable, type Live, type Next } from "./live.js";
import { decideAfterFailure, retryAt, type RetrySettings } from "./policy.js";
import { errorInfo, type SagaFault, type SagaPhase } from "./records.js";
import type { InstanceChanges, StepWrite } from "./repository.js";

/** Wraps a store transaction as a {@link SagaTx} whose `publish` explains that there is no bus. */
function withoutBus(tx: StoreTx, id: string): SagaTx {
  return {
    query: (text, params) => tx.query(text, params),
    state: tx.state,
    idempotency: tx.idempotency,
    afterCommit: (callback) => tx.afterCommit(callback),
    publish: () =>
      Promise.reject(
        new SagaError("SAGA_NO_BUS", "ctx.tx.publish needs a bus: pass one to createSagaRunner", id),
      ),
    publishMany: () =>
      Promise.reject(
        new SagaError("SAGA_NO_BUS", "ctx.tx.publishMany needs a bus: pass one to createSagaRunner", id),
      ),
  };
}

/** The recorded moves, bound to a runner's dependencies. */
export type Transitions = ReturnType<typeof createTransitions>;

/** Creates the recorded moves for a runner. */
export function createTransitions(deps: ExecutorDeps) {
  const { store, bus, repo, clock, logger, owner, leaseMs } = deps;
  /** Refusals by an open breaker: one warn line per step per 10 s, the others at debug. */
  const refused = summarizedWarn(logger, clock);

  const transact = <T>(id: string, fn: (tx: SagaTx) => Promise<T>): Promise<T> =>
    bus ? bus.transaction(fn) : store.transaction((tx) => fn(withoutBus(tx, id)));

  /** Writes instance changes (and a step record) only while our claim holds. */
  async function writeFenced(
    ex: SagaTx | StoreTx | SqlStore,
    live: Live,
    changes: InstanceChanges,
    step?: StepWrite,
  ) {
    const r = live.row;
    const now = clock.now();
    if (!(await repo.writeOutcome(ex, r.id, r.claim, changes, now, step))) throw leaseLost(r.id);
    live.writtenAt = now;
  }

  /** {@link writeFenced} on its own (one statement on PostgreSQL, a transaction on SQLite), then mirrored in memory. */
  async function commit(live: Live, changes: InstanceChanges, step?: StepWrite): Promise<void> {
    if (repo.singleStatementOutcome || !step) await writeFenced(store, live, changes, step);
    else await store.transaction((tx) => writeFenced(tx, live, changes, step));
    mirror(live, changes, step);
  }

  /**
   * Carry on with step `index` in this worker, or let go of the instance when the runner stops.
   * Carrying on leaves `run_at` (the lease) alone while more than half of it is left — the
   * heartbeat renews it — so the write changes no indexed column: an in-place (HOT) update on
   * PostgreSQL, no index work on SQLite. A step that held a transaction past that renews it here.
   */
  const moveTo = (live: Live, index: number, now: number): InstanceChanges => {
    if (!deps.running()) return { step: index, attempt: 0, owner: null, runAt: now, lastDelay: null };
    const renew = live.row.runAt - now < leaseMs / 2;
    return { step: index, attempt: 1, lastDelay: null, ...(renew ? { runAt: now + leaseMs } : {}) };
  };
  const carryOn = (live: Live): Next =>
    live.row.owner === owner && (live.row.status === "running" || live.row.status === "compensating")
      ? "continue"
      : "stop";

  const stepWrite = (
    step: ResolvedStep,
    phase: SagaPhase,
    status: StepWrite["status"],
    live: Live,
    startedAt: number,
    extra: Partial<StepWrite> = {},
  ): StepWrite => ({
    index: step.index,
    name: step.name,
    phase,
    status,
    resultJson: null,
    error: null,
    attempts: live.row.attempt,
    startedAt,
    finishedAt: status === "running" || status === "retrying" ? null : clock.now(),
    note: null,
    ...extra,
  });

  const fault = (step: ResolvedStep | null, phase: SagaPhase, error: unknown): SagaFault => ({
    index: step?.index ?? null,
    step: step?.name ?? null,
    phase,
    error: errorInfo(error),
    at: clock.now(),
  });

  /** The forward path is over: compensate the completed steps, newest first. */
  async function compensateFrom(
    live: Live,
    def: AnySagaDefinition,
    failed: ResolvedStep | null,
    error: unknown,
    startedAt: number,
  ): Promise<Next> {
    const now = clock.now();
    const reason = fault(failed, "run", error);
    const next = nextCompensable(def, live, live.row.step - 1);
    const changes: InstanceChanges =
      next < 0
        ? { status: "compensated", reason, owner: null, runAt: now, step: -1, lastDelay: null }
        : { status: "compensating", reason, ...moveTo(live, next, now) };
    const record = failed
      ? stepWrite(failed, "run", "failed", live, startedAt, { error: reason.error })
      : undefined;
    await commit(live, changes, record);
    logger.warn(
      { sagaId: live.row.id, saga: live.row.name, step: reason.step, err: error },
      "patchbay saga: compensating",
    );
    return carryOn(live);
  }

  /** Stuck: mark `failed` and publish `patchbay.saga.failed` in the same transaction. */
  async function fail(
    live: Live,
    step: ResolvedStep | null,
    phase: SagaPhase,
    error: unknown,
    startedAt: number,
  ): Promise<Next> {
    const failure = fault(step, phase, error);
    const r = live.row;
    const changes: InstanceChanges = { status: "failed", failure, owner: null, runAt: clock.now() };
    const record = step
      ? stepWrite(step, phase, "failed", live, startedAt, { error: failure.error })
      : undefined;
    await transact(r.id, async (tx) => {
      await writeFenced(tx, live, changes, record);
      if (bus) {
        await tx.publish(
          SagaFailed,
          {
            sagaId: r.id,
            name: r.name,
            version: r.version,
            step: failure.step,
            phase,
            error: failure.error,
            failedAt: new Date(failure.at).toISOString(),
          },
          { key: r.id },
        );
      }
    });
    mirror(live, changes, record);
    logger.error(
      { sagaId: r.id, saga: r.name, step: failure.step, phase, err: error },
      "patchbay saga: failed; it needs a person (patchbay saga retry|skip|resolve)",
    );
    return "stop";
  }

  /** Lets go of the instance for another worker (or this one, later); refunds an attempt not made. */
  async function release(live: Live, refund: boolean): Promise<Next> {
    const attempt = refund ? Math.max(0, live.row.attempt - 1) : live.row.attempt;
    await commit(live, { owner: null, runAt: clock.now(), attempt }).catch((e: unknown) => {
      if (!isPatchbayError(e, "SAGA_LEASE_LOST")) throw e;
    });
    return "stop";
  }

  async function onFailure(
    live: Live,
    def: AnySagaDefinition,
    step: ResolvedStep,
    phase: SagaPhase,
    pastPivot: boolean,
    settings: RetrySettings,
    error: unknown,
    startedAt: number,
  ): Promise<Next> {
    const r = live.row;
    const now = clock.now();
    const deadlined = phase === "run" && !pastPivot && r.deadline !== undefined && now >= r.deadline;
    if (deadlined)
      return compensateFrom(
        live,
        def,
        step,
        new SagaDeadlineError(r.id, r.deadline!, { cause: error }),
        startedAt,
      );
    const decision = decideAfterFailure(settings, r.attempt, error, r.lastDelay, deps.random);
    if (decision.kind === "retry") {
      const at = retryAt(now, decision.delayMs, phase === "run" && !pastPivot ? r.deadline : undefined);
      const record = stepWrite(step, phase, "retrying", live, startedAt, { error: errorInfo(error) });
      await commit(live, { owner: null, runAt: at, lastDelay: decision.delayMs, step: step.index }, record);
      const fields = {
        sagaId: r.id,
        saga: r.name,
        step: step.name,
        phase,
        attempt: r.attempt,
        delayMs: at - now,
        err: error,
      };
      // An attempt spent on a call the breaker refused never reached the dependency: say so loudly,
      // but once per step per interval (an open breaker refuses every attempt of every instance).
      if (isPatchbayError(error, "CIRCUIT_OPEN")) {
        refused(
          `${r.name}/${step.name}`,
          { ...fields, breaker: error.state, maxAttempts: settings.maxAttempts },
          "patchbay saga: step refused by an open circuit breaker; an attempt is spent, retrying later",
        );
      } else logger.info(fields, "patchbay saga: step failed; retrying later");
      return "stop";
    }
    if (phase === "run" && !pastPivot) return compensateFrom(live, def, step, error, startedAt);
    return fail(live, step, phase, error, startedAt);
  }

  return {
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
  };
}
