import { loadPg, type PgPoolLike } from "./load.js";

/**
 * The session setting of every connection the sync adapters open themselves: time zone UTC,
 * whatever the server's, the database's or the role's default. A zone-less date/time written into
 * a `timestamptz` column is then read as UTC (the convention of every sync path), and
 * `timestamptz` values are written as `…+00`, never with a historical offset like `-04:56:02`.
 */
export const UTC_SESSION = "-c TimeZone=UTC";

/**
 * The pool's connection settings with `extra` startup options added to any `options` the URL or
 * `PGOPTIONS` already give (a URL's `options` would otherwise replace ours; ours come last, so
 * they win over the same setting given there).
 */
export function withStartupOptions(url: string | undefined, extra: string): Record<string, unknown> {
  let parsed: URL | undefined;
  try {
    parsed = url === undefined ? undefined : new URL(url);
  } catch {
    // Not a URL (a libpq key=value string): pg parses it; our options go beside it.
  }
  const given = parsed?.searchParams.get("options") ?? process.env.PGOPTIONS;
  const options = [given, extra].filter(Boolean).join(" ");
  if (!parsed?.searchParams.has("options")) return { ...(url ? { connectionString: url } : {}), options };
  parsed.searchParams.set("options", options);
  return { connectionString: parsed.toString(), options };
}

/**
 * A `pg.Pool` made on first use (from `url`, `PATCHBAY_PG_URL` or libpq's variables), or the
 * caller's own pool (`own` false: its sessions are as the caller made them); `end()` ends only a
 * pool made here. `utc`: the pool made here starts its sessions in UTC ({@link UTC_SESSION}).
 */
export function lazyPool(
  options: { url?: string | undefined; pool?: PgPoolLike | undefined },
  max: number,
  utc = false,
) {
  let pool: PgPoolLike | undefined;
  return {
    /** The pool was made here (so with `utc`, its sessions are in UTC). */
    own: options.pool === undefined,
    async get(): Promise<PgPoolLike> {
      const pg = await loadPg(); // also with the caller's pool: the sync source reads pg's type parsers
      if (!pool) {
        pool =
          options.pool ??
          new pg.Pool({
            ...(utc
              ? withStartupOptions(options.url ?? process.env.PATCHBAY_PG_URL, UTC_SESSION)
              : { connectionString: options.url ?? process.env.PATCHBAY_PG_URL }),
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
