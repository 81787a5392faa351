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
