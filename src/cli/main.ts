#!/usr/bin/env node
/**
 * The `patchbay` command. Today: open a store, migrate it, report its health.
 * Later issues add `dlq`, `saga`, `sync` and `webhooks` subcommands.
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { isPatchbayError } from "../core/errors.js";
import type { SqlStore } from "../store/sql-store.js";
import { openStore, type StoreChoice } from "./open-store.js";

const HELP = `Usage: patchbay <command> [options]

Commands:
  start          open the store (embedded SQLite by default), apply migrations, print its health
  migrate        apply pending migrations and report what was applied
  health         report the store's health without changing it (exit 1 when unhealthy)

Options:
  --sqlite <file>    SQLite file (default .patchbay/patchbay.db, or PATCHBAY_SQLITE_FILE)
  --pg <url>         use PostgreSQL instead (default: PATCHBAY_PG_URL when set)
  --schema <name>    PostgreSQL schema for Patchbay's tables (default patchbay)
  --json             machine-readable output
  -h, --help         this help
  -v, --version      print the version
`;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
    version: string;
  };
  return pkg.version;
}

async function report(store: SqlStore, json: boolean, applied?: Array<{ version: number; name: string }>) {
  const health = await store.health();
  if (json) {
    process.stdout.write(JSON.stringify({ ...health, applied: applied ?? [] }) + "\n");
    return health.ok;
  }
  const keys = health.ok ? (await store.state.list("")).length : 0;
  const lines = [
    `Patchbay ${version()}`,
    `  store     ${health.dialect}  ${health.location}`,
    `  schema    version ${health.schemaVersion} of ${health.knownSchemaVersion}` +
      (applied
        ? `  (${applied.length === 0 ? "nothing to apply" : `applied ${applied.map((m) => `${m.version}:${m.name}`).join(", ")}`})`
        : ""),
    `  health    ${health.ok ? "ok" : `FAILING: ${health.error}`}  (${health.latencyMs} ms round trip)`,
  ];
  if (health.ok) lines.push(`  state     ${keys} checkpoint key${keys === 1 ? "" : "s"}`);
  process.stdout.write(lines.join("\n") + "\n");
  return health.ok;
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      sqlite: { type: "string" },
      pg: { type: "string" },
      schema: { type: "string" },
      json: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
      version: { type: "boolean", short: "v", default: false },
    },
  });
  if (values.version) {
    process.stdout.write(version() + "\n");
    return 0;
  }
  const command = positionals[0];
  if (values.help || !command) {
    process.stdout.write(HELP);
    return values.help ? 0 : 2;
  }
  const choice: StoreChoice = {
    sqliteFile: values.sqlite ?? process.env.PATCHBAY_SQLITE_FILE,
    pgUrl: values.pg ?? (values.sqlite ? undefined : process.env.PATCHBAY_PG_URL),
    schema: values.schema,
  };
  switch (command) {
    case "start":
    case "migrate": {
      const store = await openStore(choice, { migrate: false });
      try {
        const { applied } = await store.migrate();
        return (await report(store, values.json, applied)) ? 0 : 1;
      } finally {
        await store.close();
      }
    }
    case "health": {
      const store = await openStore(choice, { migrate: false });
      try {
        return (await report(store, values.json)) ? 0 : 1;
      } finally {
        await store.close();
      }
    }
    default:
      process.stderr.write(`patchbay: unknown command ${JSON.stringify(command)}\n\n${HELP}`);
      return 2;
  }
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
