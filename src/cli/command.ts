import { parseArgs, type ParseArgsConfig } from "node:util";
import type { SqlStore, SqlStoreOptions } from "../store/sql-store.js";
import { openStore } from "./open-store.js";

/** Flags every command understands. */
export interface GlobalFlags {
  /** SQLite file. */
  sqlite?: string | undefined;
  /** PostgreSQL URL. */
  pg?: string | undefined;
  /** PostgreSQL schema of Patchbay's tables. */
  schema?: string | undefined;
  /** A config module exporting the app's Patchbay objects (`store`, `bus`, `pipelines`, ...). */
  config?: string | undefined;
  json: boolean;
}

/** What a command may use. */
export interface CommandContext {
  flags: GlobalFlags;
  /** Positionals after the command name. */
  args: string[];
  /** Raw argv after the command name, for commands that parse their own flags. */
  argv: string[];
  out: (text: string) => void;
  err: (text: string) => void;
  /** The store the flags (or environment) choose; the caller closes it. */
  store(options?: SqlStoreOptions): Promise<SqlStore>;
}

/** One `patchbay <name>` command. Resolves with the exit code. */
export interface CliCommand {
  name: string;
  /** One line for the help. */
  summary: string;
  run(ctx: CommandContext): Promise<number>;
}

/** The store chosen by the flags: `--pg`, else `PATCHBAY_PG_URL` unless `--sqlite`, else SQLite. */
export function storeFromFlags(flags: GlobalFlags, options: SqlStoreOptions = {}): Promise<SqlStore> {
  return openStore(
    {
      sqliteFile: flags.sqlite ?? process.env.PATCHBAY_SQLITE_FILE,
      pgUrl: flags.pg ?? (flags.sqlite ? undefined : process.env.PATCHBAY_PG_URL),
      schema: flags.schema,
    },
    options,
  );
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
} as const satisfies ParseArgsConfig["options"];

/**
 * Parses a command's own flags together with the global ones: `patchbay dlq list --sqlite f.db
 * --group g` works whatever the order.
 */
export function parseCommandArgs(
  argv: string[],
  options: NonNullable<ParseArgsConfig["options"]>,
): { values: Record<string, string | boolean | undefined>; positionals: string[] } {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: false,
    options: { ...GLOBAL_OPTIONS, ...options },
  });
  return { values: values, positionals };
}
