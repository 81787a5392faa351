/**
 * Webhook endpoints: where messages go, which event types they want, their secret (with rotation)
 * and their limits. Rows in the store, so every process and the CLI see the same endpoints.
 */
import type { Clock } from "../core/clock.js";
import { toMs, type Duration } from "../core/duration.js";
import { InvalidArgumentError } from "../core/errors.js";
import { uuidv7 } from "../core/ids.js";
import { assertPattern } from "../bus/patterns.js";
import { run } from "../store/dialect.js";
import type { SqlStore } from "../store/sql-store.js";
import { join, joinWith, sql, type SqlStatement } from "../store/sql.js";
import { WebhookNotFoundError } from "./errors.js";
import { assertEndpointSecret, generateSecret } from "./secrets.js";
import type { TargetPolicy } from "./ssrf.js";
import { notifyWorkers, optionalInt, webhookTables } from "./tables.js";

/** Why an endpoint is disabled: by hand, because it answered 410 Gone, or because it kept failing. */
export type DisabledReason = "manual" | "gone" | "failing";

/** An endpoint, as stored (without its secret: read that with {@link WebhookEndpoints.secrets}). */
export interface WebhookEndpoint {
  id: string;
  url: string;
  description: string;
  /** Event type patterns, in the bus's syntax (`order.*`, `order.#`, `#`). */
  events: string[];
  status: "enabled" | "disabled";
  disabledReason: DisabledReason | undefined;
  disabledAt: number | undefined;
  /** Requests in flight at once to this endpoint, across all processes. */
  concurrency: number;
  /** Requests per second to this endpoint, across all processes; undefined means no limit. */
  rateLimit: number | undefined;
  /** Since when every attempt failed (reset by a success); undefined while healthy. */
  failingSince: number | undefined;
  lastSuccessAt: number | undefined;
  lastFailureAt: number | undefined;
  createdAt: number;
  updatedAt: number;
}

/** What {@link WebhookEndpoints.create} takes. */
export interface CreateEndpointInput {
  url: string;
  /** Event type patterns. Default `["#"]`: every event (except Patchbay's own `patchbay.*` events). */
  events?: readonly string[];
  description?: string;
  /** A Standard Webhooks secret (`whsec_` + base64 of 24–64 bytes); default: generated. */
  secret?: string;
  /** Default: the webhooks' `endpointConcurrency` (10). */
  concurrency?: number;
  /** Requests per second; default none. */
  rateLimit?: number;
  /** Your own id (1–100 of `A-Z a-z 0-9 _ . : -`); default a UUIDv7. */
  id?: string;
}

/** What {@link WebhookEndpoints.update} changes; `rateLimit: null` removes the limit. */
export interface UpdateEndpointInput {
  url?: string;
  events?: readonly string[];
  description?: string;
  concurrency?: number;
  rateLimit?: number | null;
}

/** An endpoint's signing secrets. */
export interface EndpointSecrets {
  current: string;
  /** The secret replaced by the last rotation, still signed with until `previousUntil`. */
  previous: string | undefined;
  previousUntil: number | undefined;
}

/** The endpoints API. */
export interface WebhookEndpoints {
  /** Creates an endpoint; the result carries its secret (generated unless given). */
  create(input: CreateEndpointInput): Promise<WebhookEndpoint & { secret: string }>;
  get(id: string): Promise<WebhookEndpoint | undefined>;
  list(filter?: { status?: "enabled" | "disabled" }): Promise<WebhookEndpoint[]>;
  update(id: string, patch: UpdateEndpointInput): Promise<WebhookEndpoint>;
  /** Stops deliveries to it; pending ones wait (nothing is dropped) until it is enabled again. */
  disable(id: string): Promise<WebhookEndpoint>;
  /** Resumes deliveries and clears its failure record. */
  enable(id: string): Promise<WebhookEndpoint>;
  /** Deletes it with its deliveries and attempt log; true when it existed. */
  delete(id: string): Promise<boolean>;
  /**
   * Replaces the secret. Until `grace` (default 24 h) has passed, requests carry signatures with
   * both the new and the old secret, so receivers can switch over without losing a message.
   */
  rotateSecret(id: string, options?: { grace?: Duration; secret?: string }): Promise<EndpointSecrets>;
  secrets(id: string): Promise<EndpointSecrets>;
}

interface EndpointRow {
  id: string;
  url: string;
  description: string;
  events: unknown;
  status: "enabled" | "disabled";
  disabled_reason: DisabledReason | null;
  disabled_at: unknown;
  secret: string;
  previous_secret: string | null;
  previous_secret_until: unknown;
  concurrency: unknown;
  rate_limit: unknown;
  failing_since: unknown;
  last_success_at: unknown;
  last_failure_at: unknown;
  created_at: unknown;
  updated_at: unknown;
}

const ID = /^[A-Za-z0-9_.:-]{1,100}$/;

function checkEvents(events: unknown): string[] {
  if (!Array.isArray(events) || events.length === 0 || events.length > 100) {
    throw new InvalidArgumentError("events is a list of 1 to 100 patterns", "events");
  }
  const list = events as string[];
  list.forEach((p) => assertPattern(p));
  return [...new Set(list)];
}

function checkConcurrency(value: number): number {
  if (!Number.isInteger(value) || value < 1 || value > 1000) {
    throw new InvalidArgumentError(`concurrency is an integer in 1..1000, got ${value}`, "concurrency");
  }
  return value;
}

function checkRate(value: number): number {
  if (typeof value !== "number" || !(value > 0) || value > 100_000) {
    throw new InvalidArgumentError(
      `rateLimit is requests per second in (0, 100000], got ${value}`,
      "rateLimit",
    );
  }
  return value;
}

function checkDescription(value: string): string {
  if (typeof value !== "string" || value.length > 1000) {
    throw new InvalidArgumentError("description is a string of at most 1000 characters", "description");
  }
  return value;
}

/** The token bucket's size: a burst of up to one second's worth (at least one request). */
export function burstOf(rate: number): number {
  return Math.max(1, Math.ceil(rate));
}

/** The store-backed {@link WebhookEndpoints}. */
export function createWebhookEndpoints(
  store: SqlStore,
  deps: { clock: Clock; policy: TargetPolicy; defaultConcurrency: number },
): WebhookEndpoints {
  const d = store.dialect;
  const t = webhookTables(d);
  const { clock, policy } = deps;

  const toEndpoint = (r: EndpointRow): WebhookEndpoint => ({
    id: r.id,
    url: r.url,
    description: r.description,
    events: d.decodeJson(r.events) as string[],
    status: r.status,
    disabledReason: r.disabled_reason ?? undefined,
    disabledAt: optionalInt(r.disabled_at),
    concurrency: Number(r.concurrency),
    rateLimit: r.rate_limit === null ? undefined : Number(r.rate_limit),
    failingSince: optionalInt(r.failing_since),
    lastSuccessAt: optionalInt(r.last_success_at),
    lastFailureAt: optionalInt(r.last_failure_at),
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
  });

  const select = async (id: string): Promise<EndpointRow | undefined> =>
    (await run<EndpointRow>(store, d, sql`SELECT * FROM ${t.endpoints} WHERE id = ${id}`)).rows[0];

  const must = async (id: string): Promise<EndpointRow> => {
    const row = await select(id);
    if (!row) throw new WebhookNotFoundError("WEBHOOK_ENDPOINT_NOT_FOUND", `no webhook endpoint ${id}`, id);
    return row;
  };

  /** Runs an UPDATE that must hit the endpoint, and returns the endpoint as it is afterwards. */
  const change = async (id: string, assignments: SqlStatement, notify = false): Promise<WebhookEndpoint> => {
    const updated = await store.transaction(async (tx) => {
      const rows = await d.roles.rows.updateReturning<EndpointRow>(tx, {
        table: t.endpoints,
        key: "id",
        set: join(assignments, sql`, updated_at = ${clock.now()}`),
        where: sql`id = ${id}`,
        columns: "*",
      });
      if (notify && rows.length > 0) await notifyWorkers(tx, d);
      return rows[0];
    });
    if (!updated)
      throw new WebhookNotFoundError("WEBHOOK_ENDPOINT_NOT_FOUND", `no webhook endpoint ${id}`, id);
    return toEndpoint(updated);
  };

  const secretsOf = (r: EndpointRow): EndpointSecrets => ({
    current: r.secret,
    previous: r.previous_secret ?? undefined,
    previousUntil: optionalInt(r.previous_secret_until),
  });

  return {
    async create(input) {
      if (typeof input !== "object" || input === null) {
        throw new InvalidArgumentError("create() takes { url, events?, ... }", "input");
      }
      const id = input.id ?? uuidv7(clock);
      if (typeof id !== "string" || !ID.test(id)) {
        throw new InvalidArgumentError("id is 1-100 characters of letters, digits, _ . : -", "id");
      }
      const url = policy.checkUrl(input.url).href;
      const events = checkEvents(input.events ?? ["#"]);
      const description = checkDescription(input.description ?? "");
      const secret = input.secret === undefined ? generateSecret() : assertEndpointSecret(input.secret);
      const concurrency = checkConcurrency(input.concurrency ?? deps.defaultConcurrency);
      const rate = input.rateLimit === undefined ? null : checkRate(input.rateLimit);
      const now = clock.now();
      const { rowCount } = await run(
        store,
        d,
        d.roles.rows.insertIgnore(
          t.endpoints,
          `id, url, description, events, status, secret, concurrency, rate_limit, rate_tokens, rate_at, claimed_at,
           created_at, updated_at`,
          [
            sql`(${id}, ${url}, ${description}, ${d.encodeJson(events)}, 'enabled', ${secret}, ${concurrency}, ${rate},
                 ${rate === null ? 0 : burstOf(rate)}, ${now}, 0, ${now}, ${now})`,
          ],
          "id",
        ),
      );
      if (rowCount === 0)
        throw new InvalidArgumentError(`a webhook endpoint with id ${id} exists already`, "id");
      return { ...toEndpoint(await must(id)), secret };
    },

    async get(id) {
      const row = await select(id);
      return row ? toEndpoint(row) : undefined;
    },

    async list(filter = {}) {
      if (filter.status !== undefined && filter.status !== "enabled" && filter.status !== "disabled") {
        throw new InvalidArgumentError(
          `status must be enabled or disabled, got ${JSON.stringify(filter.status)}`,
          "status",
        );
      }
      const where = filter.status === undefined ? sql`` : sql` WHERE status = ${filter.status}`;
      const { rows } = await run<EndpointRow>(
        store,
        d,
        join(sql`SELECT * FROM ${t.endpoints}`, where, sql` ORDER BY created_at, id`),
      );
      return rows.map(toEndpoint);
    },

    async update(id, patch) {
      const parts: SqlStatement[] = [];
      if (patch.url !== undefined) parts.push(sql`url = ${policy.checkUrl(patch.url).href}`);
      if (patch.events !== undefined) parts.push(sql`events = ${d.encodeJson(checkEvents(patch.events))}`);
      if (patch.description !== undefined)
        parts.push(sql`description = ${checkDescription(patch.description)}`);
      if (patch.concurrency !== undefined)
        parts.push(sql`concurrency = ${checkConcurrency(patch.concurrency)}`);
      if (patch.rateLimit === null) parts.push(sql`rate_limit = NULL`);
      else if (patch.rateLimit !== undefined) {
        const rate = checkRate(patch.rateLimit);
        parts.push(sql`rate_limit = ${rate}, rate_tokens = ${burstOf(rate)}, rate_at = ${clock.now()}`);
      }
      if (parts.length === 0) return toEndpoint(await must(id));
      const assignments = joinWith(sql`, `, parts);
      return change(id, assignments, true);
    },

    disable: (id) =>
      change(id, sql`status = 'disabled', disabled_reason = 'manual', disabled_at = ${clock.now()}`),

    enable: (id) =>
      change(
        id,
        sql`status = 'enabled', disabled_reason = NULL, disabled_at = NULL, failing_since = NULL`,
        true,
      ),

    async delete(id) {
      return store.transaction(async (tx) => {
        await run(tx, d, sql`DELETE FROM ${t.attempts} WHERE endpoint_id = ${id}`);
        await run(tx, d, sql`DELETE FROM ${t.deliveries} WHERE endpoint_id = ${id}`);
        const { rowCount } = await run(tx, d, sql`DELETE FROM ${t.endpoints} WHERE id = ${id}`);
        return rowCount > 0;
      });
    },

    async rotateSecret(id, options = {}) {
      const grace = toMs(options.grace ?? "24h", "grace");
      const secret = options.secret === undefined ? generateSecret() : assertEndpointSecret(options.secret);
      const until = clock.now() + grace;
      const row = await store.transaction(async (tx) => {
        const rows = await d.roles.rows.updateReturning<EndpointRow>(tx, {
          table: t.endpoints,
          key: "id",
          set: sql`previous_secret = secret, previous_secret_until = ${until}, secret = ${secret}, updated_at = ${clock.now()}`,
          where: sql`id = ${id}`,
          columns: "*",
        });
        return rows[0];
      });
      if (!row) throw new WebhookNotFoundError("WEBHOOK_ENDPOINT_NOT_FOUND", `no webhook endpoint ${id}`, id);
      return secretsOf(row);
    },

    async secrets(id) {
      return secretsOf(await must(id));
    },
  };
}
