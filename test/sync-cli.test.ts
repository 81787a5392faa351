/**
 * `patchbay sync run|status|reset` against pipelines defined in a config module, as a user runs
 * it: a real process, a real SQLite database, non-TTY output (plain lines) and `--json`.
 */
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { testRows } from "./conformance/sync.js";
import { sqliteSyncDb, type SyncDb } from "./support/sync-dbs.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const MAIN = join(ROOT, "src/cli/main.ts");

function cli(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const proc = spawn(process.execPath, ["--import", "tsx", MAIN, ...args], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    proc.stdout.on("data", (d: Buffer) => (out += d.toString()));
    proc.stderr.on("data", (d: Buffer) => (err += d.toString()));
    proc.once("exit", (code) => resolve({ code, out, err }));
  });
}

describe("patchbay sync (CLI)", () => {
  let db: SyncDb;
  let config: string;
  beforeEach(async () => {
    db = sqliteSyncDb();
    await db.createTable("src");
    await db.createTable("dst");
    await db.insert("src", testRows(300));
    const dir = db.config.location;
    config = join(dir, "patchbay.config.ts");
    writeFileSync(
      config,
      `import { sqlite, sqliteDestination, sqliteSource } from ${JSON.stringify(join(ROOT, "src/adapters/sqlite/index.ts"))};
import { pipeline } from ${JSON.stringify(join(ROOT, "src/sync/index.ts"))};
const store = sqlite({ file: ${JSON.stringify(join(dir, "cli-store.db"))} });
const data = ${JSON.stringify(join(dir, "data.db"))};
export const pipelines = {
  orders: pipeline("orders", {
    store,
    source: sqliteSource({ file: data, table: "src", cursor: "updated_at", key: "id", safetyLag: 0 }),
    destination: sqliteDestination({ file: data, table: "dst", key: "id", version: "updated_at" }),
    mode: "incremental",
    batchSize: 50,
  }),
};
`,
    );
  });
  afterEach(() => db.cleanup());

  it("runs a pipeline from the config, then shows its status and resets it", async () => {
    const run = await cli(["sync", "run", "orders", "--config", config]);
    expect(run.err).toBe("");
    expect(run.code).toBe(0);
    expect(run.out.trim().split("\n").at(-1)).toMatch(
      /^orders: succeeded in \d+:\d\d {2}read 300, written 300, deleted 0, quarantined 0 \(6 batches, run /,
    );
    expect(await db.rows("dst")).toEqual(await db.rows("src"));

    const one = await cli(["sync", "status", "orders", "--json", "--config", config]);
    const status = JSON.parse(one.out) as {
      runs: Array<{ status: string; rowsRead: number }>;
      checkpoint: unknown;
      running: boolean;
    };
    expect(status.running).toBe(false);
    expect(status.runs).toMatchObject([{ status: "succeeded", rowsRead: 300 }]);
    expect(status.checkpoint).toMatchObject({ v: 1 });

    const all = await cli(["sync", "status", "--config", config]);
    expect(all.out).toMatch(/PIPELINE\s+MODE\s+STATE/);
    expect(all.out).toMatch(/orders\s+incremental\s+idle\s+\S+ \S+\s+succeeded\s+300\s+300\s+0/);

    const reset = await cli(["sync", "reset", "orders", "--config", config]);
    expect(reset.code).toBe(0);
    const again = await cli(["sync", "run", "orders", "--json", "--config", config]);
    expect(JSON.parse(again.out)).toMatchObject({ status: "succeeded", rowsRead: 300, rowsWritten: 0 });
  });

  it("names the known pipelines when asked for an unknown one", async () => {
    const r = await cli(["sync", "run", "nope", "--config", config]);
    expect(r.code).toBe(2);
    expect(r.err).toContain('no pipeline "nope"; known: orders');
  });
});
