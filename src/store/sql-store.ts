import { AsyncLocalStorage } from "node:async_hooks";
import { systemClock, type Clock } from "../core/clock.js";
import type { PatchbayError } from "../core/errors.js";
import { invoke } from "../core/invoke.js";
import { silentLogger, type Logger } from "../core/logger.js";
import type {
  QueryOptions,
  QueryResult,
  SqlExecutor,
  Store,
  StoreCapabilities,
  StoreHealth,
  StoreTx,
  TransactionOptions,
  Transactor,
} from "./contracts.js";
import { PREPARED, run, type SqlDialect } from "./dialect.js";
import { MigrationError, NestedTransactionError, StoreClosedError } from "./errors.js";
import { createIdempotencyStore } from "./idempotency-store.js";
import {
  appliedMigrations,
  migrate,
  schemaVersion,
  type Migration,
  type MigrationHost,
  type MigrationReport,
  type MigrationTx,
} from "./migrations.js";
import type { SqlStatement } from "./sql.js";
import { createStateStore } from "./state-store.js";

/**
 * What an adapter implements to become a {@link Store}: connections, statements and
 * transactions in its own driver. Everything above that — closed and nested-transaction
 * guards, dead transaction handles, migrations, the state and idempotency roles — is shared.
 */
export interface StoreDriver extends MigrationHost {
  readonly capabilities: StoreCapabilities;
  readonly migrations: readonly Migration[];
  /** Where the data lives, for logs and health (never a password). */
  readonly location: string;
  /**
   * Subscribes to notifications on `channel` (PostgreSQL `LISTEN`); absent when the backend has
   * none. Resolves with a function that unsubscribes.
   */
  listen?(channel: string, onNotify: (payload: string) => void): Promise<() => Promise<void>>;
  /**
   * Identity of what a transaction holds. Stores sharing it (two SQLite stores on one file share
   * a connection) reject calls made from inside each other's transactions with `TRANSACTION_NESTED`.
   */
  readonly resource: unknown;
  connect(): Promise<void>;
  /** Releases every connection. Called once, after running transactions finished. */
  disconnect(): Promise<void>;
  /** One statement in autocommit mode. Errors are already `StoreQueryError`s. */
  query<Row>(sql: string, params: readonly unknown[], options?: QueryOptions): Promise<QueryResult<Row>>;
  /**
   * Runs `fn` in a transaction; commits when it resolves, rolls back and rethrows when it rejects.
   * Resolves only once COMMIT committed: a COMMIT refused, or answered without committing (an
   * aborted transaction), rejects. `options.first`, when given, is the transaction's first
   * statement and its result is handed to `fn`; `options.last`, called once `fn` resolved, gives
   * its last statements. A driver may send them together with `BEGIN` and `COMMIT` (PostgreSQL:
   * one round trip each); otherwise it runs them as ordinary statements after `BEGIN` and before
   * `COMMIT` ({@link runFirstAndLast}). A failure of either rolls back and rejects like `fn`'s.
   */
  transaction<T>(
    fn: (tx: MigrationTx, first?: QueryResult<Record<string, unknown>>) => Promise<T>,
    options: DriverTransactionOptions,
  ): Promise<T>;
}

/** What a {@link StoreDriver.transaction} is asked for. */
export interface DriverTransactionOptions extends TransactionOptions {
  /** The transaction's first statement (sent with `BEGIN` where the driver can). */
  first?: SqlStatement | undefined;
  /** Its last statements, asked for once `fn` resolved (sent with `COMMIT` where the driver can). */
  last?: (() => readonly SqlStatement[]) | undefined;
}

/**
 * {@link StoreDriver.transaction}'s `first` and `last` as ordinary statements around `fn`, for a
 * driver that has no cheaper way to send them: call it inside the transaction, between `BEGIN`
 * and `COMMIT`.
 */
export async function runFirstAndLast<T>(
  tx: MigrationTx,
  dialect: SqlDialect,
  options: DriverTransactionOptions,
  fn: (tx: MigrationTx, first?: QueryResult<Record<string, unknown>>) => Promise<T>,
): Promise<T> {
  const first = options.first ? await run(tx, dialect, options.first, PREPARED) : undefined;
  const result = await fn(tx, first);
  for (const statement of options.last?.() ?? []) await run(tx, dialect, statement, PREPARED);
  return result;
}

/** Options every SQL store accepts. */
export interface SqlStoreOptions {
  /** Apply pending migrations on `open()` (default `true`); when `false`, `open()` fails on an outdated schema. */
  migrate?: boolean;
  /**
   * Create Patchbay's tables where there are none yet (default `true`). When `false`, `open()`
   * refuses a location that was never migrated (`SCHEMA_OUTDATED`, version 0) and creates
   * nothing: a mistyped schema or database must not come up empty and answer "nothing there".
   */
  create?: boolean;
  clock?: Clock;
  logger?: Logger;
}

/** Options of {@link SqlStore.lazyTransaction}. */
export interface LazyTransactionOptions extends TransactionOptions {
  /**
   * The transaction's first statement, run when it opens; `check` gets its rows and may throw to
   * roll back (the whole call then rejects with that error). It is the driver transaction's
   * `first`: PostgreSQL sends it with `BEGIN`.
   */
  first?: { statement: SqlStatement; check: (rows: readonly Record<string, unknown>[]) => void };
  /** The transaction's first statements, run when it opens (after `first`, before the caller's first query). */
  onOpen?: (tx: StoreTx) => Promise<void>;
  /** Its last statements, run before COMMIT — only when it opened and `fn` resolved. */
  beforeCommit?: (tx: StoreTx) => Promise<void>;
}

/** A {@link Store} that can also report and apply migrations explicitly. */
export interface SqlStore extends Store {
  /**
   * Like `transaction`, but the transaction opens only when `fn` first uses `tx`: work that
   * never touches the store holds no connection and no lock, and costs no commit. Resolves with
   * `fn`'s value and whether a transaction was opened (and committed). When opening fails (the
   * database, or `onOpen`), every `tx` call rejects and so does the whole call — even if `fn`
   * swallowed the error. Calls on the store from inside `fn` are refused as nested, as in
   * `transaction`.
   */
  lazyTransaction<T>(
    fn: (tx: StoreTx) => Promise<T>,
    options?: LazyTransactionOptions,
  ): Promise<{ value: T; opened: boolean }>;
  /** Applies pending migrations now (what `open()` does by default). */
  migrate(): Promise<MigrationReport>;
  /** The adapter's location string (file path, or host/database/schema). */
  readonly location: string;
  /** SQL details for modules that keep their own tables in the store (bus, sync). Adapter-author API. */
  readonly dialect: SqlDialect;
  /** `LISTEN`-style notifications, when the backend has them (`capabilities.notifications`). */
  listen?: StoreDriver["listen"];
}

interface TxContext {
  resource: unknown;
  open: boolean;
  /** Holds a connection (and, on SQLite, the write lock) now: a lazy transaction once it opened. */
  holding: boolean;
}

interface HeldForCommit {
  hold: (statement: SqlStatement) => boolean;
  last: () => readonly SqlStatement[];
}

const activeTx = new AsyncLocalStorage<TxContext>();

/** Each store's {@link heldByCaller} check. */
const holdingChecks = new WeakMap<object, () => boolean>();

/**
 * Whether the caller runs inside a transaction of `store` that holds its connection now (a bus
 * handler's after its first `ctx.tx` call, a `store.transaction`'s). For work the store does for
 * the caller later, outside the caller's async context (a group-committed write): that work
 * would wait for the very connection or lock the caller's transaction holds until the caller
 * returns — on SQLite always, elsewhere once the pool is spent — and so would the caller.
 */
export function heldByCaller(store: SqlStore): boolean {
  return holdingChecks.get(store)?.() ?? false;
}

/** The last statements of the transaction of each handle that can take them ({@link runLast}). */
const lastOf = new WeakMap<object, HeldForCommit>();

/**
 * Runs `statement` as the last work of `tx`'s transaction: it joins the transaction's `last`
 * statements, which the driver runs after everything else, just before `COMMIT` (PostgreSQL sends
 * them with it, in one round trip), or it runs now when `tx` cannot take it (not a handle of this
 * store's transactions, or one already committing). Its result is not returned; its failure rolls
 * the transaction back like any statement's. Only for a statement nothing later depends on
 * (acknowledging a message).
 */
export async function runLast(tx: SqlExecutor, dialect: SqlDialect, statement: SqlStatement): Promise<void> {
  if (lastOf.get(tx)?.hold(statement)) return;
  await run(tx, dialect, statement);
}

/**
 * The handle a transaction's code gets. A class: its getters live on the prototype, where an
 * object literal with getters would copy them into every handle (one per bus delivery).
 * `query` and `afterCommit` are bound to the handle, so they may be passed around on their own.
 */
class TxHandle implements StoreTx {
  readonly query: StoreTx["query"];
  readonly afterCommit: StoreTx["afterCommit"];
  // Built on first use: most transactions (a bus handler's, for one) never touch them.
  private stateStore: StoreTx["state"] | undefined;
  private idempotencyStore: StoreTx["idempotency"] | undefined;

  constructor(
    private readonly live: SqlExecutor,
    committed: Array<() => void>,
    private readonly dialect: SqlDialect,
    private readonly clock: Clock,
    held: HeldForCommit | undefined,
  ) {
    this.query = (text, params, queryOptions) => live.query(text, params, queryOptions);
    this.afterCommit = (callback) => void committed.push(callback);
    if (held) lastOf.set(this, held);
  }

  get state(): StoreTx["state"] {
    return (this.stateStore ??= createStateStore(this.live, this.dialect, this.clock));
  }

  get idempotency(): StoreTx["idempotency"] {
    return (this.idempotencyStore ??= createIdempotencyStore(this.live, this.dialect, this.clock));
  }
}

/** Builds a {@link Store} from an adapter's {@link StoreDriver}. */
export function createSqlStore(driver: StoreDriver, options: SqlStoreOptions = {}): SqlStore {
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? silentLogger;
  const dialect: SqlDialect = driver.dialect;
  let state: "new" | "opening" | "open" | "closing" | "closed" = "new";
  let opening: Promise<MigrationReport | undefined> | undefined;
  let closing: Promise<void> | undefined;
  const running = new Set<Promise<unknown>>();

  /** Why a call must be refused right now, if it must. */
  const refusal = (): PatchbayError | undefined => {
    const ctx = activeTx.getStore();
    if (ctx?.open && ctx.resource === driver.resource) return new NestedTransactionError();
    if (state === "closing" || state === "closed") return new StoreClosedError("the store is closed");
    return undefined;
  };
  /**
   * Runs one operation: rejects at once when closed or nested, opens the store on first use,
   * and is tracked from the start so `close()` waits for it.
   */
  const operation = <T>(fn: () => Promise<T>, { openFirst = true } = {}): Promise<T> => {
    const refused = refusal();
    if (refused) return Promise.reject(refused);
    const p =
      state === "open"
        ? // The common case without an extra async step (this runs for every statement).
          invoke(fn)
        : (async () => {
            if (openFirst) await store.open();
            return fn();
          })();
    running.add(p);
    const done = () => running.delete(p);
    p.then(done, done);
    return p;
  };

  /** Connects and migrates (or checks the schema) once; resolves with the report when it migrated now. */
  const open = (mode: "migrate" | "check"): Promise<MigrationReport | undefined> => {
    const refused = refusal();
    if (refused) return Promise.reject(refused);
    if (state === "open") return Promise.resolve(undefined);
    opening ??= (async () => {
      state = "opening";
      try {
        await driver.connect();
        if (options.create === false) {
          // Autocommit and read-only: the migration lock would create the schema it looks at.
          const found = await driver
            .query(`SELECT version FROM ${dialect.table("migrations")} WHERE 1 = 0`, [])
            .then(
              () => true,
              () => false,
            );
          if (!found) {
            throw new MigrationError(
              "SCHEMA_OUTDATED",
              `no Patchbay tables at ${driver.location} (check the schema or database named; \`patchbay migrate\` creates them)`,
              0,
              driver.migrations.length,
            );
          }
        }
        const report =
          mode === "check"
            ? (await schemaVersion(driver, driver.migrations, { requireCurrent: true }), undefined)
            : await migrate(driver, driver.migrations, { clock, logger });
        if (state === "opening") state = "open";
        return report;
      } catch (e) {
        if (state === "opening") state = "new";
        opening = undefined;
        await driver.disconnect().catch(() => undefined);
        throw e;
      }
    })();
    return opening;
  };

  const autocommit: SqlExecutor = {
    query: <Row>(text: string, params: readonly unknown[] = [], queryOptions?: QueryOptions) =>
      operation(() => driver.query<Row>(text, params, queryOptions)),
  };

  /** For roles that need several statements in a transaction (upserts without `ON CONFLICT`). */
  const autocommitWithTransactions: SqlExecutor & Transactor = {
    query: (text, params, queryOptions) => autocommit.query(text, params, queryOptions),
    transaction: (fn, txOptions) => store.transaction(fn, txOptions),
  };

  /** A transaction's connection that refuses use once the transaction ended (a missing await). */
  const guarded = (conn: SqlExecutor | undefined, ctx: TxContext): SqlExecutor => ({
    query: <Row>(text: string, params: readonly unknown[] = [], queryOptions?: QueryOptions) => {
      if (!ctx.open || !conn) {
        return Promise.reject(
          new StoreClosedError("transaction handle used after its transaction ended (a missing await?)"),
        );
      }
      return conn.query<Row>(text, params, queryOptions);
    },
  });
  const txHandle = (live: SqlExecutor, committed: Array<() => void>, held?: HeldForCommit): StoreTx =>
    new TxHandle(live, committed, dialect, clock, held);
  /**
   * Statements held for a transaction's commit ({@link runLast}); `last` hands them to the
   * driver, which sends them with `COMMIT` where it can.
   */
  const heldForCommit = (): HeldForCommit => {
    const statements: SqlStatement[] = [];
    let sealed = false;
    return {
      hold: (statement) => {
        if (sealed) return false;
        statements.push(statement);
        return true;
      },
      last: () => {
        sealed = true;
        return statements;
      },
    };
  };
  const runAfterCommit = (committed: Array<() => void>) => {
    for (const callback of committed.splice(0)) {
      try {
        callback();
      } catch (e) {
        logger.warn({ err: e }, "patchbay: afterCommit callback threw; the commit stands");
      }
    }
  };

  const store: SqlStore = {
    capabilities: driver.capabilities,
    location: driver.location,
    dialect,
    ...(driver.listen
      ? {
          listen: (channel: string, onNotify: (payload: string) => void) =>
            operation(() => driver.listen!(channel, onNotify)),
        }
      : {}),
    state: createStateStore(autocommitWithTransactions, dialect, clock),
    idempotency: createIdempotencyStore(autocommitWithTransactions, dialect, clock),
    query: (text, params, queryOptions) => autocommit.query(text, params, queryOptions),

    open: () => open(options.migrate === false ? "check" : "migrate").then(() => undefined),

    close() {
      closing ??= (async () => {
        const wasOpen = state === "open" || state === "opening";
        state = "closing";
        await opening?.catch(() => undefined);
        await Promise.allSettled([...running]);
        if (wasOpen) await driver.disconnect();
        state = "closed";
      })();
      return closing;
    },

    async health(): Promise<StoreHealth> {
      const started = performance.now();
      const base = {
        dialect: dialect.name,
        location: driver.location,
        knownSchemaVersion: driver.migrations.length,
      };
      try {
        const applied = await operation(() =>
          driver.transaction((tx) => appliedMigrations(tx, dialect), { isolation: "read committed" }),
        );
        const latencyMs = Math.round((performance.now() - started) * 100) / 100;
        return { ok: true, ...base, schemaVersion: applied.at(-1)?.version ?? 0, latencyMs };
      } catch (e) {
        return {
          ok: false,
          ...base,
          schemaVersion: 0,
          latencyMs: Math.round(performance.now() - started),
          error: (e as Error).message,
        };
      }
    },

    // Opening in "migrate" mode returns the report of the migrations it applied; an open store
    // migrates again (normally nothing) so the report is always about this call.
    migrate: () =>
      operation(
        async () => (await open("migrate")) ?? migrate(driver, driver.migrations, { clock, logger }),
        { openFirst: false },
      ),

    transaction<T>(fn: (tx: StoreTx) => Promise<T>, txOptions: TransactionOptions = {}): Promise<T> {
      const committed: Array<() => void> = [];
      return operation(() => {
        const held = heldForCommit();
        return driver
          .transaction(
            async (conn) => {
              const ctx: TxContext = { resource: driver.resource, open: true, holding: true };
              const tx = txHandle(guarded(conn, ctx), committed, held);
              try {
                return await activeTx.run(ctx, () => fn(tx));
              } finally {
                ctx.open = false;
              }
            },
            { ...txOptions, last: held.last },
          )
          .then((result) => {
            runAfterCommit(committed);
            return result;
          });
      });
    },

    lazyTransaction<T>(
      fn: (tx: StoreTx) => Promise<T>,
      txOptions: LazyTransactionOptions = {},
    ): Promise<{ value: T; opened: boolean }> {
      return operation(async () => {
        // `fn` runs in a transaction context from the start, so the store refuses calls made
        // from inside it (TRANSACTION_NESTED) whether or not the transaction opened.
        const ctx: TxContext = { resource: driver.resource, open: true, holding: false };
        const committed: Array<() => void> = [];
        // How fn ended, for an opened transaction to commit or roll back on (made when it opens:
        // most bus handlers never open one).
        let finish: { resolve: () => void; reject: (e: unknown) => void } | undefined;

        let opening: Promise<SqlExecutor> | undefined;
        let done: Promise<void> | undefined;
        // Set when the transaction failed before fn settled (the database, first's check, onOpen).
        let openFailure: { error: unknown } | undefined;
        const begin = () =>
          (opening ??= new Promise<SqlExecutor>((resolveOpen, rejectOpen) => {
            ctx.holding = true;
            const fnSettled = new Promise<void>((resolve, reject) => (finish = { resolve, reject }));
            fnSettled.catch(() => undefined); // observed by the transaction below
            const first = txOptions.first;
            const held = heldForCommit();
            done = driver.transaction(
              async (conn, opened) => {
                // Open until the transaction ends (beforeCommit runs after fn's handle closed).
                const connCtx: TxContext = { resource: driver.resource, open: true, holding: true };
                const live = guarded(conn, connCtx);
                try {
                  if (first) {
                    first.check((opened ?? (await run(live, dialect, first.statement, PREPARED))).rows);
                  }
                  if (txOptions.onOpen) await txOptions.onOpen(txHandle(live, committed, held));
                  resolveOpen(live);
                  await fnSettled; // rejects (rolls back) when fn failed
                  if (txOptions.beforeCommit) {
                    await txOptions.beforeCommit(txHandle(live, committed, held));
                  }
                } finally {
                  connCtx.open = false;
                }
              },
              { ...txOptions, first: first?.statement, last: held.last },
            );
            done.catch((e: unknown) => {
              openFailure ??= { error: e };
              // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- the driver's own error, passed through
              rejectOpen(e);
            });
          }));
        const lazy: SqlExecutor = {
          query: async <Row>(text: string, params: readonly unknown[] = [], queryOptions?: QueryOptions) => {
            if (!ctx.open) return guarded(undefined, ctx).query<Row>(text, params);
            return (await begin()).query<Row>(text, params, queryOptions);
          },
        };
        let value: T;
        try {
          value = await activeTx.run(ctx, () => fn(txHandle(lazy, committed)));
        } catch (e) {
          ctx.open = false;
          const failedOpening = openFailure;
          finish?.reject(e);
          await done?.catch(() => undefined);
          throw failedOpening ? failedOpening.error : e;
        }
        ctx.open = false;
        if (!opening) return { value, opened: false };
        finish?.resolve();
        await done; // the commit, or why the transaction failed (onOpen, beforeCommit, COMMIT)
        runAfterCommit(committed);
        return { value, opened: true };
      });
    },
  };
  holdingChecks.set(store, () => {
    const ctx = activeTx.getStore();
    return ctx !== undefined && ctx.open && ctx.holding && ctx.resource === driver.resource;
  });
  return store;
}
