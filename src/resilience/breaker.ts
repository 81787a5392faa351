import { systemClock, type Clock } from "../core/clock.js";
import { toMs, type Duration } from "../core/duration.js";
import { InvalidArgumentError } from "../core/errors.js";
import type { BreakerCounts, BreakerStrategy } from "./breaker-strategy.js";
import { consecutive } from "./consecutive.js";
import { CircuitOpenError } from "./errors.js";
import {
  abortReason,
  checkCount,
  checkFunction,
  isAborted,
  Listeners,
  rootContext,
  RUN,
  type ContextPolicy,
} from "./internal.js";
import type { Policy, PolicyContext, PolicyFn } from "./policy.js";

/** Where a circuit breaker stands. `"isolated"` is the manual open of {@link CircuitBreakerPolicy.isolate}. */
export type CircuitState = "closed" | "open" | "half-open" | "isolated";

/** Emitted on every state change. */
export interface CircuitStateChange {
  /** The new state. */
  readonly state: CircuitState;
  /** The state it left. */
  readonly previous: CircuitState;
}

/** A circuit breaker's state as plain JSON: save it with `toJSON()`, restore it with `initialState`. */
export interface CircuitBreakerSnapshot {
  /** The format version of this snapshot. */
  readonly version: 1;
  /** Isolation is not saved: it belongs to whoever holds the handle, in this process. */
  readonly state: "closed" | "open" | "half-open";
  /** When `state` is `"open"`: the time (ms since the epoch) it turns half-open. */
  readonly openUntil?: number;
  /** The strategy's failure counts. */
  readonly counts: unknown;
}

/** Options of {@link circuitBreaker}. */
export interface CircuitBreakerOptions {
  /** When to open: {@link consecutive} or {@link failureRate}. Default `consecutive()`. */
  strategy?: BreakerStrategy;
  /** How long the circuit stays open before letting probes through. Default `"30s"`. */
  halfOpenAfter?: Duration;
  /** Concurrent probe calls allowed while half-open; the rest fail at once. Default 1. */
  halfOpenProbes?: number;
  /** Probe successes that close the circuit again. Default 1. */
  successThreshold?: number;
  /**
   * Whether an error says the dependency is unhealthy. Default: every error. An error this
   * rejects counts as a success (the dependency answered, e.g. a 404). A call the caller aborted
   * counts as neither, whatever this says.
   */
  isFailure?: (error: unknown) => boolean;
  /** The source of time. Default the system clock. */
  clock?: Clock;
  /** A state saved earlier by `toJSON()`, e.g. from the previous process. */
  initialState?: CircuitBreakerSnapshot;
}

/** Holds a circuit open by hand until released. */
export interface IsolationHandle {
  /** Ends this isolation; the circuit closes when no isolation is left. Safe to call twice. */
  release(): void;
}

/** A {@link Policy} that stops calling a dependency that keeps failing. */
export interface CircuitBreakerPolicy extends Policy {
  /** The current state; an open circuit whose wait has passed reads (and turns) `"half-open"`. */
  readonly state: CircuitState;
  /** Listens to state changes; returns a function that unsubscribes. */
  onStateChange(listener: (change: CircuitStateChange) => void): () => void;
  /** Opens the circuit by hand (calls reject with `CIRCUIT_OPEN`) until the handle is released. */
  isolate(): IsolationHandle;
  /**
   * Closes the circuit by hand and forgets its failure counts (an operator judged the dependency
   * healthy again). Results of calls started before are ignored. Isolation is not released: it
   * belongs to whoever holds the handle, so an isolated circuit stays isolated.
   */
  reset(): void;
  /** The state as plain JSON, for `initialState`. */
  toJSON(): CircuitBreakerSnapshot;
}

/**
 * A circuit breaker. Closed, it runs calls and counts failures with its strategy; when the
 * strategy says so it opens and rejects every call at once with a {@link CircuitOpenError}
 * (`CIRCUIT_OPEN`, not retryable). After `halfOpenAfter` it turns half-open and lets exactly
 * `halfOpenProbes` concurrent calls through, rejecting the others at once; `successThreshold`
 * probe successes close it, a probe failure opens it again for another `halfOpenAfter`.
 *
 * @example
 * const breaker = circuitBreaker({ strategy: failureRate({ threshold: 0.5 }), halfOpenAfter: "10s" });
 * breaker.onStateChange(({ state }) => log.warn({ state }, "payments circuit"));
 * await breaker.execute(({ signal }) => payments.charge(order, { signal }));
 */
export function circuitBreaker(options: CircuitBreakerOptions = {}): CircuitBreakerPolicy {
  return new CircuitBreaker(options);
}

class CircuitBreaker implements CircuitBreakerPolicy, ContextPolicy {
  readonly #counts: BreakerCounts;
  readonly #clock: Clock;
  readonly #halfOpenAfterMs: number;
  readonly #probeLimit: number;
  readonly #successThreshold: number;
  readonly #isFailure: ((error: unknown) => boolean) | undefined;
  readonly #changes = new Listeners<CircuitStateChange>();
  #state: "closed" | "open" | "half-open" = "closed";
  #isolations = 0;
  #openUntil = 0;
  #probes = 0;
  #probeSuccesses = 0;
  /** Bumped on every state change: results of calls started in an earlier state are ignored. */
  #epoch = 0;

  constructor(options: CircuitBreakerOptions) {
    this.#counts = (options.strategy ?? consecutive()).create();
    this.#clock = options.clock ?? systemClock;
    this.#halfOpenAfterMs = toMs(options.halfOpenAfter ?? "30s", "halfOpenAfter");
    this.#probeLimit = checkCount(options.halfOpenProbes ?? 1, "halfOpenProbes", 1);
    this.#successThreshold = checkCount(options.successThreshold ?? 1, "successThreshold", 1);
    this.#isFailure =
      options.isFailure === undefined ? undefined : checkFunction(options.isFailure, "isFailure");
    if (options.initialState !== undefined) this.#restore(options.initialState);
  }

  get state(): CircuitState {
    if (this.#isolations > 0) return "isolated";
    if (this.#state === "open" && this.#clock.now() >= this.#openUntil) this.#moveTo("half-open");
    return this.#state;
  }

  execute<T>(fn: PolicyFn<T>, signal?: AbortSignal): Promise<T> {
    return this[RUN](fn, rootContext(signal));
  }

  async [RUN]<T>(fn: PolicyFn<T>, parent: PolicyContext): Promise<T> {
    if (isAborted(parent)) throw abortReason(parent);
    let probe = false;
    if (this.#state !== "closed" || this.#isolations > 0) {
      const state = this.state;
      if (state === "isolated") throw new CircuitOpenError(Number.POSITIVE_INFINITY, "isolated");
      if (state === "open") throw new CircuitOpenError(this.#openUntil - this.#clock.now(), "open");
      if (state === "half-open") {
        if (this.#probes >= this.#probeLimit) throw new CircuitOpenError(0, "half-open");
        this.#probes++;
        probe = true;
      }
    }
    const epoch = this.#epoch;
    let value: T;
    try {
      // The breaker adds no signal of its own: the parent context goes through as is.
      value = await fn(parent);
    } catch (error) {
      if (epoch === this.#epoch) {
        if (isAborted(parent)) {
          if (probe) this.#probes--;
        } else if (this.#countsAsFailure(error)) this.#failure(probe);
        else this.#success(probe);
      }
      throw error;
    }
    if (epoch === this.#epoch) this.#success(probe);
    return value;
  }

  /**
   * Whether a failed call counts against the dependency. A classifier that throws (say
   * `(e) => e.response.status >= 500` on an error without a response) counts it as a failure: its
   * error must neither replace the call's own nor leave a probe's slot taken, which would keep
   * the circuit half-open, refusing every call, forever.
   */
  #countsAsFailure(error: unknown): boolean {
    if (this.#isFailure === undefined) return true;
    try {
      return this.#isFailure(error);
    } catch {
      return true;
    }
  }

  #success(probe: boolean): void {
    if (!probe) {
      this.#counts.success(this.#clock.now());
      return;
    }
    this.#probes--;
    if (++this.#probeSuccesses >= this.#successThreshold) this.#moveTo("closed");
  }

  #failure(probe: boolean): void {
    if (probe || this.#counts.failure(this.#clock.now())) this.#moveTo("open");
  }

  #moveTo(to: "closed" | "open" | "half-open", previous: CircuitState = this.#state): void {
    this.#state = to;
    this.#epoch++;
    this.#probes = 0;
    this.#probeSuccesses = 0;
    if (to !== "half-open") this.#counts.reset();
    if (to === "open") this.#openUntil = this.#clock.now() + this.#halfOpenAfterMs;
    if (previous !== to) this.#changes.emit({ state: to, previous });
  }

  onStateChange(listener: (change: CircuitStateChange) => void): () => void {
    return this.#changes.add(listener);
  }

  isolate(): IsolationHandle {
    const previous = this.state;
    this.#isolations++;
    this.#epoch++;
    if (previous !== "isolated") this.#changes.emit({ state: "isolated", previous });
    let held = true;
    return {
      release: () => {
        if (!held) return;
        held = false;
        if (--this.#isolations === 0) this.#moveTo("closed", "isolated");
      },
    };
  }

  reset(): void {
    this.#moveTo("closed", this.#isolations > 0 ? "closed" : this.#state);
  }

  toJSON(): CircuitBreakerSnapshot {
    if (this.#isolations > 0) return { version: 1, state: "closed", counts: this.#counts.toJSON() };
    const state = this.state as "closed" | "open" | "half-open";
    return state === "open"
      ? { version: 1, state, openUntil: this.#openUntil, counts: this.#counts.toJSON() }
      : { version: 1, state, counts: this.#counts.toJSON() };
  }

  #restore(saved: CircuitBreakerSnapshot): void {
    const { version, state, openUntil, counts } = (saved ?? {}) as Partial<CircuitBreakerSnapshot>;
    const ok =
      version === 1 &&
      (state === "closed" ||
        state === "half-open" ||
        (state === "open" && typeof openUntil === "number" && Number.isFinite(openUntil)));
    if (!ok) {
      throw new InvalidArgumentError(
        'initialState must be a circuitBreaker toJSON() value: { version: 1, state: "closed" | "open" | "half-open", openUntil?, counts }',
        "initialState",
      );
    }
    this.#counts.restore(counts);
    this.#state = state;
    if (state === "open") this.#openUntil = openUntil as number;
  }
}
