import { readFileSync } from "node:fs";
import type { SqlStore } from "../../store/sql-store.js";
import type { CliCommand, CommandContext } from "../command.js";

export function version(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as {
    version: string;
  };
  return pkg.version;
}

async function report(
  ctx: CommandContext,
  store: SqlStore,
  applied?: Array<{ version: number; name: string }>,
): Promise<boolean> {
  const health = await store.health();
  if (ctx.flags.json) {
    ctx.out(JSON.stringify({ ...health, applied: applied ?? [] }));
    return health.ok;
  }
  const keys = health.ok ? (await store.state.list("")).length : 0;
  const appliedText = applied
    ? `  (${applied.length === 0 ? "nothing to apply" : `applied ${applied.map((m) => `${m.version}:${m.name}`).join(", ")}`})`
    : "";
  const lines = [
    `Patchbay ${version()}`,
    `  store     ${health.dialect}  ${health.location}`,
    `  schema    version ${health.schemaVersion} of ${health.knownSchemaVersion}${appliedText}`,
    `  health    ${health.ok ? "ok" : `FAILING: ${health.error}`}  (${health.latencyMs} ms round trip)`,
  ];
  if (health.ok) lines.push(`  state     ${keys} checkpoint key${keys === 1 ? "" : "s"}`);
  ctx.out(lines.join("\n"));
  return health.ok;
}

const migrateCommand = (name: string, summary: string): CliCommand => ({
  name,
  summary,
  usage: `Usage: patchbay ${name} [--sqlite <file> | --pg <url> | --store <url>] [--schema <name>] [--json]

  ${summary}; creates the SQLite file when it does not exist.`,
  options: {},
  createsStore: true,
  maxArgs: 0,
  async run(ctx) {
    const store = await ctx.store({ migrate: false });
    try {
      const { applied } = await store.migrate();
      return (await report(ctx, store, applied)) ? 0 : 1;
    } finally {
      await store.close();
    }
  },
});

export const startCommand = migrateCommand(
  "start",
  "open the store (embedded SQLite by default), apply migrations, print its health",
);
export const migrateCommandDef = migrateCommand(
  "migrate",
  "apply pending migrations and report what was applied",
);

export const healthCommand: CliCommand = {
  name: "health",
  summary: "report the store's health without changing it (exit 1 when unhealthy)",
  usage: `Usage: patchbay health [--sqlite <file> | --pg <url> | --store <url>] [--schema <name>] [--json]

  Reports the store's health and schema version; changes nothing and creates no file (a SQLite
  file that does not exist is an error). Exit code 1 when unhealthy.`,
  options: {},
  maxArgs: 0,
  async run(ctx) {
    const store = await ctx.store({ migrate: false });
    try {
      return (await report(ctx, store)) ? 0 : 1;
    } finally {
      await store.close();
    }
  },
};
