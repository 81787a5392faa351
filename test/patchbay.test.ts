/** createPatchbay(): the embedded default end to end, and the same code on PostgreSQL. */
import { mkdtempSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, inject, it } from "vitest";
import { z } from "zod";
import { isPatchbayError } from "../src/core/errors.js";
import { defineEvent } from "../src/core/events.js";
import { silentLogger } from "../src/core/logger.js";
import { sqlite, sqliteDestination, sqliteSource } from "../src/adapters/sqlite/index.js";
import { createPatchbay, type Patchbay } from "../src/patchbay.js";
import { until } from "./conformance/transport.js";
import { postgresDatabase, type IsolatedDatabase } from "./support/stores.js";

const { postgres: pg } = inject("services");
const OrderCreated = defineEvent("order.created", { version: 1, schema: z.object({ orderId: z.string() }) });

/** The application code, identical on every backend. */
async function app(pb: Patchbay, p: (n: number) => string) {
  const emailed: string[] = [];
  pb.subscribe(OrderCreated, { group: "email" }, (event) => void emailed.push(event.data.orderId));
  await pb.start();
  await pb.store.query("CREATE TABLE orders (id TEXT PRIMARY KEY)");
  await pb.transaction(async (tx) => {
    await tx.query(`INSERT INTO orders (id) VALUES (${p(1)})`, ["o-1"]);
    await tx.publish(OrderCreated, { orderId: "o-1" });
  });
  await until(() => emailed.length === 1, 10_000, "the e-mail");
  return emailed;
}

describe("createPatchbay", () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it("runs embedded with no options: SQLite at .patchbay/patchbay.db, the store's own queue", async () => {
    const dir = mkdtempSync(join(tmpdir(), "patchbay-app-"));
    const cwd = process.cwd();
    process.chdir(dir);
    cleanups.push(() => {
      process.chdir(cwd);
      rmSync(dir, { recursive: true, force: true });
    });
    const pb = createPatchbay({ logger: silentLogger });
    cleanups.push(() => pb.stop());
    expect(await app(pb, () => "?")).toEqual(["o-1"]);
    expect(existsSync(join(dir, ".patchbay", "patchbay.db"))).toBe(true);
    await Promise.all([pb.stop(), pb.stop()]);
    await expect(pb.store.query("SELECT 1")).rejects.toThrow(/closed/);
  });

  it("runs sagas and pipelines on its store: pb.saga(...) and pb.pipeline(...)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "patchbay-app-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const pb = createPatchbay({ store: sqlite({ file: join(dir, "app.db") }), logger: silentLogger });
    cleanups.push(() => pb.stop());
    const ran: string[] = [];
    const greet = pb.saga<{ name: string }>("greet", {
      version: 1,
      steps: [
        { name: "hello", run: (input) => void ran.push(`hello ${input.name}`) },
        { name: "bye", run: (input) => void ran.push(`bye ${input.name}`) },
      ],
    });
    const copy = pb.pipeline("copy", {
      source: sqliteSource({ file: join(dir, "app.db"), table: "people", key: "id" }),
      destination: sqliteDestination({
        file: join(dir, "copy.db"),
        table: "people",
        key: "id",
        write: "replace",
      }),
      mode: "full",
      drift: "evolve",
    });
    await pb.start();
    await pb.store.query("CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT NOT NULL)");
    await pb.store.query("INSERT INTO people (id, name) VALUES (1, 'Ada'), (2, 'Grace')");
    await greet.start({ name: "Ada" }, { id: "g-1" });
    expect((await pb.sagas.wait("g-1")).status).toBe("completed");
    expect(ran).toEqual(["hello Ada", "bye Ada"]);
    const report = await copy.run();
    expect(report).toMatchObject({ status: "succeeded", rowsWritten: 2 });
  });

  it("starts a part registered after start() at once: a saga, a scheduled pipeline, a subscription", async () => {
    const dir = mkdtempSync(join(tmpdir(), "patchbay-app-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const pb = createPatchbay({ store: sqlite({ file: join(dir, "app.db") }), logger: silentLogger });
    cleanups.push(() => pb.stop());
    await pb.start();
    const ran: string[] = [];
    const late = pb.saga<{ name: string }>("late", {
      version: 1,
      steps: [{ name: "hello", run: (input) => void ran.push(`hello ${input.name}`) }],
    });
    await late.start({ name: "Ada" }, { id: "late-1" });
    expect((await pb.sagas.wait("late-1", { timeout: "10s" })).status).toBe("completed");
    expect(ran).toEqual(["hello Ada"]);

    const heard: string[] = [];
    await pb.subscribe(OrderCreated, { group: "late-group" }, (event) => void heard.push(event.data.orderId))
      .ready;
    await pb.publish(OrderCreated, { orderId: "o-late" });
    await until(() => heard.length === 1, 10_000, "the late subscription's delivery");
    expect(heard).toEqual(["o-late"]);

    await pb.store.query("CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT NOT NULL)");
    await pb.store.query("INSERT INTO people (id, name) VALUES (1, 'Ada')");
    const copy = pb.pipeline("late_copy", {
      source: sqliteSource({ file: join(dir, "app.db"), table: "people", key: "id" }),
      destination: sqliteDestination({
        file: join(dir, "copy.db"),
        table: "people",
        key: "id",
        write: "replace",
      }),
      mode: "full",
      drift: "evolve",
      schedule: "* * * * * *",
    });
    await until(
      async () => (await copy.status()).runs.some((r) => r.status === "succeeded"),
      10_000,
      "a scheduled run",
    );
  });

  it("pauses a group through pb.bus, and passes pausePollInterval to the bus (refusing one under 10 ms)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "patchbay-app-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, "app.db");
    expect(() => createPatchbay({ store: sqlite({ file }), pausePollInterval: "5ms" })).toThrow(
      /pausePollInterval must be at least 10 ms/,
    );
    const pb = createPatchbay({ store: sqlite({ file }), pausePollInterval: "50ms", logger: silentLogger });
    cleanups.push(() => pb.stop());
    const seen: string[] = [];
    pb.subscribe(OrderCreated, { group: "orders" }, (e) => void seen.push(e.data.orderId));
    await pb.start();
    await pb.bus.pause("orders", { by: "test" });
    await pb.publish(OrderCreated, { orderId: "o-1" });
    await new Promise((r) => setTimeout(r, 500));
    expect(seen).toEqual([]);
    expect((await pb.bus.paused()).map((p) => p.group)).toEqual(["orders"]);
    await pb.bus.resume("orders");
    await until(() => seen.length === 1, 10_000, "the order after the resume");
    expect(seen).toEqual(["o-1"]);
  });

  it("refuses a part registered after stop() with STOPPED; start() twice is a no-op", async () => {
    const dir = mkdtempSync(join(tmpdir(), "patchbay-app-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const pb = createPatchbay({ store: sqlite({ file: join(dir, "app.db") }), logger: silentLogger });
    await Promise.all([pb.start(), pb.start()]);
    await pb.start();
    await pb.stop();
    const code = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return isPatchbayError(e) ? e.code : String(e);
      }
      return "no error";
    };
    expect(code(() => pb.saga("after", { version: 1, steps: [{ name: "a", run: () => undefined }] }))).toBe(
      "STOPPED",
    );
    expect(code(() => pb.subscribe(OrderCreated, { group: "after" }, () => undefined))).toBe("STOPPED");
    expect(code(() => pb.webhooks())).toBe("STOPPED");
    expect(
      code(() =>
        pb.pipeline("after", {
          source: sqliteSource({ file: join(dir, "app.db"), table: "people", key: "id" }),
          destination: sqliteDestination({ file: join(dir, "copy.db"), table: "people", key: "id" }),
          mode: "full",
        }),
      ),
    ).toBe("STOPPED");
    await expect(pb.start()).rejects.toMatchObject({ code: "STOPPED" });
  });

  it.skipIf(!pg.reachable)("runs the same application code on PostgreSQL", async () => {
    const db: IsolatedDatabase = postgresDatabase(pg.url);
    const pb = createPatchbay({ store: db.make(), logger: silentLogger });
    cleanups.push(() => db.cleanup());
    cleanups.push(() => pb.stop());
    expect(await app(pb, (n) => `$${n}`)).toEqual(["o-1"]);
  });
});
