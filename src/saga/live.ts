/** An instance as a worker drives it: the stored row as of its last commit, and its step records. */
import { measure, measuring } from "../core/instruments.js";
import type { AnySagaDefinition } from "./definition.js";
import { SagaError } from "./errors.js";
import type { SagaPhase, SagaStepRecord } from "./records.js";
import type { InstanceChanges, InstanceRow, StepWrite } from "./repository.js";

/** The driven instance. */
export interface Live {
  row: InstanceRow;
  /** By {@link stepKey}. */
  steps: Map<string, SagaStepRecord>;
  /** Another worker took the instance over: write nothing more. */
  lost: boolean;
  /** The drive has ended. */
  done: boolean;
  /** A transactional step holds the instance's row (PostgreSQL) or the write lock (SQLite): no heartbeat needed. */
  inTx: boolean;
  /** The attempt in flight, aborted when the lease is lost. */
  attempt: AbortController | undefined;
  /** `updated_at` of the last write (mirrored once that write has committed). */
  writtenAt: number;
}

/** Whether the worker goes on with the instance. */
export type Next = "continue" | "stop";

/** The key of a step record in {@link Live.steps}. */
export const stepKey = (phase: SagaPhase, index: number) => `${phase}:${index}`;

/** The error of a fenced write that found another worker's claim. */
export const leaseLost = (id: string) =>
  new SagaError("SAGA_LEASE_LOST", `saga ${JSON.stringify(id)}: this worker's lease was taken over`, id);

/** Mirrors committed changes (and a step record) in memory. */
export function mirror(live: Live, changes: InstanceChanges, step?: StepWrite): void {
  const r = live.row;
  r.updatedAt = live.writtenAt;
  if (changes.status !== undefined) r.status = changes.status;
  if (changes.step !== undefined) r.step = changes.step;
  if (changes.attempt !== undefined) r.attempt = changes.attempt;
  if (changes.owner !== undefined) r.owner = changes.owner ?? undefined;
  if (changes.runAt !== undefined) r.runAt = changes.runAt;
  if (changes.lastDelay !== undefined) r.lastDelay = changes.lastDelay ?? undefined;
  if (changes.reason !== undefined) r.reason = changes.reason ?? undefined;
  if (changes.failure !== undefined) r.failure = changes.failure ?? undefined;
  if (measuring()) report(r.name, changes, step);
  if (step) {
    const before = live.steps.get(stepKey(step.phase, step.index));
    live.steps.set(stepKey(step.phase, step.index), {
      index: step.index,
      name: step.name,
      phase: step.phase,
      status: step.status,
      result: step.resultJson === null ? null : (JSON.parse(step.resultJson) as unknown),
      error: step.error ?? undefined,
      attempts: step.attempts,
      startedAt: before?.startedAt ?? step.startedAt,
      finishedAt: step.finishedAt ?? undefined,
      note: step.note ?? undefined,
    });
  }
}

/** Reports a committed end of a saga or of a step to the measurement listeners. */
function report(saga: string, changes: InstanceChanges, step: StepWrite | undefined) {
  const status = changes.status;
  if (status === "completed" || status === "compensated" || status === "failed") {
    measure("saga.finished", 1, { saga, status });
  }
  if (step?.finishedAt != null) {
    measure("saga.step_duration", Math.max(0, step.finishedAt - step.startedAt) / 1000, {
      saga,
      step: step.name,
      phase: step.phase,
      status: step.status,
    });
  }
}

/** The next step to compensate at or below `from`: completed, compensable, not yet undone. */
export function nextCompensable(def: AnySagaDefinition, live: Live, from: number): number {
  for (let i = Math.min(from, def.steps.length - 1); i >= 0; i--) {
    if (def.steps[i]?.compensate === undefined) continue;
    if (live.steps.get(stepKey("run", i))?.status !== "succeeded") continue;
    const undo = live.steps.get(stepKey("compensate", i))?.status;
    if (undo !== "succeeded" && undo !== "skipped") return i;
  }
  return -1;
}
