import type { Clock } from "../core/clock.js";
import type { Logger } from "../core/logger.js";
import type { SqlExecutor } from "./contracts.js";
import { int, run, type SqlDialect } from "./dialect.js";
import { MigrationError } from "./errors.js";
import { raw, sql } from "./sql.js";

/** One numbered schema change. Versions start at 1 and grow by one; a shipped migration never changes. */
export interface Migration {
  version: number;
  /** Short kebab-case name; recorded, and checked against the database on every open. */
  name: string;
  /** DDL, possibly several statements. Runs in one transaction with the version record. */
  sql: string;
}

/** A transaction that also executes multi-statement DDL. */
export interface MigrationTx extends SqlExecutor {
  exec(ddl: string): Promise<void>;
}

/**
 * What an adapter gives the runner: a transaction holding the cross-process migration lock
 * (PostgreSQL: an advisory transaction lock; SQLite: `BEGIN IMMEDIATE`), in which the
 * migrations table already exists.
 */
export interface MigrationHost {
  readonly dialect: SqlDialect;
  withMigrationLock<T>(fn: (tx: MigrationTx) => Promise<T>): Promise<T>;
}

/** What {@link migrate} did. */
export interface MigrationReport {
  from: number;
  to: number;
  applied: Array<{ version: number; name: string }>;
}

/** Checks a migration list is numbered 1..n without gaps. Adapter authors call it at load time. */
export function assertMigrationList(migrations: readonly Migration[]): void {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) {
      throw new Error(`migration list is not numbered 1..n: position ${i} has version ${m.version}`);
    }
  });
}

/** Migrations recorded in the database, oldest first. */
export async function appliedMigrations(tx: SqlExecutor, dialect: SqlDialect) {
  const t = raw(dialect.table("migrations"));
  const { rows } = await run<{ version: unknown; name: string }>(
    tx,
    dialect,
    sql`SELECT version, name FROM ${t} ORDER BY version`,
  );
  return rows.map((r) => ({ version: int(r.version), name: r.name }));
}

function compare(applied: Array<{ version: number; name: string }>, known: readonly Migration[]): number {
  const current = applied.at(-1)?.version ?? 0;
  const newest = known.at(-1)?.version ?? 0;
  if (current > newest) {
    throw new MigrationError(
      "SCHEMA_TOO_NEW",
      `the database schema is at version ${current}, newer than the ${newest} this version of Patchbay knows; upgrade Patchbay (or point it at another database)`,
      current,
      newest,
    );
  }
  for (const a of applied) {
    const k = known[a.version - 1];
    if (k?.name !== a.name) {
      throw new MigrationError(
        "MIGRATION_MISMATCH",
        `migration ${a.version} is recorded as ${JSON.stringify(a.name)} but this code calls it ${JSON.stringify(k?.name)}; the database was migrated by a different build`,
        current,
        newest,
      );
    }
  }
  return current;
}

/**
 * Applies pending migrations, each in its own transaction under the host's migration lock.
 * Safe to run from several processes at once: each migration is applied exactly once, and a
 * process that waited for the lock re-reads what the others applied.
 */
export async function migrate(
  host: MigrationHost,
  migrations: readonly Migration[],
  deps: { clock: Clock; logger: Logger },
): Promise<MigrationReport> {
  const report: MigrationReport = { from: -1, to: 0, applied: [] };
  const t = raw(host.dialect.table("migrations"));
  for (;;) {
    const next = await host.withMigrationLock(async (tx) => {
      const current = compare(await appliedMigrations(tx, host.dialect), migrations);
      if (report.from < 0) report.from = current;
      report.to = current;
      const pending = migrations[current];
      if (!pending) return undefined;
      try {
        await tx.exec(pending.sql);
      } catch (cause) {
        throw new MigrationError(
          "MIGRATION_FAILED",
          `migration ${pending.version} (${pending.name}) failed; nothing of it was applied: ${(cause as Error).message}`,
          current,
          migrations.length,
          { cause },
        );
      }
      await run(
        tx,
        host.dialect,
        sql`INSERT INTO ${t} (version, name, applied_at) VALUES (${pending.version}, ${pending.name}, ${deps.clock.now()})`,
      );
      return pending;
    });
    if (!next) return report;
    deps.logger.info({ version: next.version, name: next.name }, "patchbay: applied migration");
    report.applied.push({ version: next.version, name: next.name });
    report.to = next.version;
  }
}

/** Reads the schema version and checks it against `migrations` without changing anything. */
export async function schemaVersion(
  host: MigrationHost,
  migrations: readonly Migration[],
  options: { requireCurrent: boolean },
): Promise<number> {
  const current = await host.withMigrationLock(async (tx) =>
    compare(await appliedMigrations(tx, host.dialect), migrations),
  );
  const newest = migrations.length;
  if (options.requireCurrent && current < newest) {
    throw new MigrationError(
      "SCHEMA_OUTDATED",
      `the database schema is at version ${current} but this code needs ${newest}; run migrations (open the store with migrate: true, or \`patchbay migrate\`)`,
      current,
      newest,
    );
  }
  return current;
}
