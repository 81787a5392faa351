/**
 * The console's JSON API: what each screen reads and every action it can take. Each route calls
 * the same operation the CLI calls (dead letters' `list`/`replay`/`purge`, the saga runner's
 * `retry`/`skip`/`resolve`/`bulk`, webhooks' `replay`/`recover`/`enable`/`disable`, a pipeline's
 * `run`/`reset`); none has SQL of its own. Every action is recorded in the audit log.
 */
import type { EventBus } from "../bus/bus.js";
import {
  createDeadLetters,
  DeadLetterReplayError,
  refuseForeign,
  type DeadLetter,
  type DeadLetterCursor,
  type DeadLetterFilter,
  type DeadLetters,
} from "../bus/dead-letters.js";
import { localTransport, PARKED } from "../bus/local-transport.js";
import { groupPauses } from "../bus/pause.js";
import type { Clock } from "../core/clock.js";
import { toMs } from "../core/duration.js";
import { InvalidArgumentError, isPatchbayError } from "../core/errors.js";
import type { CircuitBreakerPolicy } from "../resilience/breaker.js";
import type { SagaBulkAction } from "../saga/bulk.js";
import { SAGA_STATUSES, type SagaFilter, type SagaStatus } from "../saga/records.js";
import { createSagaRunner, type SagaRunner } from "../saga/runner.js";
import type { SqlStore } from "../store/sql-store.js";
import type { Pipeline } from "../sync/pipeline.js";
import { runRecords } from "../sync/runs.js";
import type { DeliveryStatus } from "../webhooks/deliveries.js";
import { createWebhooks, type Webhooks } from "../webhooks/webhooks.js";
import { readChangeSlots } from "../cdc/slot-report.js";
import { busActivity, type GroupActivity } from "./console-activity.js";
import type { ConsoleAudit } from "./console-audit.js";
import { ConsoleError } from "./console-errors.js";

/** The parts of an application the console shows; only `store` is required. */
export interface ConsoleParts {
  store: SqlStore;
  /** Dead letters are replayed through its transport. Default: the store's own local transport. */
  bus?: EventBus;
  /** The app's saga runner. Default: a runner on the store without workers (actions still work). */
  sagas?: SagaRunner;
  /** The app's webhooks. Default: webhooks on the store (endpoints, deliveries; sent by the app). */
  webhooks?: Webhooks;
  /**
   * Pipelines that can be run and reset from the console, or a function returning them (read on
   * each request). Runs of every pipeline in the store are listed either way.
   */
  pipelines?: readonly Pipeline[] | (() => readonly Pipeline[]);
  /**
   * Circuit breakers of this process that can be reset from the console, by name (or a function
   * returning them). Their live state is shown; breakers saved in the store under
   * `breaker/<name>` by other processes are shown too, but only these can be reset.
   */
  breakers?:
    Readonly<Record<string, CircuitBreakerPolicy>> | (() => Readonly<Record<string, CircuitBreakerPolicy>>);
}

/** One API call, parsed. */
export interface ApiRequest {
  method: string;
  /** Below `api/`: `dead-letters`, `sagas/retry`, ... */
  route: string;
  query: URLSearchParams;
  body: Record<string, unknown>;
  actor: string;
}

const MAX_PAGE = 200;

function text(value: unknown, name: string): string | undefined {
  if (value === undefined || value === null || value === "") return undefined;
  if (typeof value !== "string") throw new InvalidArgumentError(`${name} must be a string`, name);
  return value;
}

/** A dead-letter page's `next`: the last letter's failure time, then its group and id (base64url JSON). */
const encodeDeadLetterCursor = (l: DeadLetterCursor): string =>
  `${l.lastFailedAt}.${Buffer.from(JSON.stringify([l.group, l.messageId])).toString("base64url")}`;

function deadLetterCursor(text: string | null): DeadLetterCursor | undefined {
  if (text === null || text === "") return undefined;
  const dot = text.indexOf(".");
  const at = Number(text.slice(0, dot));
  let key: unknown;
  try {
    key = JSON.parse(Buffer.from(text.slice(dot + 1), "base64url").toString("utf8"));
  } catch {
    key = undefined;
  }
  if (
    dot < 1 ||
    !Number.isSafeInteger(at) ||
    !Array.isArray(key) ||
    key.length !== 2 ||
    typeof key[0] !== "string" ||
    typeof key[1] !== "string"
  ) {
    throw new InvalidArgumentError(`cursor is not a dead-letter page's next, got ${text}`, "cursor");
  }
  return { lastFailedAt: at, group: key[0], messageId: key[1] };
}

/** A time: ms since the epoch, or an ISO date with an offset. */
function time(value: unknown, name: string): number | undefined {
  const s = typeof value === "number" ? String(value) : text(value, name);
  if (s === undefined) return undefined;
  if (/^\d+$/.test(s) && Number.isSafeInteger(Number(s))) return Number(s);
  const at = /^\d{4}-\d{2}-\d{2}T.*(Z|[+-]\d{2}:?\d{2})$/i.test(s) ? Date.parse(s) : NaN;
  if (Number.isNaN(at)) {
    throw new InvalidArgumentError(`${name} must be an ISO time with an offset or ms, got ${s}`, name);
  }
  return at;
}

function whole(value: string | null, name: string, fallback: number, max = Infinity): number {
  if (value === null || value === "") return fallback;
  const n = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n > max) {
    throw new InvalidArgumentError(`${name} must be a whole number up to ${max}, got ${value}`, name);
  }
  return n;
}

function dlqFilter(source: Record<string, unknown>): DeadLetterFilter {
  const f: DeadLetterFilter = {};
  const group = text(source.group, "group");
  const type = text(source.type, "type");
  const code = text(source.code, "code");
  const since = time(source.since, "since");
  const until = time(source.until, "until");
  if (group !== undefined) f.group = group;
  if (type !== undefined) f.type = type;
  if (code !== undefined) f.errorCode = code;
  if (since !== undefined) f.since = since;
  if (until !== undefined) f.before = until;
  return f;
}

function sagaFilter(source: Record<string, unknown>): SagaFilter {
  const f: SagaFilter = {};
  const name = text(source.name, "name");
  const status = text(source.status, "status");
  const since = time(source.since, "since");
  if (name !== undefined) f.name = name;
  if (status !== undefined) {
    const list = status.split(",").filter(Boolean);
    for (const s of list) {
      if (!SAGA_STATUSES.includes(s as SagaStatus)) {
        throw new InvalidArgumentError(
          `status must be among ${SAGA_STATUSES.join(", ")}, got ${s}`,
          "status",
        );
      }
    }
    f.status = list as SagaStatus[];
  }
  if (since !== undefined) f.since = since;
  return f;
}

/** The pipelines the console may act on. */
export const pipelinesOf = (parts: ConsoleParts): readonly Pipeline[] =>
  typeof parts.pipelines === "function" ? parts.pipelines() : (parts.pipelines ?? []);

/** The breakers the console may reset. */
const breakersOf = (parts: ConsoleParts): Readonly<Record<string, CircuitBreakerPolicy>> =>
  typeof parts.breakers === "function" ? parts.breakers() : (parts.breakers ?? {});

const fromQuery = (q: URLSearchParams): Record<string, unknown> => Object.fromEntries(q.entries());

const notFound = (what: string) => new ConsoleError("CONSOLE_NOT_FOUND", `${what} not found`);

/** The API over an application's parts. */
export function consoleApi(parts: ConsoleParts, audit: ConsoleAudit, clock: Clock) {
  const { store } = parts;
  const letters: DeadLetters = parts.bus?.deadLetters ?? createDeadLetters(store, localTransport(store));
  const replayCheck = parts.bus ? {} : { onlyFrom: localTransport(store).name };
  let ownRunner: SagaRunner | undefined;
  const sagas = () => parts.sagas ?? (ownRunner ??= createSagaRunner({ store, clock }));
  let ownWebhooks: Webhooks | undefined;
  const webhooks = () => parts.webhooks ?? (ownWebhooks ??= createWebhooks({ store, clock }));
  const pipeline = (name: unknown): Pipeline => {
    const p = pipelinesOf(parts).find((x) => x.name === name);
    if (!p) throw notFound(`pipeline ${JSON.stringify(name)} (only pipelines given to the console can act)`);
    return p;
  };

  /** Runs an action and records it, whether it succeeded or not. */
  async function act<T extends { count: number }>(
    req: ApiRequest,
    action: string,
    target: unknown,
    fn: () => Promise<T>,
  ): Promise<T> {
    try {
      const result = await fn();
      await audit.record({ actor: req.actor, action, target, count: result.count, outcome: "ok" });
      return result;
    } catch (e) {
      const outcome = isPatchbayError(e) ? e.code : "ERROR";
      // A replay that stopped part-way moved some letters: the audit says how many.
      const count = isPatchbayError(e, "DEAD_LETTER_REPLAY_INTERRUPTED") ? e.replayed : 0;
      await audit.record({ actor: req.actor, action, target, count, outcome });
      throw e;
    }
  }

  /**
   * Circuit breakers: those given to the console (their live state; `resettable`), then those
   * other processes save under `breaker/<name>` (`breaker.toJSON()`), by name.
   */
  async function breakerStates() {
    const saved = await store.state.list<{ state?: string }>("breaker/");
    const live = breakersOf(parts);
    const byName = new Map<
      string,
      { name: string; state: string; updatedAt: number | undefined; detail: unknown; resettable: boolean }
    >();
    for (const b of saved) {
      const name = b.key.slice("breaker/".length);
      byName.set(name, {
        name,
        state: String(b.value?.state ?? "unknown"),
        updatedAt: b.updatedAt,
        detail: b.value,
        resettable: false,
      });
    }
    for (const [name, breaker] of Object.entries(live)) {
      byName.set(name, {
        name,
        state: breaker.state,
        updatedAt: byName.get(name)?.updatedAt,
        detail: breaker.toJSON(),
        resettable: true,
      });
    }
    return [...byName.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** Rotates an endpoint's secret; the new one is in the answer only (never in the audit log). */
  async function rotateSecret(req: ApiRequest) {
    const endpointId = text(req.body.endpointId, "endpointId") ?? "";
    const grace = text(req.body.grace, "grace");
    if (grace !== undefined) toMs(grace, "grace");
    return act(req, "webhooks.rotate-secret", { endpointId, grace }, async () => {
      const secrets = await webhooks().endpoints.rotateSecret(
        endpointId,
        grace === undefined ? {} : { grace },
      );
      return { count: 1, secret: secrets.current, previousUntil: secrets.previousUntil };
    });
  }

  async function resetBreaker(req: ApiRequest) {
    const name = text(req.body.name, "name") ?? "";
    const breaker = Object.hasOwn(breakersOf(parts), name) ? breakersOf(parts)[name] : undefined;
    if (!breaker) {
      throw notFound(
        `circuit breaker ${JSON.stringify(name)} (only breakers given to the console can be reset)`,
      );
    }
    return act(req, "breakers.reset", { name }, () => {
      const before = breaker.state;
      breaker.reset();
      return Promise.resolve({ count: 1, before, state: breaker.state });
    });
  }

  async function overview() {
    const health = await store.health();
    const [deadLetters, ...bySaga] = await Promise.all([
      letters.count(),
      ...SAGA_STATUSES.map((status) => sagas().count({ status })),
    ]);
    const sagaTotals = Object.fromEntries(SAGA_STATUSES.map((s, i) => [s, bySaga[i] ?? 0]));
    const endpoints = await webhooks().endpoints.list();
    const disabled = endpoints.filter((e) => e.status === "disabled");
    const runs = await runRecords(store).list(undefined, 50);
    const lastByPipeline = new Map<string, (typeof runs)[number]>();
    for (const r of runs) if (!lastByPipeline.has(r.pipeline)) lastByPipeline.set(r.pipeline, r);
    const failingPipelines = [...lastByPipeline.values()].filter(
      (r) => r.status === "failed" || r.status === "abandoned",
    );
    const breakers = await breakerStates();
    const open = breakers.filter((b) => b.state !== "closed");
    const attention: Array<{ what: string; count: number; link: string }> = [];
    if (deadLetters > 0) attention.push({ what: "dead letters", count: deadLetters, link: "#/dead-letters" });
    if ((sagaTotals.failed ?? 0) > 0) {
      attention.push({ what: "failed sagas", count: sagaTotals.failed ?? 0, link: "#/sagas?status=failed" });
    }
    if (disabled.length > 0) {
      attention.push({ what: "disabled webhook endpoints", count: disabled.length, link: "#/webhooks" });
    }
    if (failingPipelines.length > 0) {
      attention.push({
        what: "pipelines whose last run failed",
        count: failingPipelines.length,
        link: "#/pipelines",
      });
    }
    if (open.length > 0) {
      attention.push({ what: "circuit breakers not closed", count: open.length, link: "#/breakers" });
    }
    return {
      health: { store: health },
      breakers,
      totals: {
        deadLetters,
        sagas: sagaTotals,
        webhookEndpoints: endpoints.length,
        webhookEndpointsDisabled: disabled.length,
        pipelines: lastByPipeline.size,
      },
      attention,
    };
  }

  async function deadLetterAction(req: ApiRequest, action: "replay" | "purge") {
    const { body } = req;
    const selection = body.selection;
    const preview = body.preview === true;
    if (Array.isArray(selection)) {
      const keys = selection.map((k: unknown, i) => {
        const o = (k ?? {}) as Record<string, unknown>;
        const group = text(o.group, `selection[${i}].group`);
        const messageId = text(o.messageId, `selection[${i}].messageId`);
        if (!group || !messageId) {
          throw new InvalidArgumentError("each selected letter needs group and messageId", `selection[${i}]`);
        }
        return { group, messageId };
      });
      if (preview) return { matched: keys.length, count: 0 };
      return act(req, `dead-letters.${action}`, { selection: keys }, async () => {
        if (action === "replay" && replayCheck.onlyFrom !== undefined) {
          // Checked for the whole selection first: one call per letter would replay the ones
          // before a foreign letter, then refuse with "nothing was replayed".
          const found: DeadLetter[] = [];
          for (const k of keys) {
            const letter = await letters.get(k.group, k.messageId);
            if (letter) found.push(letter);
          }
          refuseForeign(found, replayCheck.onlyFrom);
        }
        let count = 0;
        for (const k of keys) {
          try {
            count += action === "replay" ? await letters.replay(k, replayCheck) : await letters.purge(k);
          } catch (e) {
            // One call per letter: the interruption counts the selection's letters moved before it.
            if (isPatchbayError(e, "DEAD_LETTER_REPLAY_INTERRUPTED")) {
              throw new DeadLetterReplayError(count + e.replayed, keys.length, e.cause);
            }
            throw e;
          }
        }
        return { matched: keys.length, count };
      });
    }
    const raw = body.filter;
    if (typeof raw !== "object" || raw === null) {
      throw new InvalidArgumentError(
        "say which letters: selection, or filter ({} with all: true for every one)",
        "filter",
      );
    }
    const filter = dlqFilter(raw as Record<string, unknown>);
    if (Object.keys(filter).length === 0 && body.all !== true) {
      throw new InvalidArgumentError("an empty filter selects every letter: confirm with all: true", "all");
    }
    const matched = await letters.count(filter);
    if (preview) return { matched, count: 0 };
    return act(req, `dead-letters.${action}`, { filter: raw }, async () => ({
      matched,
      count: action === "replay" ? await letters.replay(filter, replayCheck) : await letters.purge(filter),
    }));
  }

  async function sagaAction(req: ApiRequest, action: SagaBulkAction) {
    const { body } = req;
    const note = text(body.note, "note");
    const result = body.result;
    const id = text(body.id, "id");
    if (id !== undefined) {
      return act(req, `sagas.${action}`, { id, note }, async () => {
        const runner = sagas();
        const saga =
          action === "retry"
            ? await runner.retry(id)
            : action === "skip"
              ? await runner.skip(id, {
                  ...(note ? { note } : {}),
                  ...(result === undefined ? {} : { result }),
                })
              : await runner.resolve(id, note ? { note } : {});
        return { count: 1, saga };
      });
    }
    const raw = body.filter;
    if (typeof raw !== "object" || raw === null) {
      throw new InvalidArgumentError("say which sagas: id, or filter with a status", "filter");
    }
    const filter = sagaFilter(raw as Record<string, unknown>);
    if (filter.status === undefined || filter.status.length === 0) {
      throw new InvalidArgumentError(
        "a bulk action needs filter.status (which sagas to act on)",
        "filter.status",
      );
    }
    const options = {
      ...(note ? { note } : {}),
      ...(result === undefined ? {} : { result }),
    };
    const bulkFilter = { ...filter, status: filter.status };
    if (body.preview === true) {
      const r = await sagas().bulk(action, bulkFilter, { ...options, dryRun: true });
      return { matched: r.matched, count: 0, sample: r.sample };
    }
    return act(req, `sagas.${action}`, { filter: raw, note }, async () => {
      const r = await sagas().bulk(action, bulkFilter, options);
      return { matched: r.matched, count: r.acted, skipped: r.skipped, skips: r.skips.slice(0, 20) };
    });
  }

  const pauses = groupPauses(store, clock);
  // The app's bus runs in this process: what its groups are doing here (in flight, last minute).
  const activity = parts.bus ? busActivity(clock) : undefined;

  /**
   * Pauses or resumes a consumer group: through the app's bus when there is one (its own
   * consumer stops at once), else in the store (every bus reads it within its poll interval).
   */
  async function queueAction(req: ApiRequest, action: "pause" | "resume") {
    const group = text(req.body.group, "group") ?? "";
    return act(req, `queues.${action}`, { group }, async () => {
      const was = (await pauses.list()).some((p) => p.group === group);
      if (action === "pause") {
        if (parts.bus) await parts.bus.pause(group, { by: req.actor });
        else await pauses.pause(group, { by: req.actor });
      } else if (parts.bus) await parts.bus.resume(group);
      else await pauses.resume(group);
      return { count: was === (action === "pause") ? 0 : 1, paused: action === "pause" };
    });
  }

  /**
   * Consumer groups of the local transport, read from the store: queued messages, parked ones
   * (their dead letter refused), the oldest one's age, and whether the group is paused. A
   * broker's queues live in the broker (its own console shows them): only its paused groups
   * are listed.
   */
  async function queues(): Promise<unknown> {
    const transport = parts.bus?.transport;
    const paused = await pauses.list();
    const pausedOf = (group: string) => paused.find((p) => p.group === group);
    const here = activity?.read() ?? new Map<string, GroupActivity>();
    const measured = activity !== undefined;
    if (transport && !transport.capabilities.sharesStore) {
      const names = [...new Set([...here.keys(), ...paused.map((p) => p.group)])].sort();
      return {
        transport: transport.name,
        inStore: false,
        measured,
        groups: names.map((group) => {
          const p = pausedOf(group);
          return {
            group,
            paused: p !== undefined,
            pausedAt: p?.pausedAt,
            pausedBy: p?.by,
            ...here.get(group),
          };
        }),
      };
    }
    const d = store.dialect;
    const [jobs, bindings] = await Promise.all([
      store.query<{ grp: string; depth: unknown; parked: unknown; oldest: unknown }>(
        `SELECT grp, COUNT(*) AS depth, SUM(CASE WHEN run_at = ${PARKED} THEN 1 ELSE 0 END) AS parked,
                MIN(created_at) AS oldest
           FROM ${d.table("bus_jobs")} GROUP BY grp`,
      ),
      store.query<{ grp: string }>(`SELECT DISTINCT grp FROM ${d.table("bus_bindings")}`),
    ]);
    const now = clock.now();
    const byGroup = new Map<
      string,
      { group: string; depth: number; parked: number; oldestAgeMs: number | null }
    >();
    for (const b of bindings.rows)
      byGroup.set(b.grp, { group: b.grp, depth: 0, parked: 0, oldestAgeMs: null });
    for (const p of paused)
      if (!byGroup.has(p.group))
        byGroup.set(p.group, { group: p.group, depth: 0, parked: 0, oldestAgeMs: null });
    for (const r of jobs.rows) {
      byGroup.set(r.grp, {
        group: r.grp,
        depth: Number(r.depth),
        parked: Number(r.parked ?? 0),
        oldestAgeMs: r.oldest === null ? null : Math.max(0, now - Number(r.oldest)),
      });
    }
    for (const group of here.keys())
      if (!byGroup.has(group)) byGroup.set(group, { group, depth: 0, parked: 0, oldestAgeMs: null });
    return {
      transport: transport?.name ?? localTransport(store).name,
      inStore: true,
      measured,
      groups: [...byGroup.values()]
        .sort((a, b) => (a.group < b.group ? -1 : a.group > b.group ? 1 : 0))
        .map((g) => {
          const p = pausedOf(g.group);
          return {
            ...g,
            paused: p !== undefined,
            pausedAt: p?.pausedAt,
            pausedBy: p?.by,
            ...here.get(g.group),
          };
        }),
    };
  }

  async function get(req: ApiRequest): Promise<unknown> {
    const q = req.query;
    const limit = whole(q.get("limit"), "limit", 50, MAX_PAGE) || 50;
    const offset = whole(q.get("offset"), "offset", 0);
    switch (req.route) {
      case "overview":
        return overview();
      case "dead-letters": {
        const filter = dlqFilter(fromQuery(q));
        // Keyset paging: `cursor` (the previous page's `next`) starts after that page's last
        // letter, as fast on page 1,000 as on page 1; `offset` still skips (after the cursor).
        const after = deadLetterCursor(q.get("cursor"));
        const [items, total] = await Promise.all([
          letters.list({ ...filter, limit, offset, ...(after ? { after } : {}) }),
          letters.count(filter),
        ]);
        const last = items.at(-1);
        return {
          total,
          offset,
          limit,
          next: last && items.length === limit ? encodeDeadLetterCursor(last) : undefined,
          items: items.map((l) => ({
            group: l.group,
            messageId: l.messageId,
            type: l.type,
            attempts: l.attempts,
            firstFailedAt: l.firstFailedAt,
            lastFailedAt: l.lastFailedAt,
            errorCode: l.error.code ?? l.error.name,
            errorMessage: l.error.message,
          })),
        };
      }
      case "dead-letter": {
        const letter = await letters.get(q.get("group") ?? "", q.get("id") ?? "");
        if (!letter) throw notFound("dead letter");
        return letter;
      }
      case "sagas": {
        const filter = sagaFilter(fromQuery(q));
        // Keyset paging, newest first: the cursor is the last page's oldest created_at and how
        // many sagas created in that same ms were shown already.
        const [at, seen] = (q.get("cursor") ?? "").split(":");
        const before = at ? whole(at, "cursor", 0) : undefined;
        const skip = before === undefined ? 0 : whole(seen ?? "0", "cursor", 0);
        const page = await sagas().list({
          ...filter,
          ...(before === undefined ? {} : { before: before + 1 }),
          limit: limit + skip,
        });
        const items = page.slice(skip);
        const last = items.at(-1);
        let next: string | undefined;
        if (last && page.length === limit + skip) {
          const same = items.filter((i) => i.createdAt === last.createdAt).length;
          next = `${last.createdAt}:${same + (last.createdAt === before ? skip : 0)}`;
        }
        return { total: await sagas().count(filter), items, next };
      }
      case "saga": {
        const saga = await sagas().get(q.get("id") ?? "");
        if (!saga) throw notFound("saga");
        return saga;
      }
      case "webhooks":
        return { endpoints: await webhooks().endpoints.list() };
      case "webhooks/deliveries": {
        const status = text(q.get("status"), "status") as DeliveryStatus | undefined;
        const endpointId = text(q.get("endpoint"), "endpoint");
        const messageId = text(q.get("message"), "message");
        const items = await webhooks().deliveries.list({
          limit,
          ...(status ? { status } : {}),
          ...(endpointId ? { endpointId } : {}),
          ...(messageId ? { messageId } : {}),
        });
        return { items };
      }
      case "webhooks/attempts": {
        const items = await webhooks().deliveries.attempts(q.get("endpoint") ?? "", q.get("message") ?? "");
        return { items };
      }
      case "pipelines": {
        const registered = await Promise.all(pipelinesOf(parts).map((p) => p.status({ runs: 5 })));
        return { pipelines: registered, runs: await runRecords(store).list(undefined, limit) };
      }
      case "pipelines/quarantine": {
        // Only pipelines given to the console: the destination is what knows where its quarantine is.
        const p = pipeline(q.get("name"));
        const before = text(q.get("before"), "before");
        const items = await p.quarantined({ limit, ...(before ? { before } : {}) });
        if (items === undefined) return { name: p.name, readable: false, items: [] };
        const last = items.at(-1);
        return {
          name: p.name,
          readable: true,
          items,
          next: last && items.length === limit ? last.id : undefined,
        };
      }
      case "audit":
        return audit.list(limit, offset);
      case "queues":
        return queues();
      case "breakers":
        return { breakers: await breakerStates() };
      case "cdc":
        // Every logical slot of the store's database, whoever consumes it: an abandoned one holds WAL too.
        return { dialect: store.capabilities.dialect, slots: await readChangeSlots(store) };
      default:
        throw notFound(`api/${req.route}`);
    }
  }

  async function post(req: ApiRequest): Promise<unknown> {
    const b = req.body;
    switch (req.route) {
      case "dead-letters/replay":
        return deadLetterAction(req, "replay");
      case "dead-letters/purge":
        return deadLetterAction(req, "purge");
      case "sagas/retry":
      case "sagas/skip":
      case "sagas/resolve":
        return sagaAction(req, req.route.slice("sagas/".length) as SagaBulkAction);
      case "webhooks/enable":
      case "webhooks/disable": {
        const id = text(b.endpointId, "endpointId") ?? "";
        const enable = req.route === "webhooks/enable";
        return act(req, req.route.replace("/", "."), { endpointId: id }, async () => ({
          count: 1,
          endpoint: enable ? await webhooks().endpoints.enable(id) : await webhooks().endpoints.disable(id),
        }));
      }
      case "webhooks/replay": {
        const messageId = text(b.messageId, "messageId") ?? "";
        const endpointId = text(b.endpointId, "endpointId");
        return act(req, "webhooks.replay", { messageId, endpointId }, async () => ({
          count: await webhooks().replay(messageId, endpointId ? { endpointId } : {}),
        }));
      }
      case "webhooks/recover": {
        const endpointId = text(b.endpointId, "endpointId") ?? "";
        const since = time(b.since, "since");
        if (since === undefined) throw new InvalidArgumentError("recover needs since", "since");
        return act(req, "webhooks.recover", { endpointId, since }, async () => ({
          count: await webhooks().recover(endpointId, since),
        }));
      }
      case "queues/pause":
      case "queues/resume":
        return queueAction(req, req.route === "queues/pause" ? "pause" : "resume");
      case "webhooks/rotate-secret":
        return rotateSecret(req);
      case "webhooks/test": {
        const endpointId = text(b.endpointId, "endpointId") ?? "";
        return act(req, "webhooks.test", { endpointId }, async () => ({
          count: 1,
          ...(await webhooks().sendTest(endpointId)),
        }));
      }
      case "breakers/reset":
        return resetBreaker(req);
      case "pipelines/run": {
        const p = pipeline(b.name);
        return act(req, "pipelines.run", { name: p.name }, async () => {
          const report = await p.run();
          return { count: report.rowsWritten, report };
        });
      }
      case "pipelines/reset": {
        const p = pipeline(b.name);
        return act(req, "pipelines.reset", { name: p.name }, async () => {
          await p.reset();
          return { count: 1 };
        });
      }
      default:
        throw notFound(`api/${req.route}`);
    }
  }

  return {
    handle: (req: ApiRequest) => (req.method === "GET" ? get(req) : post(req)),
    async close() {
      activity?.stop();
      await ownRunner?.stop();
      await ownWebhooks?.stop();
    },
  };
}
