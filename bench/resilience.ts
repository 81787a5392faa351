/**
 * Resilience benchmark: the per-call overhead of a composed policy — timeout + retry + circuit
 * breaker — around a no-op async function, on the success path (every call succeeds, so what is
 * measured is the cost of the machinery, not of waiting). Beside ours, the same composition in
 * cockatiel and in opossum, and the bare `await fn()` as the limit, measured in the same process.
 *
 * - ours:      wrap(timeout("10s"), retry({ maxAttempts: 3 }), circuitBreaker({ strategy: consecutive({ threshold: 5 }) }))
 * - cockatiel: wrap(timeout(10_000, Cooperative), retry(handleAll, { maxAttempts: 2 }), circuitBreaker(handleAll,
 *              { halfOpenAfter: 30_000, breaker: new ConsecutiveBreaker(5) })) — its maxAttempts counts retries
 * - opossum:   new CircuitBreaker(fn, { timeout: 10_000, resetTimeout: 30_000 }) (its own timeout, rolling
 *              stats with defaults) inside a plain retry loop of 3 attempts; opossum has no retry of its own.
 *
 * Each round runs every contender for ITERATIONS sequential calls, in a rotating order; the table
 * shows the median over ROUNDS rounds.
 */
import {
  ConsecutiveBreaker,
  ExponentialBackoff,
  TimeoutStrategy,
  circuitBreaker as cockatielBreaker,
  handleAll,
  retry as cockatielRetry,
  timeout as cockatielTimeout,
  wrap as cockatielWrap,
} from "cockatiel";
import CircuitBreaker from "opossum";
import {
  circuitBreaker,
  consecutive,
  retry,
  timeout,
  wrap,
  type PolicyContext,
} from "../src/resilience/index.js";

const ITERATIONS = Number(process.env.BENCH_ITERATIONS ?? 200_000);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 50_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);

const noop = (): Promise<undefined> => Promise.resolve(undefined);
const readsSignal = ({ signal }: PolicyContext): Promise<boolean> => Promise.resolve(signal.aborted);

interface Contender {
  name: string;
  call: () => Promise<unknown>;
  dispose?: () => void;
}

function contenders(): Contender[] {
  const ours = wrap(
    timeout("10s"),
    retry({ maxAttempts: 3 }),
    circuitBreaker({ strategy: consecutive({ threshold: 5 }), halfOpenAfter: "30s" }),
  );
  const cockatiel = cockatielWrap(
    cockatielTimeout(10_000, TimeoutStrategy.Cooperative),
    cockatielRetry(handleAll, { maxAttempts: 2, backoff: new ExponentialBackoff() }),
    cockatielBreaker(handleAll, { halfOpenAfter: 30_000, breaker: new ConsecutiveBreaker(5) }),
  );
  const opossum = new CircuitBreaker(noop, { timeout: 10_000, resetTimeout: 30_000 });
  const opossumWithRetry = async (): Promise<unknown> => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await opossum.fire();
      } catch (error) {
        if (attempt >= 3) throw error;
        await new Promise((resolve) => setTimeout(resolve, 100 * 2 ** (attempt - 1)));
      }
    }
  };
  return [
    { name: "limit: bare `await fn()`", call: noop },
    { name: "patchbay", call: () => ours.execute(noop) },
    // Our timeout creates the call's AbortController only when the callee reads ctx.signal.
    { name: "patchbay, callee reads ctx.signal", call: () => ours.execute(readsSignal) },
    { name: "cockatiel 3.2.1", call: () => cockatiel.execute(noop) },
    { name: "opossum 9.0.0 + retry loop", call: opossumWithRetry, dispose: () => opossum.shutdown() },
  ];
}

async function nsPerCall(call: () => Promise<unknown>, iterations: number): Promise<number> {
  const started = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) await call();
  return Number(process.hrtime.bigint() - started) / iterations;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

/** Runs the benchmark and prints a markdown table. */
export async function main(): Promise<void> {
  const list = contenders();
  for (const c of list) await nsPerCall(c.call, WARMUP);
  const samples = new Map<string, number[]>(list.map((c) => [c.name, []]));
  for (let round = 0; round < ROUNDS; round++) {
    // Rotate the order so no contender always runs right after another's garbage.
    for (let k = 0; k < list.length; k++) {
      const c = list[(round + k) % list.length] as Contender;
      samples.get(c.name)?.push(await nsPerCall(c.call, ITERATIONS));
    }
  }
  for (const c of list) c.dispose?.();

  const medians = list.map((c) => ({ name: c.name, ns: median(samples.get(c.name) ?? []) }));
  const cockatiel = medians.find((m) => m.name.startsWith("cockatiel"))?.ns ?? Number.NaN;
  const ratio = (ns: number) => {
    const r = ns / cockatiel;
    return `${r.toFixed(r < 0.1 ? 3 : 2)}×`;
  };
  const rows = medians.map((m) => [m.name, m.ns.toFixed(0), ratio(m.ns)]);
  const header = ["what (timeout + retry + breaker, success path)", "ns/call", "vs cockatiel"];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] as number)).join(" | ")} |`;
  process.stdout.write(
    [
      `resilience: ${ITERATIONS} calls x ${ROUNDS} rounds (median), Node ${process.version}`,
      "",
      line(header),
      line(widths.map((w) => "-".repeat(w))),
      ...rows.map(line),
      "",
    ].join("\n"),
  );
}
