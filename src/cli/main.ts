#!/usr/bin/env node
/**
 * The `patchbay` command: global flags, then a command from `commands/` (each in its own file).
 */
import { parseArgs } from "node:util";
import { isPatchbayError } from "../core/errors.js";
import { GLOBAL_OPTIONS, storeFromFlags, type GlobalFlags } from "./command.js";
import { commands } from "./commands/index.js";
import { version } from "./commands/store.js";

function help(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return `Usage: patchbay <command> [options]

Commands:
${commands.map((c) => `  ${c.name.padEnd(width + 2)} ${c.summary}`).join("\n")}

Options:
  --store <url>      the store: postgres://… or a SQLite file (sqlite:path or a path)
  --sqlite <file>    SQLite file (default .patchbay/patchbay.db, or PATCHBAY_SQLITE_FILE)
  --pg <url>         use PostgreSQL instead (default: PATCHBAY_PG_URL when set)
  --schema <name>    PostgreSQL schema for Patchbay's tables (default patchbay)
  --config <file>    module exporting your Patchbay objects (default patchbay.config.js)
  --json             machine-readable output
  -h, --help         this help (also after a command: patchbay <command> --help)
  -v, --version      print the version
`;
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals, tokens } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: false,
    tokens: true,
    options: GLOBAL_OPTIONS,
  });
  if (values.version === true) {
    process.stdout.write(version() + "\n");
    return 0;
  }
  const name = positionals[0];
  const command = commands.find((c) => c.name === name);
  if (!name || (values.help === true && !command)) {
    process.stdout.write(help());
    return name || values.help === true ? 0 : 2;
  }
  if (!command) {
    process.stderr.write(`patchbay: unknown command ${JSON.stringify(name)}\n\n${help()}`);
    return 2;
  }
  const str = (v: unknown) => (typeof v === "string" ? v : undefined);
  // --store <url>: a postgres:// URL, or a SQLite file (a path or sqlite:path).
  const storeUrl = str(values.store);
  const storeIsPg = storeUrl !== undefined && /^postgres(ql)?:\/\//.test(storeUrl);
  const flags: GlobalFlags = {
    sqlite:
      str(values.sqlite) ??
      (storeUrl !== undefined && !storeIsPg ? storeUrl.replace(/^sqlite:/, "") : undefined),
    pg: str(values.pg) ?? (storeIsPg ? storeUrl : undefined),
    schema: str(values.schema),
    config: str(values.config),
    json: values.json === true,
  };
  // Everything after the command name, for commands with flags of their own.
  const at = tokens.find((t) => t.kind === "positional" && t.value === name)?.index ?? 0;
  return command.run({
    flags,
    args: positionals.slice(1),
    argv: argv.slice(at + 1),
    out: (text) => process.stdout.write(text + "\n"),
    err: (text) => process.stderr.write(text + "\n"),
    store: (options) => storeFromFlags(flags, options),
  });
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    const code = isPatchbayError(e) ? ` [${e.code}]` : "";
    process.stderr.write(`patchbay: ${(e as Error).message ?? String(e)}${code}\n`);
    process.exitCode = 1;
  },
);
