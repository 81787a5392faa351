/**
 * The bus as a change data capture destination, against the real PostgreSQL: every insert,
 * update and delete reaches a consumer group once, in commit order per row; a restart resumes
 * with no event published twice (distinct event ids in the outbox == changes made).
 */
import { execFile, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterEach, describe, expect, inject, it } from "vitest";
import { postgresChanges } from "../src/adapters/postgres/index.js";
import { createEventBus, type EventBus } from "../src/bus/bus.js";
import { changeEvents, type ChangeEvents } from "../src/cdc/change-events.js";
import { createMetrics } from "../src/ops/metrics.js";
import { cdcFixture, eventually, cdcSuiteProblem, type CdcFixture } from "./support/cdc.js";

const { postgres: service } = inject("services");
const problem = await cdcSuiteProblem(service);

const MAIN = fileURLToPath(new URL("../src/cli/main.ts", import.meta.url));
const run = promisify(execFile);

const fixtures: CdcFixture[] = [];
const running: Array<ChangeEvents | EventBus> = [];
afterEach(async () => {
  for (const r of running.splice(0).reverse()) {
    await ("close" in r ? r.close() : r.stop()).catch(() => undefined);
  }
  for (const f of fixtures.splice(0)) await f.cleanup();
});

interface Seen {
  id: string;
  type: string;
  data: { id: number; n?: number };
}

async function setup() {
  const f = await cdcFixture(service.url);
  fixtures.push(f);
  await f.sql(`CREATE TABLE ${f.src}.items (id int PRIMARY KEY, name text, n int NOT NULL DEFAULT 0)`);
  const store = f.store();
  const bus = createEventBus({ store });
  const seen: Seen[] = [];
  bus.subscribe(`${f.src}.items.*`, { group: `g_${f.id}` }, (event) => {
    seen.push({ id: event.id, type: event.type, data: event.data as Seen["data"] });
  });
  await bus.start();
  running.push(bus);
  const capture = () => {
    const c = changeEvents({
      name: `ev_${f.id}`,
      bus,
      source: postgresChanges({
        url: f.url,
        slot: f.slot,
        publication: f.publication,
        tables: [`${f.src}.items`],
        heartbeat: "1s",
      }),
      batchSize: 50,
      restartDelay: "200ms",
    });
    running.push(c);
    return c;
  };
  return { f, bus, store, seen, capture };
}

describe.skipIf(problem !== undefined)("CDC onto the bus", { timeout: 180_000 }, () => {
  it("publishes each insert, update and delete once, as <schema>.<table>.<op>, in commit order per row", async () => {
    const { f, seen, capture } = await setup();
    await f.sql(`INSERT INTO ${f.src}.items (id, name) VALUES (1, 'a'), (2, 'b')`);
    const c = capture();
    c.start();
    // The snapshot copies the two existing rows as inserts.
    await eventually(() => Promise.resolve(seen.length >= 2), 60_000, "the snapshot events");
    await f.sql(`INSERT INTO ${f.src}.items (id, name) VALUES (3, 'c')`);
    for (let i = 1; i <= 5; i++) await f.sql(`UPDATE ${f.src}.items SET n = ${i} WHERE id = 1`);
    await f.sql(
      `BEGIN; UPDATE ${f.src}.items SET n = 6 WHERE id = 1; DELETE FROM ${f.src}.items WHERE id = 2; COMMIT`,
    );
    const expected = 2 + 1 + 5 + 1 + 1;
    await eventually(() => Promise.resolve(seen.length >= expected), 60_000, "the change events");
    await new Promise((r) => setTimeout(r, 1500)); // nothing more arrives
    expect(seen).toHaveLength(expected);
    expect(new Set(seen.map((s) => s.id)).size).toBe(expected);
    expect(
      seen
        .filter((s) => s.type === `${f.src}.items.insert`)
        .map((s) => s.data.id)
        .sort(),
    ).toEqual([1, 2, 3]);
    expect(seen.filter((s) => s.type === `${f.src}.items.delete`).map((s) => s.data)).toEqual([{ id: 2 }]);
    // Row 1's updates arrive in commit order.
    const row1 = seen
      .filter((s) => s.type === `${f.src}.items.update` && s.data.id === 1)
      .map((s) => s.data.n);
    expect(row1).toEqual([1, 2, 3, 4, 5, 6]);
    expect(c.failure).toBeUndefined();
  });

  it("resumes after a restart with no event published twice (distinct event ids == changes)", async () => {
    const { f, seen, capture } = await setup();
    const first = capture();
    first.start();
    // Slot created (no rows: an empty snapshot), position stored.
    await eventually(async () => (await first.position()) !== undefined, 60_000, "the first position");
    let changes = 0;
    const load = async (from: number, count: number) => {
      for (let i = from; i < from + count; i++) {
        await f.sql(`INSERT INTO ${f.src}.items (id, name) VALUES ($1, 'x')`, [i]);
        await f.sql(`UPDATE ${f.src}.items SET n = n + 1 WHERE id = $1`, [i]);
        changes += 2;
        if (i % 3 === 0) {
          await f.sql(`DELETE FROM ${f.src}.items WHERE id = $1`, [i]);
          changes += 1;
        }
      }
    };
    await load(1, 60);
    await eventually(() => Promise.resolve(seen.length >= 20), 60_000, "some events");
    await first.close(); // mid-stream: part of the load is published, the rest is in the slot
    await load(61, 60);
    const second = capture();
    second.start();
    await eventually(() => Promise.resolve(seen.length >= changes), 90_000, `all ${changes} events`);
    await new Promise((r) => setTimeout(r, 1500));
    const ids = seen.map((s) => s.id);
    expect(ids).toHaveLength(changes);
    expect(new Set(ids).size).toBe(changes);
    // Every row's events in commit order: insert, update, then (every third) delete.
    for (let i = 1; i <= 120; i++) {
      const ops = seen.filter((s) => s.data.id === i).map((s) => s.type.split(".").pop());
      expect(ops).toEqual(i % 3 === 0 ? ["insert", "update", "delete"] : ["insert", "update"]);
    }
    expect(second.failure).toBeUndefined();
  });

  it("patchbay status and the patchbay_cdc_slot_lag_bytes/_seconds gauges show the slot: active, lag, retained WAL", async () => {
    const { f, store, seen, capture } = await setup();
    const c = capture();
    c.start();
    await eventually(async () => (await c.position()) !== undefined, 60_000, "the slot");
    await f.sql(`INSERT INTO ${f.src}.items (id, name) VALUES (1, 'a')`);
    await eventually(() => Promise.resolve(seen.length >= 1), 60_000, "the event");
    const { stdout } = await run(
      process.execPath,
      ["--import", import.meta.resolve("tsx"), MAIN, "status", "--pg", f.url, "--schema", f.meta, "--json"],
      { env: { ...process.env, PATCHBAY_PG_URL: "" } },
    );
    const report = JSON.parse(stdout) as { cdcSlots?: Array<Record<string, unknown>> };
    const mine = report.cdcSlots?.find((x) => x.slot === f.slot);
    expect(mine).toMatchObject({ slot: f.slot, active: true });
    expect(typeof mine?.lagBytes).toBe("number");
    expect(mine?.retainedBytes as number).toBeGreaterThanOrEqual(0);
    const text = await run(process.execPath, [
      "--import",
      import.meta.resolve("tsx"),
      MAIN,
      "status",
      "--pg",
      f.url,
      "--schema",
      f.meta,
    ]);
    expect(text.stdout).toContain("CDC slots");
    expect(text.stdout).toMatch(new RegExp(`${f.slot}\\s+yes\\s+\\d+\\s+\\d+`));
    // Read from the server at scrape time.
    const metrics = createMetrics({ store });
    try {
      const scraped = await metrics.registry.metrics();
      expect(scraped).toMatch(new RegExp(`^patchbay_cdc_slot_lag_bytes\\{slot="${f.slot}"\\} \\d+$`, "m"));
      // The capture reads the slot: its lag in seconds too (0 once caught up).
      expect(scraped).toMatch(
        new RegExp(`^patchbay_cdc_slot_lag_seconds\\{slot="${f.slot}"\\} [\\d.e-]+$`, "m"),
      );
    } finally {
      metrics.close();
    }
  });

  it("patchbay cdc start runs a changeEvents publisher from the config; status shows its position and slot; drop-slot drops it", async () => {
    const { f, seen } = await setup();
    await f.sql(`INSERT INTO ${f.src}.items (id, name) VALUES (1, 'a'), (2, 'b'), (3, 'c')`);
    const dir = mkdtempSync(join(tmpdir(), "pb-cdc-cli-"));
    const src = (path: string) => JSON.stringify(fileURLToPath(new URL(`../src/${path}`, import.meta.url)));
    const config = join(dir, "patchbay.config.ts");
    writeFileSync(
      config,
      `import { postgres, postgresChanges } from ${src("adapters/postgres/index.ts")};
import { createEventBus } from ${src("bus/bus.ts")};
import { changeEvents } from ${src("cdc/change-events.ts")};
const bus = createEventBus({ store: postgres({ url: ${JSON.stringify(f.url)}, schema: ${JSON.stringify(f.meta)} }) });
export const captures = [
  changeEvents({
    name: "ev_cli_${f.id}",
    bus,
    source: postgresChanges({ url: ${JSON.stringify(f.url)}, slot: ${JSON.stringify(f.slot)}, publication: ${JSON.stringify(f.publication)}, tables: [${JSON.stringify(`${f.src}.items`)}] }),
  }),
];
`,
    );
    const cli = (...args: string[]) =>
      run(process.execPath, [
        "--import",
        import.meta.resolve("tsx"),
        MAIN,
        "cdc",
        ...args,
        "--config",
        config,
      ]).then(
        (r) => ({ code: 0, ...r }),
        (e: { code: number; stdout: string; stderr: string }) => e,
      );
    const proc = spawn(
      process.execPath,
      ["--import", import.meta.resolve("tsx"), MAIN, "cdc", "start", `ev_cli_${f.id}`, "--config", config],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    let out = "";
    proc.stdout.on("data", (d: Buffer) => (out += d.toString()));
    proc.stderr.on("data", (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => proc.once("exit", (code) => resolve(code)));
    try {
      // The snapshot's three rows, then the stream's changes, reach the test's consumer group.
      await eventually(() => Promise.resolve(seen.length >= 3), 90_000, "the snapshot events");
      await f.sql(`UPDATE ${f.src}.items SET n = 1 WHERE id = 1`);
      await f.sql(`DELETE FROM ${f.src}.items WHERE id = 2`);
      await eventually(() => Promise.resolve(seen.length >= 5), 60_000, "the streamed events");
      expect(seen.map((e) => e.type).slice(3)).toEqual([`${f.src}.items.update`, `${f.src}.items.delete`]);

      const status = await cli("status", `ev_cli_${f.id}`, "--json");
      expect(status.code).toBe(0);
      const parsed = JSON.parse(status.stdout) as {
        position?: { lsn?: string };
        slot?: { slot: string; active: boolean };
      };
      expect(parsed.position?.lsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
      expect(parsed.slot).toMatchObject({ slot: f.slot, active: true });
      const stop = await cli("stop", `ev_cli_${f.id}`);
      expect(stop.code).toBe(1);
      expect(stop.stderr).toContain("SIGTERM");
    } finally {
      proc.kill("SIGTERM");
    }
    expect(await exited, out).toBe(0);
    expect(out).toContain(`ev_cli_${f.id}: stopped`);
    const dropped = await cli("drop-slot", `ev_cli_${f.id}`, "--json");
    expect(JSON.parse(dropped.stdout)).toEqual({ capture: `ev_cli_${f.id}`, dropped: true });
    expect(await f.sql("SELECT 1 FROM pg_replication_slots WHERE slot_name = $1", [f.slot])).toHaveLength(0);
    rmSync(dir, { recursive: true, force: true });
  });
});
