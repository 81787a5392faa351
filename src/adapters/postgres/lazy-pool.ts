import { loadPg, type PgPoolLike } from "./load.js";

/**
 * How a session writes values as text, whatever the server's, the database's (`ALTER DATABASE …
 * SET`) or the role's defaults: dates ISO (`DateStyle SQL, DMY` writes `31/12/0999 …`, which a
 * reader misreads), intervals in PostgreSQL's style, doubles exact (`extra_float_digits = 0`
 * rounds 1.7976931348623157e308 out of range), bytes in hex. The sync adapters' and CDC's own
 * sessions all start with these.
 */
export const OUTPUT_SETTINGS: Readonly<Record<string, string>> = {
  DateStyle: "ISO",
  IntervalStyle: "postgres",
  extra_float_digits: "3",
  bytea_output: "hex",
};

/**
 * {@link OUTPUT_SETTINGS} and time zone UTC: the sessions of the sync destination and of CDC. A
 * zone-less date/time written into a `timestamptz` column is then read as UTC (the convention of
 * every sync path), and `timestamptz` values are written as `…+00`, never with a historical
 * offset like `-04:56:02`. (The sync source keeps the server's zone: see `postgresSource`.)
 */
export const UTC_OUTPUT_SETTINGS: Readonly<Record<string, string>> = { TimeZone: "UTC", ...OUTPUT_SETTINGS };

/** Settings as libpq startup options (`-c name=value …`). */
export const startupOptions = (settings: Readonly<Record<string, string>>) =>
  Object.entries(settings)
    .map(([name, value]) => `-c ${name}=${value}`)
    .join(" ");

/** Settings as `SET LOCAL` statements, for a session that is not ours (in a transaction). */
export const setLocal = (settings: Readonly<Record<string, string>>) =>
  Object.entries(settings)
    .map(([name, value]) => `SET LOCAL ${name} = '${value}'`)
    .join("; ");

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
 * pool made here, whose sessions start with `settings`.
 */
export function lazyPool(
  options: { url?: string | undefined; pool?: PgPoolLike | undefined },
  max: number,
  settings: Readonly<Record<string, string>>,
) {
  let pool: PgPoolLike | undefined;
  return {
    /** The pool was made here (so its sessions start with `settings`). */
    own: options.pool === undefined,
    async get(): Promise<PgPoolLike> {
      const pg = await loadPg(); // also with the caller's pool: the sync source reads pg's type parsers
      if (!pool) {
        pool =
          options.pool ??
          new pg.Pool({
            ...withStartupOptions(options.url ?? process.env.PATCHBAY_PG_URL, startupOptions(settings)),
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
