import { createHash } from "node:crypto";
import { InvalidArgumentError } from "../../core/errors.js";
import type {
  QueryOptions,
  QueryResult,
  StoreCapabilities,
  TransactionOptions,
} from "../../store/contracts.js";
import type { SqlDialect } from "../../store/dialect.js";
import { postgresRoles } from "./roles.js";
import type { Migration, MigrationTx } from "../../store/migrations.js";
import { quoteIdentifier } from "../../store/sql.js";
import type { StoreDriver } from "../../store/sql-store.js";
import { TransactionRolledBackError } from "../../store/errors.js";
import { toStoreError, toUnavailable } from "./errors.js";
import {
  postgresBusDeadLetterBytesMigration,
  postgresBusDeadLetterOrderMigration,
  postgresBusDeadLetterTransportMigration,
  postgresBusFreshMigration,
  postgresBusPausedGroupsMigration,
  postgresBusInboxKeyMigration,
  postgresBusMigration,
} from "./bus-schema.js";
import { postgresSagaCreatedMigration, postgresSagaMigration } from "./saga-schema.js";
import { postgresWebhooksMigration } from "./webhooks-schema.js";
import { postgresMigrations } from "./migrations.js";
import { loadPg, type PgClient, type PgPoolClient, type PgPoolLike, type PgResult } from "./load.js";

/**
 * Every migration of this adapter: the store's own list (core, sync), then each module's, in
 * this fixed order, numbered on from there. A module adds its factory at its slot; shipped
 * entries never move.
 */
const moduleMigrations: Array<(version: number) => Migration> = [
  postgresBusMigration, // event bus
  postgresSagaMigration, // sagas
  postgresWebhooksMigration, // webhooks
  postgresBusInboxKeyMigration, // event bus: the inbox keyed by message id first
  postgresBusFreshMigration, // event bus: queued messages that skip the inbox check
  postgresBusDeadLetterBytesMigration, // event bus: dead-letter bodies as bytes
  postgresBusDeadLetterTransportMigration, // event bus: the transport each dead letter came from
  postgresBusDeadLetterOrderMigration, // event bus: dead letters indexed in the console's order
  postgresSagaCreatedMigration, // sagas: instances indexed by creation time
  postgresBusPausedGroupsMigration, // event bus: consumer groups paused by hand
];
const allMigrations = moduleMigrations.reduce<Migration[]>(
  (list, migration) => [...list, migration(list.length + 1)],
  [...postgresMigrations],
);

/** Options of the PostgreSQL store. */
export interface PostgresDriverOptions {
  /** `postgres://user:pass@host:port/db`. Defaults to `PATCHBAY_PG_URL`, then libpq's `PG*` variables. */
  url?: string;
  /** Use an existing `pg` pool (the app's own); the store will not end it on close. */
  pool?: PgPoolLike;
  /** Schema holding Patchbay's tables; created if missing. Default `patchbay`. */
  schema?: string;
  /** Pool size when the store creates the pool. Default 10. */
  max?: number;
  /** Per-statement timeout in ms (`statement_timeout`); default none. */
  statementTimeoutMs?: number;
  /**
   * Keep Patchbay's most frequent statements (the bus inbox's, the local queue's claim) as named
   * prepared statements on each connection: parsed once instead of on every run, and planned on
   * every run for the table as it is then (the store's connections start with
   * `plan_cache_mode=force_custom_plan`; see {@link CUSTOM_PLANS}). Default true on the store's
   * own pool, false on an app's `pool` (whose sessions the store does not configure). Set false
   * behind a pooler that cannot route them (PgBouncer before 1.21 in transaction mode).
   */
  prepareStatements?: boolean;
}

const CAPABILITIES: StoreCapabilities = {
  dialect: "postgres",
  concurrentWriters: true,
  skipLocked: true,
  notifications: true,
};

const ISOLATION: Record<NonNullable<TransactionOptions["isolation"]>, string> = {
  "read committed": "READ COMMITTED",
  "repeatable read": "REPEATABLE READ",
  serializable: "SERIALIZABLE",
};

/**
 * The session setting the store's own connections start with. A named statement's *generic*
 * plan is made once and kept for the connection's life; made while a table was small (a new
 * deployment, an inbox analysed at a few hundred rows) it is a sequential scan, and it stays one
 * as the table grows: an inbox check read every row of a 60,000-row inbox, 30 ms a statement,
 * and the bus slowed to a fifth until autovacuum analysed the table again. Custom plans are made
 * per run from the table's current size; the statement is still parsed once. It only concerns
 * named statements: unnamed ones (everything without the `prepare` hint) are always planned per run.
 */
export const CUSTOM_PLANS = "-c plan_cache_mode=force_custom_plan";

/**
 * The pool's connection settings with {@link CUSTOM_PLANS} added to any startup `options` the
 * URL or `PGOPTIONS` already give (a URL's `options` would otherwise replace ours).
 */
function withCustomPlans(url: string | undefined): Record<string, unknown> {
  const parsed = url === undefined ? undefined : new URL(url); // valid: describe() checked it
  const given = parsed?.searchParams.get("options") ?? process.env.PGOPTIONS;
  const options = [given, CUSTOM_PLANS].filter(Boolean).join(" ");
  if (!parsed?.searchParams.has("options")) return { ...(url ? { connectionString: url } : {}), options };
  parsed.searchParams.set("options", options);
  return { connectionString: parsed.toString(), options };
}

/** host:port/database, never the password. */
function describe(url: string | undefined): string {
  if (!url) return `${process.env.PGHOST ?? "localhost"}/${process.env.PGDATABASE ?? "(default)"}`;
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || "5432"}${u.pathname}`;
  } catch {
    throw new InvalidArgumentError("url is not a valid postgres:// URL", "url");
  }
}

/** The `pg` {@link StoreDriver}. */
export function postgresDriver(options: PostgresDriverOptions = {}): StoreDriver {
  const schemaName = options.schema ?? "patchbay";
  const schema = quoteIdentifier(schemaName, "schema");
  const url = options.url ?? process.env.PATCHBAY_PG_URL;
  const location = options.pool ? `(pool)/${schemaName}` : `${describe(url)}#${schemaName}`;
  let pool: PgPoolLike | undefined;

  const dialect: SqlDialect = {
    name: "postgres",
    placeholders: "numbered",
    roles: postgresRoles,
    table: (name) => `${schema}.${quoteIdentifier(name)}`,
    encodeJson: (value) => JSON.stringify(value),
    decodeJson: (raw) => raw,
  };
  const migrations = allMigrations.map((m) => ({ ...m, sql: m.sql.replaceAll("{{schema}}", schema) }));

  const ready = (): PgPoolLike => {
    if (!pool) throw toUnavailable(new Error("store is not connected"), location);
    return pool;
  };

  const prepare = options.prepareStatements ?? !options.pool;
  /** Statement names by text: a digest, so one name never stands for two texts on a connection. */
  const names = new Map<string, string>();
  const nameOf = (text: string) => {
    let name = names.get(text);
    if (name === undefined) {
      if (names.size >= 1000) names.clear(); // bounded; names are recomputed, never reused for another text
      name = `pb_${createHash("sha256").update(text).digest("hex").slice(0, 40)}`;
      names.set(text, name);
    }
    return name;
  };

  /**
   * Statements on `client`. In a transaction (`failures` given), the first statement error is
   * noted: the server has then aborted the transaction, so when `fn` caught that error and went
   * on, its later statements (refused with 25P02) and its COMMIT fail as TRANSACTION_ROLLED_BACK
   * with that error as the cause.
   */
  const onClient = (client: PgPoolClient | PgPoolLike, failures?: { first?: unknown }): MigrationTx => {
    const failed = (e: unknown, text: string) => {
      if (failures?.first !== undefined && (e as { code?: unknown }).code === "25P02")
        return TransactionRolledBackError.after("PostgreSQL", failures.first);
      const error = toStoreError(e, text);
      if (failures) failures.first ??= error;
      return error;
    };
    return {
      async query<Row>(
        text: string,
        params: readonly unknown[] = [],
        queryOptions?: QueryOptions,
      ): Promise<QueryResult<Row>> {
        try {
          const r =
            queryOptions?.prepare && prepare
              ? await client.query({ name: nameOf(text), text, values: params as unknown[] })
              : await client.query(text, params as unknown[]);
          return { rows: r.rows as Row[], rowCount: r.rowCount ?? 0 };
        } catch (e) {
          throw failed(e, text);
        }
      },
      async exec(ddl: string) {
        try {
          await client.query(ddl);
        } catch (e) {
          throw failed(e, ddl);
        }
      },
    };
  };

  const transaction = async <T>(
    fn: (tx: MigrationTx) => Promise<T>,
    txOptions: TransactionOptions,
    before?: (tx: MigrationTx) => Promise<void>,
  ): Promise<T> => {
    let client: PgPoolClient;
    try {
      client = await ready().connect();
    } catch (e) {
      throw toUnavailable(e, location);
    }
    const failures: { first?: unknown } = {};
    const tx = onClient(client, failures);
    let broken: Error | undefined;
    try {
      await tx.query(
        txOptions.isolation ? `BEGIN ISOLATION LEVEL ${ISOLATION[txOptions.isolation]}` : "BEGIN",
      );
      if (before) await before(tx);
      const result = await fn(tx);
      let answer: PgResult;
      try {
        answer = await client.query("COMMIT");
      } catch (e) {
        throw toStoreError(e, "COMMIT");
      }
      // An aborted transaction's COMMIT is answered with the tag ROLLBACK and no error.
      if (answer.command !== "COMMIT") throw TransactionRolledBackError.after("PostgreSQL", failures.first);
      return result;
    } catch (e) {
      // A failed ROLLBACK means the connection is in an unknown state: destroy it, never reuse it.
      await client.query("ROLLBACK").catch((rollbackError: Error) => (broken = rollbackError));
      throw e;
    } finally {
      client.release(broken);
    }
  };

  return {
    dialect,
    capabilities: CAPABILITIES,
    migrations,
    location,
    resource: Symbol(`postgres ${location}`),

    async connect() {
      if (pool) return;
      const pg = await loadPg();
      const created =
        options.pool ??
        new pg.Pool({
          ...(prepare ? withCustomPlans(url) : url ? { connectionString: url } : {}),
          max: options.max ?? 10,
          ...(options.statementTimeoutMs ? { statement_timeout: options.statementTimeoutMs } : {}),
        });
      // An idle client losing its connection emits 'error' on the pool; without a listener that
      // would crash the process. The next checkout simply gets a fresh connection.
      created.on("error", () => undefined);
      try {
        const client = await created.connect();
        client.release();
      } catch (e) {
        if (!options.pool) await created.end().catch(() => undefined);
        throw toUnavailable(e, location);
      }
      pool = created;
    },

    async disconnect() {
      const p = pool;
      pool = undefined;
      if (p && !options.pool) await p.end();
    },

    query: <Row>(text: string, params: readonly unknown[], queryOptions?: QueryOptions) =>
      onClient(ready()).query<Row>(text, params, queryOptions),

    async listen(channel, onNotify) {
      const name = quoteIdentifier(channel, "channel");
      const config = (ready() as unknown as { options: object }).options;
      const pg = await loadPg();
      let client: PgClient | undefined;
      let closed = false;
      // A dedicated connection (LISTEN holds it); on loss, reconnect with a growing pause. Users
      // of notifications also poll, so a gap only delays wake-ups, it loses nothing.
      const connect = async (pause: number): Promise<void> => {
        if (closed) return;
        const c = new pg.Client(config);
        c.on("notification", (m) => {
          if (m.channel === channel) onNotify(m.payload ?? "");
        });
        c.on("error", () => undefined);
        c.on("end", () => {
          if (!closed && client === c) {
            client = undefined;
            setTimeout(() => void connect(Math.min(pause * 2, 30_000)), pause).unref();
          }
        });
        try {
          await c.connect();
          await c.query(`LISTEN ${name}`);
          client = c;
        } catch {
          await c.end().catch(() => undefined);
          if (!closed) setTimeout(() => void connect(Math.min(pause * 2, 30_000)), pause).unref();
        }
      };
      await connect(250);
      return async () => {
        closed = true;
        const c = client;
        client = undefined;
        await c?.end().catch(() => undefined);
      };
    },

    transaction: (fn, txOptions) => transaction(fn, txOptions),

    withMigrationLock: (fn) =>
      transaction(fn, {}, async (tx) => {
        // Serializes migrations across processes; released automatically at commit/rollback.
        await tx.query("SELECT pg_advisory_xact_lock(hashtext($1))", [`patchbay.migrate:${schemaName}`]);
        await tx.exec(
          `CREATE SCHEMA IF NOT EXISTS ${schema};
           CREATE TABLE IF NOT EXISTS ${schema}.migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at bigint NOT NULL)`,
        );
      }),
  };
}
