import { resolve } from "node:path";
import type { StoreCapabilities } from "../../store/contracts.js";
import type { SqlDialect } from "../../store/dialect.js";
import { sqliteRoles } from "./roles.js";
import type { Migration, MigrationTx } from "../../store/migrations.js";
import { TransactionRolledBackError } from "../../store/errors.js";
import { runFirstAndLast, type StoreDriver } from "../../store/sql-store.js";
import { acquireConnection, releaseConnection, type SqliteConnection } from "./connection.js";
import {
  sqliteBusDeadLetterBytesMigration,
  sqliteBusDeadLetterOrderMigration,
  sqliteBusDeadLetterTransportMigration,
  sqliteBusFreshMigration,
  sqliteBusPausedGroupsMigration,
  sqliteBusMigration,
} from "./bus-schema.js";
import { sqliteSagaCreatedMigration, sqliteSagaMigration } from "./saga-schema.js";
import { sqliteWebhooksMigration } from "./webhooks-schema.js";
import { sqliteMigrations } from "./migrations.js";

/**
 * Every migration of this adapter: the store's own list (core, sync), then each module's, in
 * this fixed order, numbered on from there. A module adds its factory at its slot; shipped
 * entries never move.
 */
const moduleMigrations: Array<(version: number) => Migration> = [
  sqliteBusMigration, // event bus
  sqliteSagaMigration, // sagas
  sqliteWebhooksMigration, // webhooks
  sqliteBusFreshMigration, // event bus: queued messages that skip the inbox check
  sqliteBusDeadLetterBytesMigration, // event bus: dead-letter bodies as bytes
  sqliteBusDeadLetterTransportMigration, // event bus: the transport each dead letter came from
  sqliteBusDeadLetterOrderMigration, // event bus: dead letters indexed in the console's order
  sqliteSagaCreatedMigration, // sagas: instances indexed by creation time
  sqliteBusPausedGroupsMigration, // event bus: consumer groups paused by hand
];
const allMigrations = moduleMigrations.reduce<Migration[]>(
  (list, migration) => [...list, migration(list.length + 1)],
  [...sqliteMigrations],
);

/** Options of the SQLite store. */
export interface SqliteDriverOptions {
  /** Database file; `":memory:"` for a private in-memory database. Default `.patchbay/patchbay.db`. */
  file?: string;
  /** How long a writer waits for another process's write lock before `SQLITE_BUSY`. Default 5000 ms. */
  busyTimeoutMs?: number;
  /**
   * `"full"` (default) syncs every commit to disk: nothing committed is lost, even on power loss.
   * `"normal"` is faster and still survives a process crash, but may lose the last commits on power loss.
   */
  synchronous?: "full" | "normal";
}

export const sqliteDialect: SqlDialect = {
  name: "sqlite",
  placeholders: "question",
  roles: sqliteRoles,
  table: (name) => `"patchbay_${name}"`,
  encodeJson: (value) => JSON.stringify(value),
  decodeJson: (raw) => (typeof raw === "string" ? (JSON.parse(raw) as unknown) : raw),
};

const CAPABILITIES: StoreCapabilities = {
  dialect: "sqlite",
  concurrentWriters: false,
  skipLocked: false,
  notifications: false,
};

/** The SQLite {@link StoreDriver}, on Node.js's built-in `node:sqlite` (nothing to compile). */
export function sqliteDriver(options: SqliteDriverOptions = {}): StoreDriver {
  const file = options.file ?? ".patchbay/patchbay.db";
  const location = file === ":memory:" ? file : resolve(file);
  const settings = {
    busyTimeoutMs: options.busyTimeoutMs ?? 5000,
    synchronous: options.synchronous ?? "full",
  };
  let connection: SqliteConnection | undefined;
  // Stores on one file share a connection, so they share the "inside a transaction" identity too.
  const resource = file === ":memory:" ? Symbol("sqlite :memory:") : `sqlite:${location}`;

  const live = (): SqliteConnection => {
    if (!connection) throw new Error("SQLite store used before connect");
    return connection;
  };

  const transaction = <T>(fn: (tx: MigrationTx) => Promise<T>): Promise<T> => {
    const c = live();
    // SQLite rolls a whole transaction back by itself on some errors (a full disk, I/O, a
    // trigger's RAISE(ROLLBACK)); statements after that would run in autocommit mode, each kept
    // on its own. So every statement checks the transaction is still there, and so does COMMIT.
    let firstFailure: unknown;
    // A promise executor turns the synchronous driver's throw into a rejection.
    const inside = <R>(run: () => R): Promise<R> =>
      new Promise<R>((resolve) => {
        if (!c.inTransaction) throw TransactionRolledBackError.after("SQLite", firstFailure);
        try {
          resolve(run());
        } catch (e) {
          firstFailure ??= e;
          throw e;
        }
      });
    const tx: MigrationTx = {
      query: <Row>(text: string, params: readonly unknown[] = []) =>
        inside(() => c.execute<Row>(text, params)),
      exec: (ddl: string) => inside(() => c.exec(ddl)),
    };
    return c.lock.run(async () => {
      // IMMEDIATE takes the write lock up front, so two processes never both read and then both
      // try to upgrade to writing (which would fail one of them with SQLITE_BUSY mid-transaction).
      await c.executeWaiting("BEGIN IMMEDIATE", []);
      let result: T;
      try {
        result = await fn(tx);
        if (!c.inTransaction) throw TransactionRolledBackError.after("SQLite", firstFailure);
        c.execute("COMMIT", []);
      } catch (e) {
        if (c.inTransaction) c.execute("ROLLBACK", []);
        throw e;
      }
      return result;
    });
  };

  return {
    dialect: sqliteDialect,
    capabilities: CAPABILITIES,
    migrations: allMigrations,
    location,
    resource,

    async connect() {
      if (connection) return;
      const c = acquireConnection(location, settings);
      // Opening is synchronous; the lock keeps it from racing another store's close of the same file.
      await c.lock.run(async () => {
        try {
          await c.open();
        } catch (e) {
          releaseConnection(c);
          throw e;
        }
      });
      connection = c;
    },

    async disconnect() {
      const c = connection;
      connection = undefined;
      if (c) await c.lock.run(() => releaseConnection(c));
    },

    query: <Row>(text: string, params: readonly unknown[]) => {
      const c = live();
      return c.lock.run(() => c.executeWaiting<Row>(text, params));
    },

    transaction: (fn, txOptions) => transaction((tx) => runFirstAndLast(tx, sqliteDialect, txOptions, fn)),

    withMigrationLock: <T>(fn: (tx: MigrationTx) => Promise<T>) =>
      transaction(async (tx) => {
        await tx.exec(
          `CREATE TABLE IF NOT EXISTS "patchbay_migrations" (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`,
        );
        return fn(tx);
      }),
  };
}
