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
import { quoteIdentifier, rawText, render, type SqlStatement } from "../../store/sql.js";
import type { DriverTransactionOptions, StoreDriver } from "../../store/sql-store.js";
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
import { withStartupOptions } from "./lazy-pool.js";
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
 * The isolation level the store's own connections start with, whatever the database's or role's
 * `default_transaction_isolation` says: the store's claims and its migration lock are written for
 * READ COMMITTED (a statement sees what committed before it). Under a SERIALIZABLE default, a
 * migration read its ledger in a snapshot taken before it waited for the lock, and ran a migration
 * another process had just applied. A transaction on a caller's pool begins at this level too.
 */
const READ_COMMITTED = "-c default_transaction_isolation=read\\ committed";

/** An array parameter's text form (`{"a","b"}`), as `pg` would send it; strings and numbers only. */
function arrayText(values: readonly unknown[]): string | undefined {
  const items: string[] = [];
  for (const v of values) {
    if (v === null) items.push("NULL");
    else if (typeof v === "number" && Number.isFinite(v)) items.push(String(v));
    else if (typeof v === "string") items.push(`"${v.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`);
    else return undefined;
  }
  return `{${items.join(",")}}`;
}

/**
 * A value as the literal PostgreSQL reads as it reads that value sent as a text parameter: an
 * untyped string literal ('…', typed by its context or cast, like `$1`), or NULL. Strings,
 * finite numbers, bigints, booleans and flat arrays of strings and numbers; anything else (a
 * Buffer, an object, a NUL character PostgreSQL text cannot hold) is `undefined`, and the
 * statement goes as a parameterised one instead.
 */
export function postgresLiteral(value: unknown): string | undefined {
  if (value === null || value === undefined) return "NULL";
  let text: string | undefined;
  if (typeof value === "string") text = value;
  else if (typeof value === "number") text = Number.isFinite(value) ? String(value) : undefined;
  else if (typeof value === "bigint") text = String(value);
  else if (typeof value === "boolean") text = value ? "true" : "false";
  else if (Array.isArray(value)) text = arrayText(value);
  if (text === undefined || text.includes("\u0000")) return undefined;
  return escapeLiteral(text);
}

/**
 * `text` as a PostgreSQL string literal, by the rules of `pg`'s `escapeLiteral`: quotes doubled;
 * with a backslash, backslashes doubled too and the literal written as an escape string (` E'…'`),
 * so it reads the same whatever `standard_conforming_strings` is.
 */
function escapeLiteral(text: string): string {
  const quoted = `'${text.replaceAll("'", "''").replaceAll("\\", "\\\\")}'`;
  return text.includes("\\") ? ` E${quoted}` : quoted;
}

/**
 * `statement` with its values written as literals ({@link postgresLiteral}), for sending it in
 * one simple-protocol query with BEGIN or COMMIT; `undefined` when a value cannot be a literal.
 */
function inline(statement: SqlStatement): string | undefined {
  let text = statement.strings[0] ?? "";
  for (let i = 0; i < statement.values.length; i++) {
    const value = statement.values[i];
    const written = rawText(value) ?? postgresLiteral(value);
    if (written === undefined) return undefined;
    text += written + (statement.strings[i + 1] ?? "");
  }
  return text;
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

  /** Statements on `client`; `onFailure` sees each error before it is thrown (a transaction notes its first). */
  const onClient = (client: PgPoolClient | PgPoolLike, onFailure?: (e: unknown) => void): MigrationTx => ({
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
        const error = toStoreError(e, text);
        onFailure?.(error);
        throw error;
      }
    },
    async exec(ddl: string) {
      try {
        await client.query(ddl);
      } catch (e) {
        const error = toStoreError(e, ddl);
        onFailure?.(error);
        throw error;
      }
    },
  });

  /** A statement that could not be inlined, run on its own with parameters. */
  const runOn = (tx: MigrationTx, statement: SqlStatement) => {
    const { text, params } = render(statement, "numbered");
    return tx.query<Record<string, unknown>>(text, params, { prepare: true });
  };

  const transaction = async <T>(
    fn: (tx: MigrationTx, first?: QueryResult<Record<string, unknown>>) => Promise<T>,
    txOptions: DriverTransactionOptions,
    before?: (tx: MigrationTx) => Promise<void>,
  ): Promise<T> => {
    let client: PgPoolClient;
    try {
      client = await ready().connect();
    } catch (e) {
      throw toUnavailable(e, location);
    }
    // The first statement error inside the transaction: when fn caught it and went on, the
    // server has aborted the transaction, and this is why its COMMIT will not commit.
    let firstFailure: unknown;
    const tx = onClient(client, (e) => (firstFailure ??= e));
    let broken: Error | undefined;
    try {
      // Our own sessions start at READ COMMITTED; a caller's may not.
      const level = txOptions.isolation ?? (options.pool ? "read committed" : undefined);
      const begin = level ? `BEGIN ISOLATION LEVEL ${ISOLATION[level]}` : "BEGIN";
      const firstText = txOptions.first && inline(txOptions.first);
      let opened: QueryResult<Record<string, unknown>> | undefined;
      if (firstText === undefined) {
        await tx.query(begin);
        if (txOptions.first) opened = await runOn(tx, txOptions.first);
      } else {
        // One simple-protocol query, two statements: BEGIN and the first (values written in).
        const text = `${begin}; ${firstText}`;
        let results: PgResult[];
        try {
          results = (await client.query(text)) as unknown as PgResult[];
        } catch (e) {
          throw toStoreError(e, text);
        }
        const result = results[1];
        opened = { rows: result?.rows ?? [], rowCount: result?.rowCount ?? 0 };
      }
      if (before) await before(tx);
      const result = await fn(tx, opened);
      // The last statements go with COMMIT in one simple-protocol query; when one of them
      // cannot be inlined, all run on their own first, in order. When one fails, the server
      // skips the rest (COMMIT included) and the transaction is rolled back below.
      const last = txOptions.last?.() ?? [];
      let inlined: string[] | undefined = [];
      for (const statement of last) {
        const text = inline(statement);
        if (text === undefined) inlined = undefined;
        else inlined?.push(text);
      }
      if (!inlined) for (const statement of last) await runOn(tx, statement);
      const text = inlined && inlined.length > 0 ? `${inlined.join("; ")}; COMMIT` : "COMMIT";
      let answer: unknown; // one result, or one per statement when held ones went first
      try {
        answer = await client.query(text);
      } catch (e) {
        // Held statements refused because the transaction is already aborted (25P02): the same
        // rolled-back transaction as a COMMIT answered with ROLLBACK.
        if ((e as { code?: unknown }).code === "25P02" && firstFailure !== undefined)
          throw TransactionRolledBackError.after("PostgreSQL", firstFailure);
        throw toStoreError(e, text);
      }
      // An aborted transaction's COMMIT is answered with the tag ROLLBACK and no error.
      const tag = ((Array.isArray(answer) ? answer.at(-1) : answer) as PgResult | undefined)?.command;
      if (tag !== "COMMIT") throw TransactionRolledBackError.after("PostgreSQL", firstFailure);
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
          ...withStartupOptions(url, prepare ? `${CUSTOM_PLANS} ${READ_COMMITTED}` : READ_COMMITTED),
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
