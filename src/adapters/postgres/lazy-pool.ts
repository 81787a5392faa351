import pg from "pg";

/**
 * A `pg.Pool` made on first use (from `url`, `PATCHBAY_PG_URL` or libpq's variables), or the
 * caller's own pool; `end()` ends only a pool made here.
 */
export function lazyPool(options: { url?: string | undefined; pool?: pg.Pool | undefined }, max: number) {
  let pool: pg.Pool | undefined;
  return {
    get(): pg.Pool {
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
