import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { parseArgs, type ParseArgsConfig } from "node:util";
import { toMs } from "../core/duration.js";
import { InvalidArgumentError } from "../core/errors.js";
import type { SqlStore, SqlStoreOptions } from "../store/sql-store.js";
import { openStore } from "./open-store.js";

/** Flags every command understands. */
export interface GlobalFlags {
  /** SQLite file. */
  sqlite?: string | undefined;
  /** PostgreSQL URL. */
  pg?: string | undefined;
  /** MariaDB/MySQL URL (`--store mysql://…`). */
  mysql?: string | undefined;
  /** PostgreSQL schema of Patchbay's tables. */
  schema?: string | undefined;
  /** A config module exporting the app's Patchbay objects (`store`, `bus`, `pipelines`, ...). */
  config?: string | undefined;
  /** The store was named on the line (`--sqlite`, `--pg`, `--store`): it wins over the config's. */
  explicitStore: boolean;
  json: boolean;
}

/** What a command's flags parse to: strings for valued flags, booleans for switches. */
export type FlagValues = Record<string, string | boolean | undefined>;

/** What a command may use. */
export interface CommandContext {
  flags: GlobalFlags;
  /** The command's own flags and the global ones, parsed strictly (unknown flags never get here). */
  values: FlagValues;
  /** Positionals after the command name. */
  args: string[];
  out: (text: string) => void;
  err: (text: string) => void;
  /**
   * The store the flags (or environment) choose; the caller closes it. A SQLite file that does
   * not exist is refused (`INVALID_ARGUMENT`) unless the command creates stores (`start`,
   * `migrate`): a mistyped path must not leave an empty database behind.
   */
  store(options?: SqlStoreOptions): Promise<SqlStore>;
}

/** Option specs of `node:util` `parseArgs`. */
export type OptionSpecs = NonNullable<ParseArgsConfig["options"]>;

/** One `patchbay <name>` command. Resolves with the exit code. */
export interface CliCommand {
  name: string;
  /** One line for the help. */
  summary: string;
  /** Its help, printed for `patchbay <name> --help` (and `-h`) wherever they are on the line. */
  usage: string;
  /** Its own flags (the global ones are added). Any other flag is refused with exit code 2. */
  options: OptionSpecs;
  /** Whether it may create the SQLite file (only `start` and `migrate`). */
  createsStore?: boolean;
  /** At most this many positionals after the name; more are refused. Default: any. */
  maxArgs?: number;
  run(ctx: CommandContext): Promise<number>;
}

/** The store chosen by the flags: `--pg`, else `PATCHBAY_PG_URL` unless `--sqlite`, else SQLite. */
export function storeFromFlags(
  flags: GlobalFlags,
  options: SqlStoreOptions = {},
  create = true,
): Promise<SqlStore> {
  // `--store sqlite:` names no file: the adapter would open (and create) the default one.
  if (flags.sqlite !== undefined && flags.sqlite.trim() === "") {
    return Promise.reject(
      new InvalidArgumentError("--store sqlite: needs a file (sqlite:path/to/patchbay.db)", "--store"),
    );
  }
  const choice = {
    sqliteFile: flags.sqlite ?? (process.env.PATCHBAY_SQLITE_FILE || undefined),
    pgUrl: flags.pg ?? (flags.sqlite || flags.mysql ? undefined : process.env.PATCHBAY_PG_URL),
    mysqlUrl: flags.mysql,
    schema: flags.schema,
  };
  if (!create && !choice.pgUrl && !choice.mysqlUrl) {
    const file = resolve(choice.sqliteFile ?? ".patchbay/patchbay.db");
    if (choice.sqliteFile !== ":memory:" && !existsSync(file)) {
      return Promise.reject(
        new InvalidArgumentError(
          `SQLite file ${file} does not exist (check --sqlite; \`patchbay migrate\` creates it)`,
          "--sqlite",
        ),
      );
    }
  }
  // Only the commands that create stores may create Patchbay's tables: elsewhere a mistyped
  // --schema (or database) must not come up as an empty store answering "nothing there".
  return openStore(choice, create ? options : { create: false, ...options });
}

/** Flags every command accepts anywhere on the line (so their values are never taken for positionals). */
export const GLOBAL_OPTIONS = {
  store: { type: "string" },
  sqlite: { type: "string" },
  pg: { type: "string" },
  schema: { type: "string" },
  config: { type: "string" },
  json: { type: "boolean", default: false },
  help: { type: "boolean", short: "h", default: false },
  version: { type: "boolean", short: "v", default: false },
} as const satisfies OptionSpecs;

/** Levenshtein distance, for "did you mean". */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const next = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = row[j]!;
      row[j] = next;
    }
  }
  return row[b.length]!;
}

/** The known name closest to `name`, when it is close enough to be a typo. */
export function closest(name: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const k of known) {
    const d = distance(name, k);
    if (d < bestDistance) [best, bestDistance] = [k, d];
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(best.length / 3)) ? best : undefined;
}

/**
 * Parses a command's line strictly, its own flags together with the global ones, so `patchbay dlq
 * list --sqlite f.db --group g` works whatever the order. An unknown flag (named with the closest
 * known one), a flag missing its value, or an empty value is an {@link InvalidArgumentError}.
 */
export function parseCommandArgs(
  argv: string[],
  options: OptionSpecs,
): { values: FlagValues; positionals: string[] } {
  const all: OptionSpecs = { ...GLOBAL_OPTIONS, ...options };
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: all,
    });
    for (const [name, value] of Object.entries(values)) {
      if (value === "") throw new InvalidArgumentError(`option --${name} needs a value`, `--${name}`);
    }
    return { values: values as FlagValues, positionals };
  } catch (e) {
    const code = (e as { code?: string }).code;
    const message = (e as Error).message;
    if (code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") {
      const flag = /'(-[^']*)'/.exec(message)?.[1] ?? "?";
      const name = flag.replace(/^-+/, "").split("=")[0]!;
      const guess = closest(name, Object.keys(all));
      throw new InvalidArgumentError(
        `unknown option ${flag}${guess ? ` (did you mean --${guess}?)` : ""}`,
        flag,
      );
    }
    if (code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE") {
      const flag = /'(--?[\w-]+)/.exec(message)?.[1] ?? "?";
      const spec = all[flag.replace(/^-+/, "")];
      throw new InvalidArgumentError(
        spec?.type === "boolean" ? `option ${flag} takes no value` : `option ${flag} needs a value`,
        flag,
      );
    }
    throw e;
  }
}

/** `--limit 20`: a positive whole number, or the default when absent. */
export function positiveInt(values: FlagValues, name: string, fallback: number): number {
  const value = values[name];
  if (value === undefined) return fallback;
  const n = typeof value === "string" && /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new InvalidArgumentError(
      `--${name} must be a positive whole number, got ${JSON.stringify(value)}`,
      `--${name}`,
    );
  }
  return n;
}

/** `--rate-limit 0.5`: a positive number, or the default when absent. */
export function positiveNumber(values: FlagValues, name: string, fallback: number): number {
  const value = values[name];
  if (value === undefined) return fallback;
  const n = typeof value === "string" && /^\d+(\.\d+)?$/.test(value) ? Number(value) : NaN;
  if (!(n > 0)) {
    throw new InvalidArgumentError(
      `--${name} must be a positive number, got ${JSON.stringify(value)}`,
      `--${name}`,
    );
  }
  return n;
}

/** A string flag's value, or `undefined`. */
export const str = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);

/**
 * A time flag (`--since 2d`, `--before 2026-01-31T12:00:00Z`): a duration back from `now` with
 * its unit, or an ISO date-time with an offset; `undefined` when absent. Anything else — a time
 * without an offset (read in the machine's zone, so the same line selects other rows elsewhere),
 * a bare number, a free-form date — is an {@link InvalidArgumentError}.
 */
export function timeFlag(values: FlagValues, name: string, now: number): number | undefined {
  const value = values[name];
  if (value === undefined) return undefined;
  const text = typeof value === "string" ? value.trim() : "";
  if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/i.test(text)) {
    const at = Date.parse(text);
    if (Number.isSafeInteger(at)) return at;
  } else if (/^(\d+(\.\d+)?(ms|s|m|h|d|w))+$/.test(text)) {
    try {
      const at = now - toMs(text, `--${name}`);
      if (Number.isSafeInteger(at)) return at;
    } catch {
      // too large: refused below
    }
  }
  throw new InvalidArgumentError(
    `--${name} must be a duration back from now (30m, 1h, 2d) or an ISO date with an offset (2026-01-31T12:00:00Z), got ${JSON.stringify(value)}`,
    `--${name}`,
  );
}
