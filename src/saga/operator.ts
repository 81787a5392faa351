/**
 * What a person does with a stuck (or slow) saga: retry the current step or compensation now,
 * skip it, or mark the saga resolved. Each action is one transaction on the instance's locked row
 * and moves its claim token on, so a worker still busy with the instance changes nothing after it.
 */
import type { Clock } from "../core/clock.js";
import { measure } from "../core/instruments.js";
import type { StoreTx } from "../store/contracts.js";
import type { SqlStore } from "../store/sql-store.js";
import type { AnySagaDefinition } from "./definition.js";
import { SagaError } from "./errors.js";
import type { SagaPhase } from "./records.js";
import type { InstanceChanges, InstanceRow, InstanceVersion, SagaRepository } from "./repository.js";

/** Options of {@link SagaRunner.skip}. */
export interface SkipOptions {
  /** What the skipped step's `run` would have returned (a manual charge id, say); later steps see it in `ctx.results`. */
  result?: unknown;
  /** Why, for the timeline. */
  note?: string;
}

/** Options of {@link SagaRunner.resolve}. */
export interface ResolveOptions {
  /** What was done by hand, for the record. */
  note?: string;
}

interface OperatorDeps {
  store: SqlStore;
  repo: SagaRepository;
  clock: Clock;
  definition(name: string, version: number): AnySagaDefinition | undefined;
}

const invalid = (r: InstanceRow, action: string, why: string) =>
  new SagaError(
    "SAGA_STATE_INVALID",
    `cannot ${action} saga ${JSON.stringify(r.id)} (${r.status}): ${why}`,
    r.id,
  );

/** The phase a saga is in, for actions: its status, or for a failed one the phase that failed. */
function phaseOf(r: InstanceRow): SagaPhase | undefined {
  if (r.status === "running") return "run";
  if (r.status === "compensating") return "compensate";
  if (r.status === "failed") return r.failure?.phase ?? "run";
  return undefined;
}

/** Builds the operator actions on a store. */
export function createOperator(deps: OperatorDeps) {
  const { store, repo, clock } = deps;

  type Change = (tx: StoreTx, r: InstanceRow, now: number) => Promise<InstanceChanges>;

  /**
   * Applies `fn` to the locked row and returns it changed. With `expected` (a bulk action's
   * snapshot), only while the row is still in that state: `undefined` when it is gone or changed.
   */
  async function act(id: string, fn: Change, expected?: InstanceVersion): Promise<InstanceRow | undefined> {
    return store.transaction(async (tx) => {
      const r = await repo.get(tx, id, true);
      if (!r) {
        if (expected) return undefined;
        throw new SagaError("SAGA_NOT_FOUND", `no saga instance ${JSON.stringify(id)}`, id);
      }
      if (
        expected &&
        (r.status !== expected.status || r.claim !== expected.claim || r.updatedAt !== expected.updatedAt)
      ) {
        return undefined;
      }
      const now = clock.now();
      const changes = await fn(tx, r, now);
      await repo.update(tx, id, changes, now, { bump: true });
      return (await repo.get(tx, id))!;
    });
  }

  async function stepName(tx: StoreTx, r: InstanceRow, index: number): Promise<string> {
    const fromDefinition = deps.definition(r.name, r.version)?.steps[index]?.name;
    if (fromDefinition) return fromDefinition;
    const recorded = (await repo.steps(tx, r.id)).find((s) => s.index === index);
    return recorded?.name ?? `#${index}`;
  }

  return {
    /**
     * Runs the current step (or, for a saga that failed compensating, the compensation) again
     * now, with a fresh set of attempts. For a `failed` saga, and for a `running`/`compensating`
     * one waiting for its next retry.
     */
    retry: (id: string, expected?: InstanceVersion) =>
      act(
        id,
        (_tx, r, now) => {
          if (r.status === "failed") {
            const status = phaseOf(r) === "compensate" ? "compensating" : "running";
            return Promise.resolve({
              status,
              attempt: 0,
              owner: null,
              runAt: now,
              lastDelay: null,
              failure: null,
            });
          }
          if (r.status === "running" || r.status === "compensating") {
            if (r.owner !== undefined && r.runAt > now) {
              throw invalid(r, "retry", `worker ${r.owner} is running it now`);
            }
            return Promise.resolve({ attempt: 0, owner: null, runAt: now, lastDelay: null });
          }
          throw invalid(r, "retry", "it has finished");
        },
        expected,
      ),

    /**
     * Skips the current step: a forward step is recorded as skipped (with `result`) and the saga
     * goes on with the next one; a compensation is recorded as skipped (done by hand) and the
     * saga goes on compensating the step before.
     */
    skip: (id: string, options: SkipOptions = {}, expected?: InstanceVersion) =>
      act(
        id,
        async (tx, r, now) => {
          const phase = phaseOf(r);
          if (phase === undefined) throw invalid(r, "skip", "it has finished");
          if (r.status === "failed" && r.failure?.index === null) {
            throw invalid(
              r,
              "skip",
              "no step is at fault (retry it once the code has its version, or resolve it)",
            );
          }
          let resultJson: string | null = null;
          if (options.result !== undefined && options.result !== null) {
            try {
              resultJson = JSON.stringify(options.result) ?? null;
            } catch (cause) {
              throw new SagaError("SAGA_RESULT_INVALID", "skip: result must be JSON", r.id, { cause });
            }
          }
          await repo.writeStep(tx, r.id, {
            index: r.step,
            name: await stepName(tx, r, r.step),
            phase,
            status: "skipped",
            resultJson: phase === "run" ? resultJson : null,
            error: null,
            attempts: r.attempt,
            startedAt: now,
            finishedAt: now,
            note: options.note ?? null,
          });
          return {
            status: phase === "run" ? "running" : "compensating",
            step: phase === "run" ? r.step + 1 : r.step - 1,
            attempt: 0,
            owner: null,
            runAt: now,
            lastDelay: null,
            failure: null,
            note: options.note ?? null,
          };
        },
        expected,
      ),

    /** Marks a saga that is stuck (or will not finish) as `resolved`: a person settled it by hand. */
    resolve: (id: string, options: ResolveOptions = {}, expected?: InstanceVersion) =>
      act(
        id,
        (tx, r, now) => {
          if (phaseOf(r) === undefined) throw invalid(r, "resolve", "it has finished");
          tx.afterCommit(() => measure("saga.resolved", 1, { saga: r.name }));
          return Promise.resolve({ status: "resolved", owner: null, runAt: now, note: options.note ?? null });
        },
        expected,
      ),
  };
}
