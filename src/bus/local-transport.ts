/**
 * The local transport: per-group durable queues in the Store's own database. Claims, batched
 * acks and wake-ups are the store's roles (`dialect.roles`): a backend with row locks claims
 * without waiting on rows another consumer holds, one with notifications wakes consumers in other
 * processes, and the others poll. Because the queue is in the store, publishing and acking join store
 * transactions: a business write and its events commit together, and a handler's writes and
 * its ack commit together.
 */
import { randomUUID } from "node:crypto";
import { startClaimLoop, type ClaimLoop } from "../core/claim-loop.js";
import { systemClock, type Clock } from "../core/clock.js";
import { toMs, type Duration } from "../core/duration.js";
import { isPatchbayError, type PatchbayError } from "../core/errors.js";
import { silentLogger, type Logger } from "../core/logger.js";
import { createBatcher } from "../core/batcher.js";
import { settleBy } from "../core/settle-by.js";
import type { SqlExecutor, StoreTx } from "../store/contracts.js";
import type { QueuedRow } from "../store/roles.js";
import { int, PREPARED, quoteColumn, run, type SqlDialect } from "../store/dialect.js";
import { NestedTransactionError } from "../store/errors.js";
import { heldByCaller, runLast, type SqlStore } from "../store/sql-store.js";
import { join, joinWith, raw, sql } from "../store/sql.js";
import { BusError, UndecodableMessageError } from "./errors.js";
import { insertChunks, textLength } from "./insert-chunks.js";
import { isHeaders, isRecord } from "./headers.js";
import { assertPattern, matchesAny } from "./patterns.js";
import type {
  ConsumeOptions,
  Consumer,
  Delivery,
  FailureRecord,
  Transport,
  TransportMessage,
  TransportPublishOptions,
} from "./transport.js";

/** Options of {@link localTransport}. */
export interface LocalTransportOptions {
  /** How long a claimed delivery is held before another consumer may take it (extended while the handler runs). Default 30 s. */
  lease?: Duration;
  /** How often an idle consumer looks for work when nothing woke it. Default 1 s (5 s with notifications). */
  pollInterval?: Duration;
  clock?: Clock;
  logger?: Logger;
}

interface JobRow {
  id: unknown;
  grp: string;
  message_id: string;
  type: string;
  key: string | null;
  body: string;
  headers: unknown;
  attempt: unknown;
  fresh: unknown;
  first_failed_at: unknown;
  last_error: unknown;
  /** When the group's other rows fall due, where the claim returned it (see `claim`). */
  next_due?: unknown;
}

/** A job a consumer runs: its claim's attempt (the claim's token) and when its lease ends, as last written. */
interface Held {
  attempt: number;
  until: number;
}

/** `run_at` of a parked message: never due (the largest integer both stores and JS hold exactly). */
export const PARKED = Number.MAX_SAFE_INTEGER;

const CHANNEL = "patchbay_bus";
/** The columns of a queued row as written; `key` is quoted in the dialect's way. */
const jobColumns = (d: SqlDialect) =>
  `grp, message_id, type, ${quoteColumn(d, "key")}, body, headers, attempt, fresh, run_at, created_at`;

/** The Store-backed {@link Transport}. */
export function localTransport(store: SqlStore, options: LocalTransportOptions = {}): Transport {
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? silentLogger;
  const lease = toMs(options.lease ?? "30s", "lease");
  const d = store.dialect;
  const columns = jobColumns(d);
  const t = {
    bindings: raw(d.table("bus_bindings")),
    jobs: raw(d.table("bus_jobs")),
  };
  const roles = d.roles;
  const poll = toMs(options.pollInterval ?? (store.listen ? "5s" : "1s"), "pollInterval");
  // Wake-ups for consumers in this process; other processes learn through NOTIFY or polling.
  const wakers = new Map<string, Set<() => void>>();
  const wake = (groups: Iterable<string>) => {
    for (const g of groups) for (const w of wakers.get(g) ?? []) w();
  };
  let unlisten: (() => Promise<void>) | undefined;

  const bindingsOf = async (executor: SqlExecutor) => {
    const { rows } = await run<{ grp: string; pattern: string }>(
      executor,
      d,
      sql`SELECT grp, pattern FROM ${t.bindings}`,
      PREPARED,
    );
    return rows;
  };

  /** Groups and their patterns, from `(group, pattern)` pairs. */
  const groupsOf = (bindings: Iterable<readonly [string, string]>) => {
    const groups = new Map<string, string[]>();
    for (const [grp, pattern] of bindings) {
      const patterns = groups.get(grp);
      if (patterns) patterns.push(pattern);
      else groups.set(grp, [pattern]);
    }
    return groups;
  };
  /** The bindings as last read, with their fingerprint, where the store checks them as it inserts. */
  type Bound = { groups: Map<string, string[]>; fp: string };
  let bound: Bound | undefined;
  const boundOf = (list: string, fp: string): Bound => ({
    groups: groupsOf(JSON.parse(list) as Array<[string, string]>),
    fp,
  });

  async function enqueue(
    executor: SqlExecutor,
    messages: readonly TransportMessage[],
    opts: TransportPublishOptions,
  ) {
    // Bindings are read in the publishing transaction (or in the insert's own statement), so a
    // group bound before the publish gets the message and one bound after does not — the same
    // rule a broker's bindings follow. Where the store can check them as it inserts
    // (`queue.bound`), the bindings last read are used and the insert is made only if they are
    // still the table's; otherwise it hands back the bindings as they are, and the insert is
    // made again with them.
    const check = opts.group ? undefined : roles.queue.bound;
    if (check) {
      let known =
        bound ??
        (await (async () => {
          const { rows } = await run<{ list: string; fp: string }>(
            executor,
            d,
            check.read(t.bindings),
            PREPARED,
          );
          return boundOf(rows[0]!.list, rows[0]!.fp);
        })());
      for (;;) {
        bound = known;
        const outcome = await insert(executor, messages, opts, known.groups, known);
        if (outcome.current === undefined) return outcome.touched;
        known = outcome.current;
      }
    }
    const groups = opts.group
      ? new Map([[opts.group, ["#"]]])
      : groupsOf((await bindingsOf(executor)).map((b) => [b.grp, b.pattern] as const));
    return (await insert(executor, messages, opts, groups)).touched;
  }

  /**
   * Inserts a queue row per message and group whose patterns match its type; with `known`, only
   * while the bindings are still those (`current`: they changed, and nothing more was inserted).
   */
  async function insert(
    executor: SqlExecutor,
    messages: readonly TransportMessage[],
    opts: TransportPublishOptions,
    groups: ReadonlyMap<string, readonly string[]>,
    known?: Bound,
  ): Promise<{ touched: Set<string>; current?: Bound }> {
    const now = clock.now();
    const runAt = now + (opts.delayMs ?? 0);
    const touched = new Set<string>();
    const rows: QueuedRow[] = [];
    for (const m of messages) {
      for (const [grp, patterns] of groups) {
        if (!matchesAny(patterns, m.type)) continue;
        touched.add(grp);
        rows.push({
          grp,
          messageId: m.id,
          type: m.type,
          key: m.key ?? null,
          body: m.body,
          headers: d.encodeJson(m.headers),
          fresh: m.fresh === true,
          runAt,
          createdAt: now,
        });
      }
    }
    // Multi-row inserts: one statement (one round trip, one commit outside a transaction) per
    // chunk; where the store has notifications, the last one also wakes the consumers of the
    // touched groups in other processes. Where the store has an array form (`queue.enqueue`),
    // its text is the same for every batch and stays prepared. With `known`, even no row is a
    // statement: it checks the bindings (a group bound meanwhile may want the messages).
    const check = known ? roles.queue.bound : undefined;
    const chunks = insertChunks(rows, (r) => r.body.length + textLength(r.headers));
    if (chunks.length === 0 && check) chunks.push([]);
    for (const [index, chunk] of chunks.entries()) {
      const last = index === chunks.length - 1;
      const notify = roles.notify && last && touched.size > 0 ? [...touched].join(",") : undefined;
      if (check && known) {
        const { rows: result } = await run<{ list: string | null; fp: string | null }>(
          executor,
          d,
          check.enqueue(
            t.jobs,
            t.bindings,
            chunk,
            known.fp,
            notify === undefined ? undefined : { channel: CHANNEL, payload: notify },
          ),
          PREPARED,
        );
        const r = result[0];
        if (r && r.list !== null && r.fp !== null) return { touched, current: boundOf(r.list, r.fp) };
        continue;
      }
      const statement = roles.queue.enqueue
        ? roles.queue.enqueue(t.jobs, chunk)
        : roles.rows.insertIgnore(
            t.jobs,
            columns,
            chunk.map(
              (r) =>
                sql`(${r.grp}, ${r.messageId}, ${r.type}, ${r.key}, ${r.body}, ${r.headers}, 0, ${r.fresh ? 1 : 0}, ${r.runAt}, ${r.createdAt})`,
            ),
            "grp, message_id",
          );
      await run(
        executor,
        d,
        roles.notify && notify !== undefined ? roles.notify.after(statement, CHANNEL, notify) : statement,
        roles.queue.enqueue ? PREPARED : undefined,
      );
    }
    return { touched };
  }

  // Publishes outside a transaction, group-committed. Delayed and replayed (one group) messages
  // differ per publish, so a batch is enqueued per distinct option set — in one flush.
  const publishes = createBatcher(
    async (items: Array<{ messages: readonly TransportMessage[]; opts: TransportPublishOptions }>) => {
      const touched = new Set<string>();
      const plain = items.filter((i) => i.opts.delayMs === undefined && i.opts.group === undefined);
      if (plain.length > 0) {
        for (const g of await enqueue(
          store,
          plain.flatMap((i) => i.messages),
          {},
        ))
          touched.add(g);
      }
      for (const i of items) {
        if (plain.includes(i)) continue;
        for (const g of await enqueue(store, i.messages, i.opts)) touched.add(g);
      }
      wake(touched);
      return items.map(() => undefined);
    },
    { maxBatch: 256, isolateFailures: true },
  );
  // Acks outside a transaction (handlers that wrote nothing), group-committed: one DELETE each flush.
  const acks = createBatcher(
    async (jobs: Array<{ id: number; attempt: number }>) => {
      await run(store, d, roles.queue.ack(t.jobs, jobs), PREPARED);
      return jobs.map(() => undefined);
    },
    { maxBatch: 500 },
  );

  // Deliveries handed back unfinished (a stop), group-committed: due at once, their claim undone
  // (the attempt it counted is taken back), and where the store can, other processes' consumers woken.
  // The attempt is the claim's token: one that no longer matches (the lease ran out and another
  // consumer claimed the row) changes nothing.
  const releases = createBatcher(
    async (jobs: Array<{ id: number; attempt: number; group: string }>) => {
      const now = clock.now();
      const groups = [...new Set(jobs.map((j) => j.group))];
      const release = roles.queue.release(t.jobs, jobs, now);
      await run(store, d, roles.notify ? roles.notify.after(release, CHANNEL, groups.join(",")) : release);
      wake(groups);
      return jobs.map(() => undefined);
    },
    { maxBatch: 500 },
  );

  const transport: Transport = {
    name: `local (${d.name})`,
    capabilities: { sharesStore: true, durable: true },

    async open() {
      await store.open();
      if (store.listen && !unlisten) {
        unlisten = await store.listen(CHANNEL, (payload) => wake(payload.split(",")));
      }
    },

    async bind(group, patterns) {
      if (patterns.length === 0)
        throw new BusError("SUBSCRIPTION_INVALID", "a group needs at least one pattern");
      patterns.forEach(assertPattern);
      await store.transaction(async (tx) => {
        await run(tx, d, sql`DELETE FROM ${t.bindings} WHERE grp = ${group}`);
        // Ignoring a row already there: two processes binding the group at once (replicas
        // starting together) each deleted nothing, and the second's plain INSERT would fail its
        // start on the first's row once that commits.
        const rows = [...new Set(patterns)].map((p) => sql`(${group}, ${p})`);
        await run(tx, d, d.roles.rows.insertIgnore(t.bindings, "grp, pattern", rows, "grp, pattern"));
      });
    },

    async publish(messages, opts = {}) {
      if (messages.length === 0) return;
      if (opts.tx) {
        const touched = await enqueue(opts.tx, messages, opts);
        opts.tx.afterCommit(() => wake(touched));
        return;
      }
      // Inside a transaction of this store that holds its connection (a handler's after its
      // first ctx.tx call), the group-committed write below would wait for that transaction,
      // which waits for this publish: refused, never a deadlock.
      if (heldByCaller(store)) {
        throw new NestedTransactionError(
          "publish called inside a transaction of the store that holds the queue (a handler's, after its first ctx.tx call): it would wait for that transaction forever; publish before the handler's first ctx.tx call, or use tx.publish in bus.transaction",
        );
      }
      // No explicit transaction: group-committed with other publishes of this process (one
      // bindings read and one multi-row insert for all of them). The contract lets a failed
      // publish have stored some messages (consumers dedupe by id).
      await publishes.add({ messages, opts });
    },

    consume: (group, consumeOptions, onDelivery) =>
      Promise.resolve(startConsumer(group, consumeOptions, onDelivery)),

    async close() {
      const u = unlisten;
      unlisten = undefined;
      await u?.();
    },
  };

  /**
   * A claimed row as a delivery. `consumer.settling` runs as its settlement begins (its lease is
   * no longer kept: a delivery whose settle has begun has at least two thirds of its lease left),
   * `consumer.retried` once a retry has set when it is due again.
   */
  function toDelivery(row: JobRow, consumer: { settling(): void; retried(): void }): Delivery {
    const id = int(row.id);
    const attempt = int(row.attempt);
    const settled = { done: false };
    const check = (what: string) => {
      if (settled.done)
        throw new BusError("BUS_STOPPED", `delivery ${row.message_id} already settled (${what})`);
      consumer.settling();
    };
    const guard = (what: string) => {
      check(what);
      settled.done = true;
    };
    // A row whose headers or failure record cannot be read (a damaged row) is still delivered:
    // marked undecodable, for the bus to dead-letter at once with what could be read.
    let undecodable: UndecodableMessageError | undefined;
    const read = <T>(part: string, raw: unknown, valid: (v: unknown) => v is T): T | undefined => {
      try {
        const value = d.decodeJson(raw);
        if (valid(value)) return value;
      } catch {
        // reported below, with the raw text
      }
      undecodable ??= new UndecodableMessageError(
        `the ${part} of queued message ${row.message_id} (group ${row.grp}) cannot be read`,
        part,
        typeof raw === "string" ? raw : JSON.stringify(raw),
      );
      return undefined;
    };
    const headers = read("headers", row.headers, isHeaders) ?? {};
    const lastError = row.last_error === null ? undefined : read("last_error", row.last_error, isRecord);
    return {
      message: {
        id: row.message_id,
        type: row.type,
        key: row.key ?? undefined,
        body: row.body,
        headers,
        ...(int(row.fresh) === 1 ? { fresh: true } : {}),
      },
      group: row.grp,
      attempt,
      failure:
        row.first_failed_at === null || lastError === undefined
          ? undefined
          : { firstFailedAt: int(row.first_failed_at), error: lastError },
      ...(undecodable ? { undecodable } : {}),
      // The attempt number is the claim's token: an ack after our lease ran out and another
      // consumer re-claimed the job matches nothing and changes nothing.
      async ack(tx?: StoreTx) {
        if (tx) {
          // In the handler's transaction: its last statement, sent with COMMIT where the store
          // can. Settled only once that commits: a COMMIT that fails (a deferred constraint)
          // rolls the ack back too, and the delivery must still be retried or dead-lettered.
          check("ack");
          await runLast(tx, d, sql`DELETE FROM ${t.jobs} WHERE id = ${id} AND attempt = ${attempt}`);
          tx.afterCommit(() => {
            settled.done = true;
          });
          return;
        }
        guard("ack");
        await acks.add({ id, attempt });
      },
      async release() {
        guard("release");
        await releases.add({ id, attempt, group: row.grp });
      },
      async retry(delayMs: number, failure: FailureRecord) {
        guard("retry");
        await run(
          store,
          d,
          sql`UPDATE ${t.jobs} SET run_at = ${clock.now() + Math.max(0, delayMs)},
              first_failed_at = ${failure.firstFailedAt}, last_error = ${d.encodeJson(failure.error)}
              WHERE id = ${id} AND attempt = ${attempt}`,
        );
        consumer.retried();
      },
    };
  }

  /**
   * Keeps a message whose dead letter the store refused in its queue row, never due again
   * (`run_at` = {@link PARKED}) with the refusal as its last error, rather than claiming it
   * after every lease. Logged at error level; see docs/bus.md for finding and releasing it.
   */
  async function park(id: number, attempt: number, e: PatchbayError) {
    const { rowCount } = await run(
      store,
      d,
      sql`UPDATE ${t.jobs} SET run_at = ${PARKED}, last_error = ${d.encodeJson(e.toJSON())}
          WHERE id = ${id} AND attempt = ${attempt}`,
    );
    logger.error(
      { err: e, jobId: id, parked: rowCount > 0 },
      rowCount > 0
        ? "patchbay bus: message parked in its queue row (run_at never due): its dead letter was refused"
        : "patchbay bus: its dead letter was refused and its lease had passed: the message comes back",
    );
  }

  /**
   * Claims up to `limit` due jobs of the group, leased until the returned `until`. `held` are the
   * consumer's jobs in flight and their lease ends: those whose lease ran out by the clock (a fake
   * clock moved past it) are not claimed again by the consumer still running them.
   */
  async function claim(
    group: string,
    limit: number,
    held: ReadonlyMap<number, Held>,
  ): Promise<{ rows: JobRow[]; until: number; nextDue?: number | undefined; dueKnown: boolean }> {
    const now = clock.now();
    const expired = [...held].filter(([, h]) => h.until <= now).map(([id]) => id);
    const rows = await roles.rows.claim<JobRow>(
      store,
      {
        table: t.jobs,
        key: "id",
        where:
          expired.length === 0
            ? sql`grp = ${group} AND run_at <= ${now}`
            : join(
                sql`grp = ${group} AND run_at <= ${now} AND id NOT IN (${expired[0]}`,
                ...expired.slice(1).map((id) => sql`, ${id}`),
                sql`)`,
              ),
        orderBy: "run_at, id",
        limit,
        set: sql`run_at = ${now + lease}, attempt = attempt + 1`,
        // When the rows not claimed fall due (leased elsewhere, or delayed): where the store
        // returns it with the rows, a claim that took some but fewer than asked needs no
        // `nextDue` query. Rows due but not taken (locked by another consumer's claim, an ack,
        // a hand-back) are left out: another consumer is taking them, or they go, or a wake-up
        // follows.
        also: sql`(SELECT MIN(run_at) FROM ${t.jobs} WHERE grp = ${group} AND run_at > ${now}) AS next_due`,
      },
      PREPARED,
    );
    const first = rows[0];
    const dueKnown = first !== undefined && "next_due" in first;
    const next = dueKnown ? first.next_due : null;
    return {
      rows: rows.sort((a, b) => int(a.id) - int(b.id)),
      until: now + lease,
      nextDue: next === null || next === undefined ? undefined : int(next),
      dueKnown,
    };
  }

  /** The earliest `run_at` of the group, but for the jobs this consumer runs (their lease ends are not work). */
  async function nextDue(group: string, held: ReadonlyMap<number, Held>): Promise<number | undefined> {
    const ids = [...held.keys()];
    const { rows } = await run<{ next: unknown }>(
      store,
      d,
      ids.length === 0
        ? sql`SELECT MIN(run_at) AS next FROM ${t.jobs} WHERE grp = ${group}`
        : join(
            sql`SELECT MIN(run_at) AS next FROM ${t.jobs} WHERE grp = ${group} AND id NOT IN (${ids[0]}`,
            ...ids.slice(1).map((id) => sql`, ${id}`),
            sql`)`,
          ),
      ids.length === 0 ? PREPARED : undefined,
    );
    const next = rows[0]?.next;
    return next === null || next === undefined ? undefined : int(next);
  }

  function startConsumer(
    group: string,
    { concurrency }: ConsumeOptions,
    onDelivery: (delivery: Delivery) => Promise<void>,
  ): Consumer {
    const worker = randomUUID().slice(0, 8);
    const inFlight = new Set<Promise<void>>();
    /** The jobs in flight: their claim's attempt and when their lease ends (as last written). */
    const held = new Map<number, Held>();
    /** The jobs in flight whose lease the heartbeat keeps (not those whose settlement began). */
    const leased = new Set<number>();
    let running = true;
    const free = () => concurrency - inFlight.size;
    // Assigned below, once the loop starts; a wake-up before that finds nothing to wake.
    // eslint-disable-next-line prefer-const -- read by waker() before it is assigned
    let loop: ClaimLoop | undefined;
    const waker = () => loop?.wake();
    const set = wakers.get(group) ?? new Set();
    set.add(waker);
    wakers.set(group, set);

    // One lease heartbeat for all the consumer's deliveries in flight (one statement a beat),
    // running while any is: a slow handler is not mistaken for a dead one. A delivery claimed
    // between two beats is extended at the next, within a third of its lease.
    let heartbeat: NodeJS.Timeout | undefined;
    const beat = () => {
      if (leased.size === 0) return;
      const renewed = clock.now() + lease;
      const refs: Array<{ id: number; attempt: number }> = [];
      for (const id of leased) {
        const h = held.get(id)!;
        h.until = renewed;
        refs.push({ id, attempt: h.attempt });
      }
      const extended = roles.queue.extend
        ? roles.queue.extend(store, t.jobs, refs, renewed)
        : run(
            store,
            d,
            join(
              sql`UPDATE ${t.jobs} SET run_at = ${renewed} WHERE (id, attempt) IN (`,
              joinWith(
                sql`, `,
                refs.map((r) => sql`(${r.id}, ${r.attempt})`),
              ),
              sql`)`,
            ),
          );
      // A beat that failed (the store is down?) is made again at the next.
      extended.catch(() => undefined);
    };
    const keepLeases = () => {
      heartbeat ??= setInterval(beat, Math.max(50, Math.floor(lease / 3)));
    };
    const dropLeases = () => {
      if (heartbeat && held.size === 0) {
        clearInterval(heartbeat);
        heartbeat = undefined;
      }
    };

    // Never rejects: whatever a row holds, the claim loop goes on. Resolves with whether the
    // delivery was retried.
    const handle = async (row: JobRow, until: number): Promise<boolean> => {
      const id = int(row.id);
      const attempt = int(row.attempt);
      let retried = false;
      const mine: Held = { until, attempt };
      held.set(id, mine);
      leased.add(id);
      keepLeases();
      try {
        await onDelivery(
          toDelivery(row, {
            settling: () => {
              if (held.get(id) === mine) leased.delete(id);
            },
            retried: () => (retried = true),
          }),
        );
      } catch (e) {
        if (isPatchbayError(e, "DEAD_LETTER_FAILED") && !e.retryable) {
          await park(id, attempt, e).catch(() => undefined);
        } else {
          // The consumer could not settle it (the store is down?): the lease brings it back.
          logger.error(
            { err: e, group, messageId: row.message_id, worker },
            "patchbay bus: delivery not settled",
          );
        }
      } finally {
        // Unless the row was claimed again meanwhile (handed back or retried, and due at once).
        if (held.get(id) === mine) {
          held.delete(id);
          leased.delete(id);
        }
        dropLeases();
      }
      return retried;
    };

    /** Rows claimed after stop() began: handed back at once, never to a handler. */
    const handBack = (rows: readonly JobRow[]) =>
      Promise.all(
        rows.map((row) => releases.add({ id: int(row.id), attempt: int(row.attempt), group: row.grp })),
      ).catch((e: unknown) => {
        // The store is gone: their lease brings them back.
        logger.warn({ err: e, group, worker }, "patchbay bus: cannot hand back claimed deliveries");
      });

    loop = startClaimLoop({
      // Yield to timers and I/O once per round: on SQLite every query resolves without I/O, so a
      // backlog would otherwise be drained in microtasks alone, starving the lease heartbeats,
      // stop()'s timeout and anything else the process serves.
      beforeRound: () => new Promise<void>((resolve) => setImmediate(resolve)),
      free,
      // While work waits, freed slots are claimed half of them at a time (or a few ms after the
      // first freed): fewer, larger claims (one statement and one commit each) instead of one for
      // every few handlers that finished. With the bus's default prefetch (3 × its concurrency)
      // half is one and a half concurrencies' worth, so the handlers' queue never runs dry meanwhile.
      gather: Math.ceil(concurrency / 2),
      async claim(slots) {
        const { rows, until, nextDue: wakeAt, dueKnown } = await claim(group, slots, held);
        // stop() began while the claim waited (on SQLite, for the write lock): none may start.
        if (!running) {
          await handBack(rows);
          return { claimed: 0 };
        }
        for (const row of rows) {
          const p: Promise<void> = handle(row, until).then((retried) => {
            inFlight.delete(p);
            // A retry is due again at its own time, which the loop learns from a round (a claim
            // or a nextDue): it wakes the loop.
            if (retried) waker();
            else loop?.freed();
          });
          inFlight.add(p);
        }
        return { claimed: rows.length, wakeAt, dueKnown };
      },
      nextDue: () => nextDue(group, held),
      inFlight: () => inFlight.size,
      clock,
      pollMs: poll,
      onError: (e) => logger.warn({ err: e, group }, "patchbay bus: claim failed; retrying"),
    });
    const looping = loop;

    let stopped: Promise<void> | undefined;
    return {
      stop(timeoutMs = 30_000) {
        stopped ??= (async () => {
          running = false;
          set.delete(waker);
          const ended = looping.stop();
          // The loop may be waiting for a claim (on SQLite behind every transaction queued for the
          // write lock): not waited for past the timeout; what it claims then is handed back.
          const deadline = Date.now() + timeoutMs;
          await settleBy(ended, deadline);
          await settleBy(Promise.allSettled([...inFlight]), deadline);
          // Handlers still running are abandoned, as by a process that died: their leases are no
          // longer kept, so another consumer takes their messages when the lease runs out.
          clearInterval(heartbeat);
          heartbeat = undefined;
          leased.clear();
        })();
        return stopped;
      },
    };
  }

  return transport;
}
