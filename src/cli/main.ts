#!/usr/bin/env node
/**
 * The `patchbay` command: global flags, then a command from `commands/` (each in its own file).
 * Parsing is strict here, once for every command: `--help`/`-h` anywhere prints the command's
 * help and touches nothing; an unknown flag, a flag without its value or a bad value is a usage
 * error (exit 2); a command's other failures exit 1.
 */
import { parseArgs } from "node:util";
import { isPatchbayError } from "../core/errors.js";
import {
  closest,
  GLOBAL_OPTIONS,
  parseCommandArgs,
  storeFromFlags,
  str,
  type GlobalFlags,
} from "./command.js";
import { commands } from "./commands/index.js";
import { version } from "./commands/store.js";

function help(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return `Usage: patchbay <command> [options]

Commands:
${commands.map((c) => `  ${c.name.padEnd(width + 2)} ${c.summary}`).join("\n")}

Options:
  --store <url>      the store: postgres://…, mysql://… or a SQLite file (sqlite:path or a path)
  --sqlite <file>    SQLite file (default .patchbay/patchbay.db, or PATCHBAY_SQLITE_FILE)
  --pg <url>         use PostgreSQL instead (default: PATCHBAY_PG_URL when set)
  --schema <name>    PostgreSQL schema for Patchbay's tables (default patchbay)
  --config <file>    module exporting your Patchbay objects (default patchbay.config.js);
                     a store named by --store/--sqlite/--pg wins over the config's
  --json             machine-readable output
  -h, --help         this help (also after a command: patchbay <command> --help)
  -v, --version      print the version

Exit codes: 0 done, 1 failed or unhealthy, 2 usage error.
`;
}

const GLOBAL_HELP = `
Global options: --store <url>, --sqlite <file>, --pg <url>, --schema <name>, --config <file>, --json
(patchbay --help for details)`;

// Output piped into `head` closes early: later writes fail with EPIPE. Stop writing, quietly;
// the command itself finishes what it started.
let stdoutOpen = true;
process.stdout.on("error", (e: NodeJS.ErrnoException) => {
  if (e.code === "EPIPE" || e.code === "ERR_STREAM_DESTROYED") stdoutOpen = false;
  else throw e;
});
const write = (text: string) => {
  if (stdoutOpen) process.stdout.write(text);
};

async function main(argv: string[]): Promise<number> {
  // Everything before `--` is options and positionals; `--help` anywhere there wins.
  const end = argv.includes("--") ? argv.indexOf("--") : argv.length;
  const wantsHelp = argv.slice(0, end).some((a) => a === "--help" || a === "-h");
  const { positionals, tokens } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: false,
    tokens: true,
    options: GLOBAL_OPTIONS,
  });
  const name = positionals[0];
  const command = commands.find((c) => c.name === name);
  if (wantsHelp) {
    write(command ? `${command.usage}\n${GLOBAL_HELP}\n` : help());
    return 0;
  }
  if (argv.slice(0, end).some((a) => a === "--version" || a === "-v")) {
    write(version() + "\n");
    return 0;
  }
  if (!name) {
    process.stderr.write(help());
    return 2;
  }
  if (!command) {
    const guess = closest(
      name,
      commands.map((c) => c.name),
    );
    process.stderr.write(
      `patchbay: unknown command ${JSON.stringify(name)}${guess ? ` (did you mean ${guess}?)` : ""}\n\n${help()}`,
    );
    return 2;
  }
  const at = tokens.find((t) => t.kind === "positional" && t.value === name)?.index ?? 0;
  const { values, positionals: rest } = parseCommandArgs(
    [...argv.slice(0, at), ...argv.slice(at + 1)],
    command.options,
  );
  if (command.maxArgs !== undefined && rest.length > command.maxArgs) {
    process.stderr.write(
      `patchbay ${name}: unexpected argument ${JSON.stringify(rest[command.maxArgs])}\n\n${command.usage}\n`,
    );
    return 2;
  }
  // --store <url>: a postgres:// or mysql:// URL, or a SQLite file (a path or sqlite:path).
  const storeUrl = str(values.store);
  const storeIsPg = storeUrl !== undefined && /^postgres(ql)?:\/\//.test(storeUrl);
  const storeIsMysql = storeUrl !== undefined && /^mysql:\/\//.test(storeUrl);
  const flags: GlobalFlags = {
    sqlite:
      str(values.sqlite) ??
      (storeUrl !== undefined && !storeIsPg && !storeIsMysql ? storeUrl.replace(/^sqlite:/, "") : undefined),
    pg: str(values.pg) ?? (storeIsPg ? storeUrl : undefined),
    mysql: storeIsMysql ? storeUrl : undefined,
    schema: str(values.schema),
    config: str(values.config),
    explicitStore: storeUrl !== undefined || values.sqlite !== undefined || values.pg !== undefined,
    json: values.json === true,
  };
  return command.run({
    flags,
    values,
    args: rest,
    out: (text) => write(text + "\n"),
    err: (text) => process.stderr.write(text + "\n"),
    store: (options) => storeFromFlags(flags, options, command.createsStore === true),
  });
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    const code = isPatchbayError(e) ? ` [${e.code}]` : "";
    process.stderr.write(`patchbay: ${(e as Error).message ?? String(e)}${code}\n`);
    process.exitCode = isPatchbayError(e, "INVALID_ARGUMENT") ? 2 : 1;
  },
);
