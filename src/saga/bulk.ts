/**
 * Operator actions on many sagas at once (`retry`, `skip` or `resolve` every saga a filter
 * matches). The matching instances are read once, by one statement: that snapshot is what the
 * action acts on. Each instance is then changed in its own transaction, and only while it is
 * still in the state the snapshot saw; one that changed meanwhile (a worker finished it, another
 * operator acted on it) is skipped and counted. Running the same action twice is safe: the second
 * run no longer matches what the first one changed.
 */
import { InvalidArgumentError } from "../core/errors.js";
import { SagaError } from "./errors.js";
import type { ResolveOptions, SkipOptions } from "./operator.js";
import type { SagaFilter, SagaInstance, SagaStatus } from "./records.js";
import type { InstanceRow, InstanceVersion } from "./repository.js";

/** What a bulk action does to each matching saga: the operator action of the same name. */
export type SagaBulkAction = "retry" | "skip" | "resolve";

/** Selects the sagas of a bulk action: a status is required, so an action never sweeps every saga. */
export interface SagaBulkFilter extends SagaFilter {
  status: SagaStatus | readonly SagaStatus[];
}

/** Progress of a bulk action, reported after each batch. */
export interface SagaBulkProgress {
  /** How many the snapshot holds. */
  matched: number;
  /** How many have been handled so far (acted on or skipped). */
  done: number;
  acted: number;
  skipped: number;
}

/** Options of {@link SagaRunner.bulk}. */
export interface SagaBulkOptions {
  /** Count the matching sagas and read a sample; change nothing. */
  dryRun?: boolean;
  /** Sagas handled between two progress reports. Default 100. */
  batchSize?: number;
  /** How many matching sagas `sample` holds. Default 10. */
  sampleSize?: number;
  /** `skip`: what each skipped step's `run` would have returned. */
  result?: unknown;
  /** `skip`, `resolve`: why, for each saga's record. */
  note?: string;
  /** Called after each batch; the next batch waits for a returned promise. */
  onProgress?: (progress: SagaBulkProgress) => void | Promise<void>;
}

/** Why one saga of the snapshot was skipped. */
export interface SagaBulkSkip {
  id: string;
  /** `"changed"` (it changed state, or is gone, since the snapshot) or the refusal's error code. */
  reason: string;
  message: string;
}

/** The outcome of {@link SagaRunner.bulk}. */
export interface SagaBulkResult {
  action: SagaBulkAction;
  dryRun: boolean;
  /** How many sagas matched when the action began (its snapshot). */
  matched: number;
  /** How many were changed by the action (0 in a dry run). */
  acted: number;
  /** How many were left alone: changed meanwhile, or refused by the action (0 in a dry run). */
  skipped: number;
  /** Why, for the first 100 skipped. */
  skips: SagaBulkSkip[];
  /** The first `sampleSize` matching sagas, oldest first, as they were when the action began. */
  sample: SagaInstance[];
}

const MAX_SKIPS = 100;

interface BulkDeps {
  versions(filter: SagaFilter): Promise<InstanceVersion[]>;
  get(id: string): Promise<SagaInstance | undefined>;
  retry(id: string, expected: InstanceVersion): Promise<InstanceRow | undefined>;
  skip(id: string, options: SkipOptions, expected: InstanceVersion): Promise<InstanceRow | undefined>;
  resolve(id: string, options: ResolveOptions, expected: InstanceVersion): Promise<InstanceRow | undefined>;
  /** Wakes the workers (and settles waiters) after a batch. */
  acted(rows: InstanceRow[]): Promise<void>;
}

const wholeAtLeastOne = (value: number | undefined, name: string, fallback: number): number => {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new InvalidArgumentError(`${name} must be a whole number of at least 1, got ${value}`, name);
  }
  return value;
};

/** Runs a bulk action (see the module's comment). */
export async function runBulk(
  deps: BulkDeps,
  action: SagaBulkAction,
  filter: SagaBulkFilter,
  options: SagaBulkOptions = {},
): Promise<SagaBulkResult> {
  if (!["retry", "skip", "resolve"].includes(action)) {
    throw new InvalidArgumentError(
      `bulk action must be retry, skip or resolve, got ${String(action)}`,
      "action",
    );
  }
  const statuses = typeof filter?.status === "string" ? [filter.status] : [...(filter?.status ?? [])];
  if (statuses.length === 0) {
    throw new InvalidArgumentError(
      "a bulk action needs filter.status (which sagas to act on)",
      "filter.status",
    );
  }
  const batchSize = wholeAtLeastOne(options.batchSize, "batchSize", 100);
  const sampleSize = options.sampleSize === 0 ? 0 : wholeAtLeastOne(options.sampleSize, "sampleSize", 10);

  const snapshot = await deps.versions({ ...filter, status: statuses });
  const sample: SagaInstance[] = [];
  for (const v of snapshot.slice(0, sampleSize)) {
    const found = await deps.get(v.id);
    if (found) sample.push(found);
  }
  const result: SagaBulkResult = {
    action,
    dryRun: options.dryRun === true,
    matched: snapshot.length,
    acted: 0,
    skipped: 0,
    skips: [],
    sample,
  };
  if (options.dryRun) return result;

  const skip = (id: string, reason: string, message: string) => {
    result.skipped++;
    if (result.skips.length < MAX_SKIPS) result.skips.push({ id, reason, message });
  };
  const one = (v: InstanceVersion): Promise<InstanceRow | undefined> => {
    const note = options.note === undefined ? {} : { note: options.note };
    if (action === "retry") return deps.retry(v.id, v);
    if (action === "skip") {
      return deps.skip(
        v.id,
        { ...note, ...(options.result === undefined ? {} : { result: options.result }) },
        v,
      );
    }
    return deps.resolve(v.id, note, v);
  };
  for (let start = 0; start < snapshot.length; start += batchSize) {
    const changed: InstanceRow[] = [];
    for (const v of snapshot.slice(start, start + batchSize)) {
      try {
        const row = await one(v);
        if (row) {
          result.acted++;
          changed.push(row);
        } else skip(v.id, "changed", "it changed state (or was deleted) after the action began");
      } catch (e) {
        // A refusal (e.g. `skip` of a saga with no step at fault) is that saga's answer, not the run's.
        if (!(e instanceof SagaError)) throw e;
        skip(v.id, e.code, e.message);
      }
    }
    if (changed.length > 0) await deps.acted(changed);
    await options.onProgress?.({
      matched: result.matched,
      done: Math.min(start + batchSize, snapshot.length),
      acted: result.acted,
      skipped: result.skipped,
    });
  }
  return result;
}
