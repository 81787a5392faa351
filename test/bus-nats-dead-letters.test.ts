/**
 * Dead letters on NATS JetStream at the bus level, with the effects counted in the store: a
 * message whose handler always throws, and one whose handler kills its consumer process
 * (`process.exit`) each time it sees it, the process restarted by the test. Each is dead-lettered
 * with its error after its attempts while the group applies every other message's effect exactly
 * once, and `patchbay dlq replay` (the CLI, through the app's bus from --config) delivers it again.
 */
import { execFile, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, inject, it } from "vitest";
import { createEventBus } from "../src/bus/bus.js";
import { defineEvent } from "../src/core/events.js";
import type { StandardSchemaV1 } from "../src/core/schema.js";
import { constant } from "../src/resilience/backoff.js";
import type { SqlStore } from "../src/store/sql-store.js";
import { until } from "./conformance/transport.js";
import { isolatedNats, type IsolatedNats } from "./support/nats.js";
import { postgresDatabase, sqliteDatabase, type IsolatedDatabase } from "./support/stores.js";

const { postgres: pg, nats: ns } = inject("services");
const ROOT = fileURLToPath(new URL("..", import.meta.url));
const CLI = fileURLToPath(new URL("../src/cli/main.ts", import.meta.url));
const CHILD = fileURLToPath(new URL("./fixtures/bus-nats-poison-consumer.ts", import.meta.url));
const run = promisify(execFile);
const OTHERS = 300;

const anything: StandardSchemaV1<{ n: number }> = {
  "~standard": { version: 1, vendor: "test", validate: (value) => ({ value: value as { n: number } }) },
};
const Flow = defineEvent("flow.item", { version: 1, schema: anything, source: "/flow" });
const storeName = pg.reachable ? "PostgreSQL" : "SQLite";
const makeDb = (): IsolatedDatabase => (pg.reachable ? postgresDatabase(pg.url) : sqliteDatabase());

/** Effects per item number. */
async function effects(store: SqlStore): Promise<Map<number, number>> {
  const { rows } = await store.query<{ n: number | string; c: number | string }>(
    "SELECT n, COUNT(*) AS c FROM effects GROUP BY n",
  );
  return new Map(rows.map((r) => [Number(r.n), Number(r.c)]));
}

/** Items 1..OTHERS each applied exactly once? Returns [lost, doubled]. */
function othersOnce(seen: Map<number, number>): { lost: number; doubled: number } {
  let lost = 0;
  let doubled = 0;
  for (let n = 1; n <= OTHERS; n++) {
    const c = seen.get(n) ?? 0;
    if (c === 0) lost++;
    if (c > 1) doubled++;
  }
  return { lost, doubled };
}

/** `patchbay dlq replay --group <group> --config <file>`, the config exporting the app's store and bus on NATS. */
async function cliReplay(db: IsolatedDatabase, broker: IsolatedNats, group: string, dir: string) {
  const config = join(dir, "patchbay.config.ts");
  const adapter = db.adapter === "sqlite" ? "sqlite" : "postgres";
  writeFileSync(
    config,
    `import { ${adapter} } from ${JSON.stringify(join(ROOT, `src/adapters/${adapter}/index.ts`))};
import { nats } from ${JSON.stringify(join(ROOT, "src/adapters/nats/index.ts"))};
import { createEventBus } from ${JSON.stringify(join(ROOT, "src/bus/bus.ts"))};
export const store = ${adapter}(${JSON.stringify(db.config)});
export const bus = createEventBus({ store, transport: nats({ url: ${JSON.stringify(broker.url)}, prefix: ${JSON.stringify(broker.prefix)} }) });
`,
  );
  const { stdout } = await run(process.execPath, [
    "--import",
    "tsx",
    CLI,
    "dlq",
    "replay",
    "--group",
    group,
    "--config",
    config,
  ]);
  return stdout;
}

describe.skipIf(!ns.reachable)(`dead letters on NATS JetStream (${ns.where}) with ${storeName}`, () => {
  it(`a handler that always throws: dead-lettered after maxAttempts while ${OTHERS} others apply once; the CLI replays it`, async () => {
    const broker = isolatedNats(ns.url);
    const db = makeDb();
    const store = db.make();
    const dir = mkdtempSync(join(tmpdir(), "pb-nats-dlq-"));
    const bus = createEventBus({ store, transport: broker.make(), events: [Flow] });
    try {
      await store.open();
      await store.query("CREATE TABLE effects (event_id TEXT NOT NULL, n INTEGER NOT NULL)");
      let healed = false;
      let poisonRuns = 0;
      bus.subscribe(
        Flow,
        { group: "thrower", concurrency: 4, retry: { immediate: 0, maxAttempts: 3, backoff: constant(200) } },
        async (event, { tx }) => {
          if (event.data.n === 0 && !healed) {
            poisonRuns++;
            throw new Error("item 0 is poison");
          }
          await tx.query(`INSERT INTO effects (event_id, n) VALUES (${db.p(1)}, ${db.p(2)})`, [
            event.id,
            event.data.n,
          ]);
        },
      );
      await bus.start();
      await bus.publish(Flow, { n: 0 });
      for (let n = 1; n <= OTHERS; n++) await bus.publish(Flow, { n });
      await until(async () => othersOnce(await effects(store)).lost === 0, 60_000, `the ${OTHERS} others`);
      await until(
        async () => (await bus.deadLetters.count({ group: "thrower" })) === 1,
        30_000,
        "a dead letter",
      );
      const [letter] = await bus.deadLetters.list({ group: "thrower" });
      expect(letter).toMatchObject({ group: "thrower", type: "flow.item", attempts: 3 });
      expect(letter!.error.message).toBe("item 0 is poison");
      expect(poisonRuns).toBe(3);
      // The group goes on after the dead letter.
      await bus.publish(Flow, { n: OTHERS + 1 });
      await until(
        async () => (await effects(store)).has(OTHERS + 1),
        15_000,
        "a message after the dead letter",
      );

      healed = true;
      expect(await cliReplay(db, broker, "thrower", dir)).toContain("replayed 1 dead letter");
      await until(async () => (await effects(store)).has(0), 15_000, "the replayed message's effect");
      await new Promise((r) => setTimeout(r, 3500)); // past the ack wait: any redelivery is in
      const seen = await effects(store);
      expect(othersOnce(seen)).toEqual({ lost: 0, doubled: 0 });
      expect(seen.get(0)).toBe(1);
      expect(seen.get(OTHERS + 1)).toBe(1);
      expect(await bus.deadLetters.count()).toBe(0);
    } finally {
      await bus.stop({ timeout: "5s" });
      await store.close();
      await db.cleanup();
      await broker.cleanup();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);

  // The messages in flight beside the poison when it kills its process are redelivered with it;
  // each redelivered message then runs alone, so only the poison's own runs count toward
  // deliveryLimit: it is dead-lettered after deliveryLimit crashes, and nothing else is.
  it(`a handler that exits its process on one message, restarted each time: dead-lettered after deliveryLimit while ${OTHERS} others apply once; the CLI replays it`, async () => {
    const deliveryLimit = 3;
    const broker = isolatedNats(ns.url);
    const db = makeDb();
    const store = db.make();
    const dir = mkdtempSync(join(tmpdir(), "pb-nats-dlq-"));
    // Publishes only (the consumer is the child process).
    const bus = createEventBus({ store, transport: broker.make(), events: [Flow] });
    const children: { exited: boolean; kill(): void; wait: Promise<number | null> }[] = [];
    let log = "";
    const startChild = (heal: boolean) => {
      const proc = spawn(
        process.execPath,
        [
          "--import",
          "tsx",
          CHILD,
          JSON.stringify({
            adapter: db.adapter,
            config: db.config,
            url: broker.url,
            prefix: broker.prefix,
            deliveryLimit,
            heal,
          }),
        ],
        { stdio: ["ignore", "pipe", "pipe"] },
      );
      proc.stdout.on("data", (d: Buffer) => (log += d.toString()));
      proc.stderr.on("data", (d: Buffer) => (log += d.toString()));
      const child = {
        exited: false,
        kill: () => proc.kill("SIGTERM"),
        wait: new Promise<number | null>((resolve) => proc.once("exit", (code) => resolve(code))),
      };
      void child.wait.then(() => (child.exited = true));
      children.push(child);
      return child;
    };
    try {
      await store.open();
      await store.query("CREATE TABLE effects (event_id TEXT NOT NULL, n INTEGER NOT NULL)");
      // The group's consumer exists before anything is published (a child makes it on start).
      await bus.transport.open();
      await bus.transport.bind("crashy", ["flow.*"]);
      await bus.publish(Flow, { n: 0 });
      for (let n = 1; n <= OTHERS; n++) await bus.publish(Flow, { n });

      let child = startChild(false);
      let crashes = 0;
      await until(
        async () => {
          if (child.exited) {
            expect(await child.wait).toBe(3); // the poison's exit, nothing else
            crashes++;
            child = startChild(false);
          }
          return (await bus.deadLetters.count({ group: "crashy" })) === 1;
        },
        120_000,
        `a dead letter (${log.slice(-2000)})`,
      );
      const progress = async () =>
        `${JSON.stringify(othersOnce(await effects(store)))}, child exited ${child.exited}, ${crashes} crashes (${log.slice(-1500)})`;
      let status = "";
      await until(
        async () => {
          status = await progress();
          return othersOnce(await effects(store)).lost === 0;
        },
        60_000,
        `the ${OTHERS} others: ${status}`,
      );
      expect(crashes).toBe(deliveryLimit);
      const [letter] = await bus.deadLetters.list({ group: "crashy" });
      expect(letter).toMatchObject({ group: "crashy", type: "flow.item" });
      expect(String(letter!.error.message)).toContain(
        `without being settled (deliveryLimit ${deliveryLimit})`,
      );
      // The restarted consumer goes on after the dead letter.
      await bus.publish(Flow, { n: OTHERS + 1 });
      await until(
        async () => (await effects(store)).has(OTHERS + 1),
        15_000,
        "a message after the dead letter",
      );
      expect(child.exited).toBe(false);
      child.kill();
      expect(await child.wait).toBe(0);

      // Fixed: a consumer that handles item 0; the CLI sends the letter back to it.
      child = startChild(true);
      expect(await cliReplay(db, broker, "crashy", dir)).toContain("replayed 1 dead letter");
      await until(
        async () => (await effects(store)).has(0),
        30_000,
        `the replayed message's effect (${log.slice(-2000)})`,
      );
      await new Promise((r) => setTimeout(r, 3000)); // past the ack wait: any redelivery is in
      const seen = await effects(store);
      expect(othersOnce(seen)).toEqual({ lost: 0, doubled: 0 });
      expect(seen.get(0)).toBe(1);
      expect(seen.get(OTHERS + 1)).toBe(1);
      expect(await bus.deadLetters.count()).toBe(0);
      console.log(`poison-exit test on NATS: ${crashes} crashes, ${seen.size} items applied once each`);
    } catch (e) {
      const letters = await bus.deadLetters.list({ group: "crashy" }).catch(() => []);
      console.log(
        `poison-exit test: ${JSON.stringify(othersOnce(await effects(store).catch(() => new Map())))}, dead letters of items ${JSON.stringify(letters.map((l) => (l.event?.data as { n?: number } | undefined)?.n))}; ${children.length} children; their output:\n${log.slice(-3000)}`,
      );
      throw e;
    } finally {
      for (const c of children) if (!c.exited) c.kill();
      await Promise.all(children.map((c) => c.wait));
      await bus.stop({ timeout: "5s" });
      await store.close();
      await db.cleanup();
      await broker.cleanup();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 240_000);
});

if (!ns.reachable) console.log(`Dead letters on NATS skipped: unreachable at ${ns.where}`);
