/**
 * Faults you choose: a {@link Fault} fails the next N calls, or each call with a probability, with
 * a typed `FAULT_INJECTED` error; wrappers put one in front of a handler or saga step
 * ({@link withFault}), a transport's publish ({@link withTransportFaults}) or a store's queries
 * and transactions ({@link withStoreFaults}).
 */
import type { Transport } from "../bus/transport.js";
import { InvalidArgumentError, PatchbayError } from "../core/errors.js";
import type { SqlStore } from "../store/sql-store.js";

/** Raised by a {@link Fault}: `target` says which one, `injected` how many it has raised so far. */
export class FaultInjectedError extends PatchbayError {
  readonly target: string;
  readonly injected: number;
  constructor(target: string, injected: number, retryable: boolean) {
    super("FAULT_INJECTED", `fault injected into ${target} (#${injected})`, { retryable });
    this.target = target;
    this.injected = injected;
  }
}

declare module "../core/errors.js" {
  interface PatchbayErrorCodes {
    FAULT_INJECTED: FaultInjectedError;
  }
}

/** Options of {@link createFault}. */
export interface FaultOptions {
  /** Whether the injected error says it is retryable (default `true`: a transient failure). */
  retryable?: boolean;
  /** The random source for probabilities (default `Math.random`); give a seeded one for repeatable runs. */
  random?: () => number;
}

/** A switch that makes calls fail. */
export interface Fault {
  readonly target: string;
  /** Fails the next `n` calls (added to any still pending). */
  failNext(n?: number): Fault;
  /** Fails each call with probability `p` (0 turns it off), after the `failNext` ones. */
  failWithProbability(p: number): Fault;
  /** No more failures. */
  reset(): Fault;
  /** How many failures it injected. */
  readonly injected: number;
  /** How many calls went through it. */
  readonly calls: number;
  /** Throws {@link FaultInjectedError} when this call is to fail. */
  check(): void;
}

/**
 * Creates a fault for `target` (a name for messages: `"handler:email"`, `"store"`).
 *
 * @example
 * const fault = createFault("payments").failNext(2);
 * pb.subscribe(OrderPaid, { group: "ledger" }, withFault(fault, handler)); // fails twice, then runs
 */
export function createFault(target: string, options: FaultOptions = {}): Fault {
  const random = options.random ?? Math.random;
  const retryable = options.retryable ?? true;
  let pending = 0;
  let probability = 0;
  let injected = 0;
  let calls = 0;
  const fault: Fault = {
    target,
    failNext(n = 1) {
      if (!Number.isSafeInteger(n) || n < 0)
        throw new InvalidArgumentError(`failNext needs a whole number >= 0, got ${n}`, "n");
      pending += n;
      return fault;
    },
    failWithProbability(p) {
      if (!(p >= 0 && p <= 1))
        throw new InvalidArgumentError(`a probability is between 0 and 1, got ${p}`, "p");
      probability = p;
      return fault;
    },
    reset() {
      pending = 0;
      probability = 0;
      return fault;
    },
    get injected() {
      return injected;
    },
    get calls() {
      return calls;
    },
    check() {
      calls++;
      const fail = pending > 0 ? (pending--, true) : probability > 0 && random() < probability;
      if (fail) throw new FaultInjectedError(target, ++injected, retryable);
    },
  };
  return fault;
}

/** `fn` behind `fault`: a handler, a saga step's `run` or `compensate`, any async function. */
export function withFault<A extends unknown[], R>(fault: Fault, fn: (...args: A) => R | Promise<R>) {
  return async (...args: A): Promise<R> => {
    fault.check();
    return fn(...args);
  };
}

/** `transport` whose `publish` goes through `fault` first (the outbox relay and direct publishes). */
export function withTransportFaults(transport: Transport, fault: Fault): Transport {
  return new Proxy(transport, {
    get(target, prop, receiver) {
      if (prop === "publish") {
        return async (...args: Parameters<Transport["publish"]>) => {
          fault.check();
          return target.publish(...args);
        };
      }
      const value: unknown = Reflect.get(target, prop, receiver);
      return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/**
 * `store` whose `query` and `transaction` go through `fault` first, as if the database went away
 * for a moment. Everything else (open, close, migrations) is untouched.
 */
export function withStoreFaults<S extends SqlStore>(store: S, fault: Fault): S {
  return new Proxy(store, {
    get(target, prop, receiver) {
      const value: unknown = Reflect.get(target, prop, receiver);
      if ((prop === "query" || prop === "transaction") && typeof value === "function") {
        return (...args: unknown[]) => {
          try {
            fault.check();
          } catch (e) {
            return Promise.reject(e instanceof Error ? e : new Error(String(e)));
          }
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      }
      return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}
