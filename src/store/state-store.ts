import { InvalidArgumentError } from "../core/errors.js";
import type { Clock } from "../core/clock.js";
import type { SqlExecutor, StateEntry, StateStore, Transactor } from "./contracts.js";
import { int, quoteColumn, run, type SqlDialect } from "./dialect.js";
import { StateVersionConflictError } from "./errors.js";
import { raw, sql } from "./sql.js";

interface StateRow {
  key: string;
  value: unknown;
  version: unknown;
  updated_at: unknown;
}

/** Checks a state key: a string of 1–512 characters. */
export function assertStateKey(key: unknown, what = "key"): asserts key is string {
  if (typeof key !== "string" || key.length === 0 || key.length > 512) {
    throw new InvalidArgumentError(`state ${what} must be a string of 1 to 512 characters`, what);
  }
}

/** Checks that a value survives a JSON round trip unchanged in kind (no undefined, functions, NaN). */
export function assertJsonValue(value: unknown, what: string): void {
  const bad = findNonJson(value, what);
  if (bad) throw new InvalidArgumentError(`${bad} is not a JSON value`, what);
}

function findNonJson(value: unknown, path: string, seen = new Set<object>()): string | undefined {
  if (value === null || typeof value === "string" || typeof value === "boolean") return undefined;
  if (typeof value === "number") return Number.isFinite(value) ? undefined : path;
  if (typeof value !== "object") return path;
  if (seen.has(value)) return `${path} (a cycle)`;
  seen.add(value);
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const bad = findNonJson(value[i], `${path}[${i}]`, seen);
      if (bad) return bad;
    }
  } else {
    const proto = Object.getPrototypeOf(value) as unknown;
    if (proto !== Object.prototype && proto !== null) return `${path} (a ${value.constructor.name})`;
    for (const [k, v] of Object.entries(value)) {
      const bad = findNonJson(v, `${path}.${k}`, seen);
      if (bad) return bad;
    }
  }
  seen.delete(value);
  return undefined;
}

/** The {@link StateStore} over any SQL executor (the store itself, or a transaction handle). */
export function createStateStore(
  executor: SqlExecutor & Partial<Transactor>,
  dialect: SqlDialect,
  clock: Clock,
): StateStore {
  const t = raw(dialect.table("state"));
  const kq = quoteColumn(dialect, "key");
  const k = raw(kq);
  const toEntry = <T>(row: StateRow): StateEntry<T> => ({
    key: row.key,
    value: dialect.decodeJson(row.value) as T,
    version: int(row.version),
    updatedAt: int(row.updated_at),
  });

  return {
    async get<T>(key: string) {
      assertStateKey(key);
      const { rows } = await run<StateRow>(
        executor,
        dialect,
        sql`SELECT ${k}, value, version, updated_at FROM ${t} WHERE ${k} = ${key}`,
      );
      return rows[0] ? toEntry<T>(rows[0]) : undefined;
    },

    async set<T>(key: string, value: T, options: { expectedVersion?: number } = {}) {
      assertStateKey(key);
      assertJsonValue(value, "value");
      const now = clock.now();
      const json = dialect.encodeJson(value);
      const expected = options.expectedVersion;
      if (expected !== undefined && (!Number.isInteger(expected) || expected < 0)) {
        throw new InvalidArgumentError("expectedVersion must be an integer >= 0", "expectedVersion");
      }
      // One statement each (or the backend's atomic upsert), so the compare-and-set is atomic on
      // every backend. What was written is known but for the version of an unconditional write.
      const written = (version: number): StateEntry<T> => ({
        key,
        value: JSON.parse(JSON.stringify(value)) as T,
        version,
        updatedAt: now,
      });
      if (expected === undefined) {
        const [row] = await dialect.roles.rows.upsertWhen<{ version: unknown }>(executor, {
          table: t,
          alias: "s",
          columns: `${kq}, value, version, updated_at`,
          row: sql`(${key}, ${json}, 1, ${now})`,
          conflict: kq,
          match: sql`${k} = ${key}`,
          set: sql`value = ${json}, version = s.version + 1, updated_at = ${now}`,
          returning: "version",
          prepare: true, // one text for every write
        });
        if (row) return written(int(row.version));
      } else {
        const { rowCount } = await run(
          executor,
          dialect,
          expected === 0
            ? dialect.roles.rows.insertIgnore(
                t,
                `${kq}, value, version, updated_at`,
                [sql`(${key}, ${json}, 1, ${now})`],
                kq,
              )
            : sql`UPDATE ${t} SET value = ${json}, version = version + 1, updated_at = ${now}
                  WHERE ${k} = ${key} AND version = ${expected}`,
        );
        if (rowCount > 0) return written(expected + 1);
      }
      const current = await this.get(key);
      throw new StateVersionConflictError(key, expected ?? 0, current?.version);
    },

    async delete(key: string) {
      assertStateKey(key);
      const { rowCount } = await run(executor, dialect, sql`DELETE FROM ${t} WHERE ${k} = ${key}`);
      return rowCount > 0;
    },

    async list<T>(prefix: string) {
      if (typeof prefix !== "string") throw new InvalidArgumentError("prefix must be a string", "prefix");
      // Range scan instead of LIKE: no escaping of % and _, and it uses the primary key.
      const { rows } = await run<StateRow>(
        executor,
        dialect,
        prefix === ""
          ? sql`SELECT ${k}, value, version, updated_at FROM ${t} ORDER BY ${k}`
          : sql`SELECT ${k}, value, version, updated_at FROM ${t}
                WHERE ${k} >= ${prefix} AND ${k} < ${prefix + "\u{10FFFF}"} ORDER BY ${k}`,
      );
      return rows.map((row) => toEntry<T>(row));
    },
  };
}
