import { loadPg, type PgPoolLike } from "./load.js";

/**
 * A `pg.Pool` made on first use (from `url`, `PATCHBAY_PG_URL` or libpq's variables), or the
 * caller's own pool; `end()` ends only a pool made here. `pg` is imported by the first `get()`
 * (also with the caller's pool: the sync source reads `pg`'s type parsers).
 */
export function lazyPool(options: { url?: string | undefined; pool?: PgPoolLike | undefined }, max: number) {
  let pool: PgPoolLike | undefined;
  return {
    async get(): Promise<PgPoolLike> {
      const pg = await loadPg();
      if (!pool) {
        pool =
          options.pool ??
          new pg.Pool({
            connectionString: options.url ?? process.env.PATCHBAY_PG_URL,
            max,
            allowExitOnIdle: true,
          });
        // An idle client losing its connection must not crash the process; the next query reconnects.
        pool.on("error", () => undefined);
      }
      return pool;
    },
    async end(): Promise<void> {
      const p = pool;
      pool = undefined;
      if (p && !options.pool) await p.end();
    },
  };
}
