/**
 * `createSagaRunner()`: starts saga instances durably, runs them on workers that claim due
 * instances with a lease (so a crashed worker's instances are taken over), and gives operators
 * inspection and actions.
 */
import { setMaxListeners } from "node:events";
import { randomUUID } from "node:crypto";
import type { EventBus } from "../bus/bus.js";
import { startClaimLoop, type ClaimLoop } from "../core/claim-loop.js";
import { systemClock, type Clock } from "../core/clock.js";
import { toMs, type Duration } from "../core/duration.js";
import { measure } from "../core/instruments.js";
import { InvalidArgumentError } from "../core/errors.js";
import { createLifecycle, StoppedError, type Lifecycle, type StopOptions } from "../core/lifecycle.js";
import { uuidv7 } from "../core/ids.js";
import { silentLogger, type Logger } from "../core/logger.js";
import type { StoreTx } from "../store/contracts.js";
import type { SqlStore } from "../store/sql-store.js";
import { createWakeSignal } from "../store/wake-signal.js";
import {
  defineSaga,
  isSagaDefinition,
  type AnySagaDefinition,
  type SagaDefinition,
  type SagaOptions,
} from "./definition.js";
import {
  runBulk,
  type SagaBulkAction,
  type SagaBulkFilter,
  type SagaBulkOptions,
  type SagaBulkResult,
} from "./bulk.js";
import { SagaError } from "./errors.js";
import { createExecutor } from "./executor.js";
import { createOperator, type ResolveOptions, type SkipOptions } from "./operator.js";
import {
  TERMINAL_STATUSES,
  type SagaDetails,
  type SagaFilter,
  type SagaInstance,
  type SagaStepRecord,
} from "./records.js";
import { publicView, sagaRepository, type InstanceRow } from "./repository.js";
import { createWaiters, type WaitOptions } from "./waiters.js";

export type { WaitOptions } from "./waiters.js";

/** Options of {@link createSagaRunner}. */
export interface SagaRunnerOptions {
  /** Where instances and step outcomes live. */
  store: SqlStore;
  /** Publishes `patchbay.saga.failed`, and gives transactional steps `ctx.tx.publish`. Must use the same store. */
  bus?: EventBus;
  /** Definitions this process runs (several versions of one saga may be given). */
  sagas?: readonly AnySagaDefinition[];
  /** Instances driven at once by this process. Default 10. */
  concurrency?: number;
  /** How long a claimed instance is held before another worker may take it over (renewed while it runs). Default 30 s. */
  lease?: Duration;
  /** How often an idle worker looks for due instances (wake-ups come sooner for work started here or, where the store has notifications, anywhere). Default 1 s. */
  pollInterval?: Duration;
  clock?: Clock;
  logger?: Logger;
  /** Uniform numbers in [0, 1) for backoff jitter. Default `Math.random`. */
  random?: () => number;
}

/** Options of {@link SagaHandle.start}. */
export interface StartSagaOptions {
  /** The instance id: a second start with the same id returns the existing instance. Default a new UUIDv7. */
  id?: string;
  /** Start inside your transaction: the instance exists exactly when your writes commit. */
  tx?: StoreTx;
}

/** What {@link SagaHandle.start} returns: the instance, and whether this call created it. */
export type StartedSaga = SagaInstance & { readonly created: boolean };

/** One saga, bound to a runner. */
export interface SagaHandle<I = unknown> {
  readonly name: string;
  readonly version: number;
  readonly definition: SagaDefinition<I>;
  /**
   * Records a new instance (input validated by the definition's `input` schema) and resolves once
   * it is durable; a worker runs it. Idempotent by `id`: a second start returns the existing instance.
   */
  start(input: I, options?: StartSagaOptions): Promise<StartedSaga>;
}

/** Options of {@link SagaRunner.stop}: `timeout`, how long to wait for steps in flight before aborting their `ctx.signal` (default 30 s). */
export type StopSagaRunnerOptions = StopOptions;

/** The saga runner: definitions, workers, inspection and operator actions. */
export interface SagaRunner extends Lifecycle {
  /** Registers a definition (or defines one) and returns its handle; with a name only, the newest registered version. */
  saga<I>(definition: SagaDefinition<I>): SagaHandle<I>;
  saga<I>(name: string, options: SagaOptions<I>): SagaHandle<I>;
  saga(name: string): SagaHandle;
  /**
   * Opens the store and starts claiming due instances (taking over those whose lease expired).
   * A no-op when started; `STOPPED` after `stop()`. Sagas registered later run as well.
   */
  start(): Promise<void>;
  /** Stops claiming; lets steps in flight finish (up to `timeout`, then aborts them); releases instances. Safe twice. */
  stop(options?: StopSagaRunnerOptions): Promise<void>;
  /** One instance with its step timeline. */
  get(id: string): Promise<SagaDetails | undefined>;
  /** Instances by status and name, newest first (default limit 50). */
  list(filter?: SagaFilter & { limit?: number }): Promise<SagaInstance[]>;
  count(filter?: SagaFilter): Promise<number>;
  /** Resolves once the instance reaches completed, compensated, failed or resolved. */
  wait(id: string, options?: WaitOptions): Promise<SagaInstance>;
  /** Operator: run the current step or compensation again now, with fresh attempts (a `failed` saga resumes). */
  retry(id: string): Promise<SagaInstance>;
  /** Operator: skip the current step (forward: with an optional result) or compensation (done by hand). */
  skip(id: string, options?: SkipOptions): Promise<SagaInstance>;
  /** Operator: mark a stuck saga `resolved` (settled by hand). */
  resolve(id: string, options?: ResolveOptions): Promise<SagaInstance>;
  /**
   * Operator: `retry`, `skip` or `resolve` every saga `filter` matches when it begins (one
   * snapshot), in batches; a saga that changes state meanwhile is skipped and counted. Safe to run
   * twice. With `dryRun`, only counts and samples them.
   *
   * @example
   * const r = await runner.bulk("retry", { status: "failed", name: "order", since: Date.now() - 3_600_000 });
   * console.log(r.matched, r.acted, r.skipped);
   */
  bulk(action: SagaBulkAction, filter: SagaBulkFilter, options?: SagaBulkOptions): Promise<SagaBulkResult>;
}

const CHANNEL = "patchbay_saga";
const ID = /^[^\p{Cc}]{1,200}$/u;

const timelineOrder = (a: SagaDetails["steps"][number], b: SagaDetails["steps"][number]) =>
  a.startedAt - b.startedAt ||
  (a.phase === b.phase
    ? a.phase === "run"
      ? a.index - b.index
      : b.index - a.index
    : a.phase === "run"
      ? -1
      : 1);

/**
 * Creates a saga runner on a store.
 *
 * @example
 * const sagas = createSagaRunner({ store, bus, sagas: [orderSaga] });
 * await sagas.start();
 * await sagas.saga(orderSaga).start({ orderId: "o-1", sku: "A", qty: 2, amount: 4200 }, { id: "o-1" });
 * const done = await sagas.wait("o-1"); // completed, or compensated
 * await sagas.stop();
 */
export function createSagaRunner(options: SagaRunnerOptions): SagaRunner {
  if (typeof options !== "object" || options === null || typeof options.store?.transaction !== "function") {
    throw new InvalidArgumentError("createSagaRunner needs a store", "options.store");
  }
  const store = options.store;
  const clock = options.clock ?? systemClock;
  const logger = (options.logger ?? silentLogger).child({ component: "saga" });
  const concurrency = options.concurrency ?? 10;
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new InvalidArgumentError("concurrency must be a positive integer", "options.concurrency");
  }
  const leaseMs = toMs(options.lease ?? "30s", "lease");
  if (leaseMs < 100) throw new InvalidArgumentError("lease must be at least 100 ms", "options.lease");
  const pollMs = toMs(options.pollInterval ?? "1s", "pollInterval");
  const repo = sagaRepository(store);
  const owner = `${randomUUID().slice(0, 8)}@${process.pid}`;
  const registry = new Map<string, Map<number, AnySagaDefinition>>();
  const inFlight = new Set<Promise<void>>();
  /** Drives running; freed synchronously when one ends, before its waiters hear of it. */
  let busy = 0;
  const stopping = new AbortController();
  // Every step in flight listens to it: as many listeners as the concurrency, not a leak.
  setMaxListeners(0, stopping.signal);
  let reserved = 0;
  /** The claim loop runs: from start() until stop() is called. */
  let active = false;
  let claimLoop: ClaimLoop | undefined;
  let unlisten: (() => Promise<void>) | undefined;
  /** Instances this process drives now (the rows the executor keeps current): never claimed again by it. */
  const driving = new Map<string, InstanceRow>();
  /** Work may be waiting: something was started or released. */
  const wake = () => claimLoop?.wake();
  const running = () => active;
  const names = () => [...registry.keys()];
  const definition = (name: string, version: number) => registry.get(name)?.get(version);
  const knownVersions = (name: string) => [...(registry.get(name)?.keys() ?? [])].sort((a, b) => a - b);

  const { wait, settled } = createWaiters(repo, store, pollMs, (id) => driving.has(id));
  const free = () => concurrency - busy - reserved;
  /** Wakes the runners of other processes after work committed here outside a transaction. */
  const wakeOthers = createWakeSignal(store, CHANNEL, logger, "saga");
  const drive = createExecutor({
    store,
    bus: options.bus,
    repo,
    clock,
    logger,
    random: options.random ?? Math.random,
    owner,
    leaseMs,
    definition,
    knownVersions,
    running,
    stopSignal: stopping.signal,
    finished(row) {
      busy--;
      driving.delete(row.id);
      if (TERMINAL_STATUSES.includes(row.status)) {
        claimLoop?.freed();
        settled(publicView(row));
      } else {
        // It waits for a retry (or was released): due again at its own time, which the loop
        // learns from a round (a claim, then nextDue), as the bus's local queue does. Freeing the
        // slot alone left a loop that had found nothing asleep until its poll, past the retry.
        claimLoop?.wake();
      }
    },
  });
  const operator = createOperator({ store, repo, clock, definition });

  /** Drives an instance in the background (the executor reports its end through `finished`). */
  const track = (row: InstanceRow, steps: Promise<SagaStepRecord[] | undefined> | SagaStepRecord[]) => {
    busy++;
    driving.set(row.id, row);
    const p = (async () => {
      const records = await steps;
      if (records) return drive(row, records);
      busy--;
      driving.delete(row.id);
      claimLoop?.freed();
      logger.warn({ sagaId: row.id }, "patchbay saga: could not read step records; retrying after the lease");
    })();
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
  };

  /** The runner's claim loop: claims due instances (and those whose lease ran out) into free slots. */
  const startClaiming = () =>
    startClaimLoop({
      free,
      // Freed slots are claimed together, half of them at a time (or after a few ms): a claim is
      // a write like a step's outcome. Claiming each one alone cost a backlog ~0.56 claims per saga.
      gather: Math.ceil(concurrency / 2),
      inFlight: () => busy + reserved,
      async claim(slots) {
        const now = clock.now();
        // Only a lease the clock moved past (a fake clock's jump) could be claimed again.
        const expired = [...driving.values()].filter((r) => r.runAt <= now).map((r) => r.id);
        const rows = await repo.claim(names(), slots, owner, now, leaseMs, expired);
        for (const row of rows) {
          // A fresh instance has no step records yet: skip the read.
          const fresh = row.status === "running" && row.step === 0;
          track(row, fresh ? [] : repo.steps(store, row.id).catch(() => undefined));
        }
        return { claimed: rows.length };
      },
      // Not the leases of what it drives: the loop never waits for those to run out.
      nextDue: () => repo.nextDue(names(), [...driving.keys()]),
      clock,
      pollMs,
      onError: (e) => logger.warn({ err: e }, "patchbay saga: claim failed; retrying"),
    });

  function register<I>(def: SagaDefinition<I>): SagaHandle<I> {
    if (!isSagaDefinition(def))
      throw new InvalidArgumentError("not a saga definition (use defineSaga)", "definition");
    const versions = registry.get(def.name) ?? new Map<number, AnySagaDefinition>();
    const existing = versions.get(def.version);
    if (existing && existing !== def) {
      throw new InvalidArgumentError(
        `saga ${def.name} version ${def.version} is registered twice with different definitions`,
        "definition",
      );
    }
    versions.set(def.version, def);
    registry.set(def.name, versions);
    return handle(def);
  }

  function handle<I>(def: SagaDefinition<I>): SagaHandle<I> {
    return {
      name: def.name,
      version: def.version,
      definition: def,
      start: (input, startOptions = {}) => start(def, input, startOptions),
    };
  }

  async function start<I>(def: SagaDefinition<I>, input: I, opts: StartSagaOptions): Promise<StartedSaga> {
    // While stopping an instance is still written (a later worker runs it); once stopped, refused.
    if (life.state === "stopped") throw new StoppedError("saga runner");
    const id = opts.id ?? uuidv7(clock);
    if (typeof id !== "string" || !ID.test(id)) {
      throw new InvalidArgumentError(
        "saga id must be 1-200 characters without control characters",
        "options.id",
      );
    }
    const value = await def.parseInput(input);
    let inputJson: string;
    try {
      inputJson = JSON.stringify(value ?? null);
    } catch (cause) {
      throw new InvalidArgumentError(
        `saga ${def.name}: input must be JSON (${(cause as Error).message})`,
        "input",
        { cause },
      );
    }
    const now = clock.now();
    // Started here with room to run it: hand it to this worker at once (no claim round trip).
    const direct = !opts.tx && running() && free() > 0;
    if (direct) reserved++;
    const row: InstanceRow = {
      id,
      name: def.name,
      version: def.version,
      input: JSON.parse(inputJson) as unknown,
      status: "running",
      step: 0,
      attempt: direct ? 1 : 0,
      claim: direct ? 1 : 0,
      owner: direct ? owner : undefined,
      runAt: direct ? now + leaseMs : now,
      deadline: def.timeoutMs === undefined ? undefined : now + def.timeoutMs,
      reason: undefined,
      failure: undefined,
      note: undefined,
      createdAt: now,
      updatedAt: now,
      lastDelay: undefined,
    };
    let existing: InstanceRow | undefined;
    let inserted = false;
    try {
      if (opts.tx) {
        const tx = opts.tx;
        // Other workers are woken by the insert itself, notifying when the transaction commits.
        if (await repo.insert(tx, row, inputJson, CHANNEL)) {
          inserted = true;
          tx.afterCommit(() => {
            measure("saga.started", 1, { saga: row.name });
            wake();
          });
        } else {
          // Where the caller's snapshot predates the row that refused the insert (MariaDB at
          // REPEATABLE READ), only a locking read sees it.
          existing = (await repo.get(tx, id)) ?? (await repo.get(tx, id, true));
        }
      } else if (await repo.insert(store, row, inputJson)) {
        // One statement, committed on its own: durable when it resolves.
        inserted = true;
        measure("saga.started", 1, { saga: row.name });
        if (!direct) {
          wake();
          await wakeOthers();
        }
      } else existing = await repo.get(store, id);
    } finally {
      if (direct) {
        reserved--;
        // The slot held for it is free again (the id exists, or the insert failed): the loop
        // may have found no room for work stored meanwhile.
        if (!inserted) claimLoop?.freed();
      }
    }
    if (existing) {
      if (existing.name !== def.name) {
        throw new SagaError(
          "SAGA_ID_CONFLICT",
          `saga id ${JSON.stringify(id)} belongs to an instance of saga ${JSON.stringify(existing.name)}, not ${JSON.stringify(def.name)}`,
          id,
        );
      }
      return { ...publicView(existing), created: false };
    }
    if (!inserted) {
      // The id was taken, yet no instance could be read: never report one created that was not.
      throw new SagaError(
        "SAGA_ID_CONFLICT",
        `saga id ${JSON.stringify(id)} exists but cannot be read in this transaction; try again`,
        id,
        { retryable: true },
      );
    }
    if (direct) track({ ...row }, []);
    return { ...publicView(row), created: true };
  }

  /** After operator actions: wake the workers (here and, where the store has notifications, elsewhere), settle waiters. */
  const acted = async (rows: InstanceRow[]): Promise<void> => {
    wake();
    for (const row of rows) if (TERMINAL_STATUSES.includes(row.status)) settled(publicView(row));
    await wakeOthers();
  };
  const afterAction = async (p: Promise<InstanceRow | undefined>): Promise<SagaInstance> => {
    // Without an expected version an operator action returns the row or throws.
    const row = (await p)!;
    await acted([row]);
    return publicView(row);
  };

  for (const def of options.sagas ?? []) register(def);

  const life = createLifecycle("saga runner", {
    async start() {
      await store.open();
      if (store.listen) unlisten = await store.listen(CHANNEL, wake);
      active = true;
      claimLoop = startClaiming();
    },
    async stop(timeoutMs) {
      active = false;
      await claimLoop?.stop();
      const drained = Promise.allSettled([...inFlight]);
      let timer: NodeJS.Timeout | undefined;
      const late = await Promise.race([
        drained.then(() => false),
        new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), timeoutMs))),
      ]);
      clearTimeout(timer);
      if (late) {
        // Steps still running are told to stop; one that ignores its signal is left behind (its
        // instance comes back to a worker when the lease runs out).
        stopping.abort(new StoppedError("saga runner", "the saga runner is stopping"));
        await Promise.race([
          drained,
          new Promise<void>((resolve) => (timer = setTimeout(resolve, Math.min(timeoutMs, 5000)))),
        ]);
        clearTimeout(timer);
      }
      await unlisten?.().catch(() => undefined);
    },
  });

  const runner: SagaRunner = {
    saga: ((nameOrDefinition: string | AnySagaDefinition, sagaOptions?: SagaOptions<unknown>) => {
      if (typeof nameOrDefinition !== "string") return register(nameOrDefinition);
      if (sagaOptions !== undefined) return register(defineSaga(nameOrDefinition, sagaOptions));
      const versions = registry.get(nameOrDefinition);
      const newest = versions ? Math.max(...versions.keys()) : undefined;
      if (newest === undefined) {
        throw new InvalidArgumentError(`no saga ${JSON.stringify(nameOrDefinition)} is registered`, "name");
      }
      return handle(versions!.get(newest)!);
    }) as SagaRunner["saga"],

    start: () => life.start(),
    stop: (stopOptions) => life.stop(stopOptions),

    async get(id) {
      const row = await repo.get(store, id);
      if (!row) return undefined;
      const steps = (await repo.steps(store, id)).sort(timelineOrder);
      return { ...publicView(row), steps };
    },
    async list(filter = {}) {
      const { limit = 50, ...rest } = filter;
      return (await repo.list(rest, limit)).map(publicView);
    },
    count: (filter = {}) => repo.count(filter),
    wait,
    retry: (id) => afterAction(operator.retry(id)),
    skip: (id, skipOptions) => afterAction(operator.skip(id, skipOptions)),
    resolve: (id, resolveOptions) => afterAction(operator.resolve(id, resolveOptions)),
    bulk: (action, filter, bulkOptions) =>
      runBulk(
        {
          versions: (f) => repo.versions(f),
          get: async (id) => {
            const row = await repo.get(store, id);
            return row && publicView(row);
          },
          retry: (id, expected) => operator.retry(id, expected),
          skip: (id, o, expected) => operator.skip(id, o, expected),
          resolve: (id, o, expected) => operator.resolve(id, o, expected),
          acted,
        },
        action,
        filter,
        bulkOptions,
      ),
  };
  return runner;
}
