/**
 * `defineSaga(name, options)`: a named, versioned list of steps, each with its compensation.
 * A definition is plain data plus functions; a runner ({@link createSagaRunner}) makes it durable.
 */
import { toMs, type Duration } from "../core/duration.js";
import { InvalidArgumentError } from "../core/errors.js";
import { isStandardSchema, parseWithSchema, type StandardSchemaV1 } from "../core/schema.js";
import type { StepContext } from "./context.js";
import {
  COMPENSATE_RETRY,
  retrySettings,
  STEP_RETRY,
  type RetrySettings,
  type SagaRetryOptions,
} from "./policy.js";

/**
 * One step of a saga. `R` is what `run` resolves with; it is stored (as JSON) and handed to
 * `compensate` — annotate `compensate`'s parameter with it.
 */
export interface SagaStep<I = unknown, R = unknown> {
  /** Unique in the saga: letters, digits, `_ . -`, at most 100 characters. */
  name: string;
  /** Does the step's work. Resolve with a JSON value to keep (e.g. the reservation id). */
  run(input: I, ctx: StepContext): Promise<R> | R;
  /** Undoes a completed `run`, given its stored result. Runs in reverse order of completion. */
  compensate?(result: R, ctx: StepContext): Promise<void> | void;
  /** Retries of `run`. Default 3 attempts, exponential 1 s → 1 min. */
  retry?: SagaRetryOptions;
  /** Retries of `compensate`. Default 10 attempts, exponential 1 s → 5 min; then the saga is `failed`. */
  compensateRetry?: SagaRetryOptions;
  /** Time allowed for one attempt of `run` or `compensate`; the attempt's `ctx.signal` aborts then. */
  timeout?: Duration;
  /**
   * The point of no return: once it succeeds the saga only goes forward — later steps are retried
   * (without limit, with backoff) and never compensated. At most one step; it has no `compensate`.
   */
  pivot?: boolean;
  /**
   * Run `run` and `compensate` inside a store transaction (`ctx.tx`) that also records the
   * outcome: the step's store effect happens exactly once. Default `false` (steps that call out).
   */
  transaction?: boolean;
}

/** Options of {@link defineSaga}. */
export interface SagaOptions<I = unknown> {
  /** A positive integer; bump it when the steps change, and keep the old definition while instances of it run. */
  version: number;
  /** Run in order. Each step's result type is its own: annotate `compensate`'s parameter with it. */
  steps: ReadonlyArray<SagaStep<I>>;
  /** The saga's deadline, from its start: past it, the saga compensates (unless past its pivot). */
  timeout?: Duration;
  /** A Standard Schema (zod, valibot, ...) the input must pass at `start`. */
  input?: StandardSchemaV1<unknown, I>;
  /** Default `retry` of every step. */
  retry?: SagaRetryOptions;
  /** Default `compensateRetry` of every step. */
  compensateRetry?: SagaRetryOptions;
  /** What the saga does, for people reading `patchbay saga show`. */
  description?: string;
}

/** A step with its options checked and defaults applied. */
export interface ResolvedStep<I = unknown> {
  readonly index: number;
  readonly name: string;
  run(input: I, ctx: StepContext): unknown;
  readonly compensate: ((result: unknown, ctx: StepContext) => unknown) | undefined;
  readonly retry: RetrySettings;
  readonly compensateRetry: RetrySettings;
  readonly timeoutMs: number | undefined;
  readonly pivot: boolean;
  readonly transaction: boolean;
}

/** A checked saga definition, made by {@link defineSaga}. */
export interface SagaDefinition<I = unknown> {
  readonly name: string;
  readonly version: number;
  readonly steps: ReadonlyArray<ResolvedStep<I>>;
  /** The deadline from start, in ms. */
  readonly timeoutMs: number | undefined;
  /** Index of the pivot step, or -1. */
  readonly pivotIndex: number;
  readonly description: string | undefined;
  /** Validates an input with the `input` schema (when there is one). */
  parseInput(input: unknown): Promise<I>;
}

/** Any saga definition, whatever its input type. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnySagaDefinition = SagaDefinition<any>;

const isList = (value: unknown): boolean => Array.isArray(value);

const SAGA_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/;
const STEP_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/;

/**
 * Defines a saga: its steps run in order; when one fails for good, the completed ones are
 * compensated in reverse order. Checks everything up front and throws `INVALID_ARGUMENT`.
 *
 * @example
 * const order = defineSaga("order", {
 *   version: 1,
 *   timeout: "1h",
 *   steps: [
 *     { name: "reserve", run: (o: Order) => inventory.reserve(o), compensate: (r: Reservation) => inventory.release(r.id) },
 *     { name: "charge", run: (o, ctx) => payments.charge(o, ctx.idempotencyKey), compensate: (c: Charge) => payments.refund(c.id) },
 *     { name: "ship", run: (o) => shipping.create(o), pivot: true },
 *     { name: "confirm", run: (o) => mail.confirm(o) },
 *   ],
 * });
 */
export function defineSaga<I = unknown>(name: string, options: SagaOptions<I>): SagaDefinition<I> {
  if (typeof name !== "string" || !SAGA_NAME.test(name)) {
    throw new InvalidArgumentError(
      `saga name ${JSON.stringify(name)} must be 1-100 characters of letters, digits, _ . - (starting with a letter or digit)`,
      "name",
    );
  }
  if (typeof options !== "object" || options === null) {
    throw new InvalidArgumentError(`saga ${name}: options are required`, "options");
  }
  const { version } = options;
  if (!Number.isSafeInteger(version) || version < 1) {
    throw new InvalidArgumentError(`saga ${name}: version must be a positive integer`, "options.version");
  }
  // (Array.isArray would narrow the steps to any[].)
  if (!isList(options.steps) || options.steps.length === 0) {
    throw new InvalidArgumentError(`saga ${name}: steps must be a non-empty array`, "options.steps");
  }
  if (options.input !== undefined && !isStandardSchema(options.input)) {
    throw new InvalidArgumentError(
      `saga ${name}: input must be a Standard Schema (zod, valibot, ...)`,
      "options.input",
    );
  }
  const timeoutMs = options.timeout === undefined ? undefined : toMs(options.timeout, `saga ${name} timeout`);
  if (timeoutMs === 0) throw new InvalidArgumentError(`saga ${name}: timeout must be > 0`, "options.timeout");
  const stepRetry = retrySettings(options.retry, STEP_RETRY, "options.retry");
  const compensateRetry = retrySettings(options.compensateRetry, COMPENSATE_RETRY, "options.compensateRetry");

  const seen = new Set<string>();
  let pivotIndex = -1;
  const steps = options.steps.map((step, index): ResolvedStep<I> => {
    const where = `options.steps[${index}]`;
    if (typeof step !== "object" || step === null)
      throw new InvalidArgumentError(`saga ${name}: ${where} must be a step object`, where);
    if (typeof step.name !== "string" || !STEP_NAME.test(step.name)) {
      throw new InvalidArgumentError(
        `saga ${name}: step name ${JSON.stringify(step.name)} must be 1-100 characters of letters, digits, _ . -`,
        `${where}.name`,
      );
    }
    if (seen.has(step.name))
      throw new InvalidArgumentError(`saga ${name}: two steps are named ${step.name}`, `${where}.name`);
    seen.add(step.name);
    if (typeof step.run !== "function")
      throw new InvalidArgumentError(`saga ${name}: step ${step.name} needs a run function`, `${where}.run`);
    if (step.compensate !== undefined && typeof step.compensate !== "function") {
      throw new InvalidArgumentError(
        `saga ${name}: step ${step.name}: compensate must be a function`,
        `${where}.compensate`,
      );
    }
    if (step.pivot === true) {
      if (pivotIndex >= 0)
        throw new InvalidArgumentError(`saga ${name}: only one step can be the pivot`, `${where}.pivot`);
      pivotIndex = index;
    }
    if (pivotIndex >= 0 && step.compensate !== undefined) {
      throw new InvalidArgumentError(
        `saga ${name}: step ${step.name} is ${pivotIndex === index ? "the pivot" : "after the pivot"}, so it is never compensated; remove its compensate`,
        `${where}.compensate`,
      );
    }
    const stepTimeout =
      step.timeout === undefined ? undefined : toMs(step.timeout, `step ${step.name} timeout`);
    if (stepTimeout === 0)
      throw new InvalidArgumentError(
        `saga ${name}: step ${step.name}: timeout must be > 0`,
        `${where}.timeout`,
      );
    const hasCompensate = step.compensate !== undefined;
    return {
      index,
      name: step.name,
      run: (input, ctx) => step.run(input, ctx),
      compensate: hasCompensate ? (result, ctx) => step.compensate!(result, ctx) : undefined,
      retry: retrySettings(step.retry, stepRetry, `${where}.retry`),
      compensateRetry: retrySettings(step.compensateRetry, compensateRetry, `${where}.compensateRetry`),
      timeoutMs: stepTimeout,
      pivot: step.pivot === true,
      transaction: step.transaction === true,
    };
  });
  const schema = options.input;
  return Object.freeze({
    name,
    version,
    steps: Object.freeze(steps),
    timeoutMs,
    pivotIndex,
    description: options.description,
    parseInput: async (input: unknown) =>
      schema === undefined
        ? (input as I)
        : parseWithSchema(schema, input, { eventType: `saga ${name} input`, version }),
  });
}

/** Alias of {@link defineSaga}, for `saga("order", { ... })`. */
export const saga = defineSaga;

/** True when `value` is a definition made by {@link defineSaga}. */
export function isSagaDefinition(value: unknown): value is SagaDefinition {
  if (typeof value !== "object" || value === null) return false;
  const v = value as Partial<SagaDefinition>;
  return (
    typeof v.name === "string" &&
    typeof v.version === "number" &&
    Array.isArray(v.steps) &&
    typeof v.parseInput === "function"
  );
}
