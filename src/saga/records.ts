/** What the store keeps about saga instances and their steps, as the API returns it. */
import { storableStrings, storableText } from "../core/storable-text.js";

/**
 * `running` → `completed`; or, when a step fails for good (or the deadline passes),
 * `compensating` → `compensated`. `failed`: stuck — a compensation ran out of retries, a step after
 * the pivot failed with a non-retryable error, or the definition version is unknown; a person
 * must act (`retry`, `skip`, `resolve`). `resolved`: a person settled a stuck saga by hand.
 */
export type SagaStatus = "running" | "completed" | "compensating" | "compensated" | "failed" | "resolved";

/** Every {@link SagaStatus}. */
export const SAGA_STATUSES: readonly SagaStatus[] = [
  "running",
  "completed",
  "compensating",
  "compensated",
  "failed",
  "resolved",
];

/** Statuses a saga never leaves by itself. */
export const TERMINAL_STATUSES: readonly SagaStatus[] = ["completed", "compensated", "failed", "resolved"];

/** Which half of a step: its `run`, or its `compensate`. */
export type SagaPhase = "run" | "compensate";

/** A JSON-safe error: name, message, `code` and `retryable` for Patchbay errors, and their fields. */
export interface SagaErrorInfo {
  name: string;
  message: string;
  code?: string;
  [field: string]: unknown;
}

/** Why a saga left the happy path: which step, in which phase, with which error. */
export interface SagaFault {
  /** The step's index, or `null` when no step was at fault (deadline before a step, unknown version). */
  index: number | null;
  /** The step's name, or `null`. */
  step: string | null;
  phase: SagaPhase;
  error: SagaErrorInfo;
  /** ms since the epoch. */
  at: number;
}

/** One saga instance. */
export interface SagaInstance {
  id: string;
  name: string;
  /** The definition version it was started with (and runs with to the end). */
  version: number;
  input: unknown;
  status: SagaStatus;
  /**
   * The current step's index: the next to run while `running`; the next to compensate while
   * `compensating`; the one at fault while `failed`.
   */
  step: number;
  /** Attempts started of the current step (or compensation). */
  attempt: number;
  /** The worker holding the instance's lease, while one does. */
  owner: string | undefined;
  /** When a worker may take the instance next: a retry's due time, or the end of the current lease. */
  runAt: number;
  /** The saga-level deadline (ms since the epoch), if the definition has a timeout. */
  deadline: number | undefined;
  /** Why it compensates (the step that failed for good, or the deadline). */
  reason: SagaFault | undefined;
  /** Why it is `failed`. */
  failure: SagaFault | undefined;
  /** The last operator note (`skip`, `resolve`). */
  note: string | undefined;
  createdAt: number;
  updatedAt: number;
}

/** Status of one step phase: in progress, waiting for a retry, done, given up, or skipped by an operator. */
export type SagaStepStatus = "running" | "retrying" | "succeeded" | "failed" | "skipped";

/** The record of one step's `run` or `compensate`. */
export interface SagaStepRecord {
  index: number;
  name: string;
  phase: SagaPhase;
  status: SagaStepStatus;
  /** What `run` resolved with (or what an operator gave to `skip`). */
  result: unknown;
  /** The last error, while retrying or after giving up. */
  error: SagaErrorInfo | undefined;
  attempts: number;
  startedAt: number;
  finishedAt: number | undefined;
  /** An operator's note (`skip`). */
  note: string | undefined;
}

/** An instance with its step timeline, oldest first. */
export interface SagaDetails extends SagaInstance {
  steps: SagaStepRecord[];
}

/** Selects instances for {@link SagaRunner.list}. */
export interface SagaFilter {
  status?: SagaStatus | readonly SagaStatus[];
  name?: string;
  /** Only instances created before this time (ms since the epoch): for paging, newest first. */
  before?: number;
  /**
   * Only instances last updated at or after this time (ms since the epoch): for a failed saga,
   * when it failed. `patchbay saga ... --since 1h` is `since: Date.now() - 3_600_000`.
   */
  since?: number;
}

/** A JSON-safe record of any thrown value. */
export function errorInfo(e: unknown): SagaErrorInfo {
  if (e instanceof Error) {
    const out: SagaErrorInfo = { name: e.name, message: e.message };
    const toJSON = (e as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === "function") {
      try {
        Object.assign(out, JSON.parse(JSON.stringify(e)) as object);
      } catch {
        // a field that does not serialize: keep name and message
      }
    } else {
      const code = (e as { code?: unknown }).code;
      if (typeof code === "string") out.code = code;
    }
    delete out.stack;
    // Storable in any store: a NUL or a lone surrogate in a message must not make the failure
    // itself unrecordable (the step would run again after its lease, and end abandoned with the
    // real error lost).
    return storableStrings(out);
  }
  return { name: "NonError", message: storableText(typeof e === "string" ? e : safeString(e)) };
}

function safeString(v: unknown): string {
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}
