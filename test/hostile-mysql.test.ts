/**
 * Hostile inputs and failures on the MariaDB/MySQL store: payloads that must come back exactly
 * through dead letter and replay, handlers that swallow a deadlock or lose their connection before
 * COMMIT (never acked without their effect), and the session settings the store forces.
 */
import mysql2 from "mysql2/promise";
import { afterEach, beforeEach, describe, expect, inject, it } from "vitest";
import { z } from "zod";
import { createEventBus, type EventBus } from "../src/bus/bus.js";
import { localTransport } from "../src/bus/local-transport.js";
import { NonRetryableError, isPatchbayError } from "../src/core/errors.js";
import { defineEvent } from "../src/core/events.js";
import { createLogger } from "../src/core/logger.js";
import { constant } from "../src/resilience/backoff.js";
import type { SqlStore } from "../src/store/sql-store.js";
import { until } from "./conformance/transport.js";
import { mysql } from "../src/adapters/mysql/index.js";
import { mysqlDatabase } from "./support/stores.js";

const { mysql: maria } = inject("services");

const Hostile = defineEvent("hostile.payload", {
  version: 1,
  schema: z.object({ text: z.string(), numbers: z.array(z.number()), nested: z.unknown() }),
});
const Tick = defineEvent("hostile.tick", { version: 1, schema: z.object({ n: z.number() }) });

const fastRetry = { immediate: 1, attempts: 3, backoff: constant(50) };

describe.runIf(maria.reachable)("hostile inputs on the MariaDB store", () => {
  let db: ReturnType<typeof mysqlDatabase>;
  let store: SqlStore;
  const buses: EventBus[] = [];
  const bus = () => {
    const b = createEventBus({
      store,
      transport: localTransport(store, { lease: "2s", pollInterval: "100ms" }),
      events: [Hostile, Tick],
      logger: process.env.HOSTILE_LOG ? createLogger({ level: "debug" }) : undefined,
    });
    buses.push(b);
    return b;
  };
  const admin = async <T>(fn: (c: mysql2.Connection) => Promise<T>): Promise<T> => {
    const c = await mysql2.createConnection({ uri: db.config.url as string });
    try {
      return await fn(c);
    } finally {
      await c.end();
    }
  };
  const count = async (text: string) => Number((await store.query<{ n: unknown }>(text)).rows[0]?.n ?? 0);

  beforeEach(async () => {
    db = mysqlDatabase(maria.url);
    store = db.make();
    await store.open();
  });
  afterEach(async () => {
    await Promise.all(buses.splice(0).map((b) => b.stop({ timeout: "5s" })));
    await store.close();
    await db.cleanup();
  });

  it("a payload of NUL, emoji, lone surrogates, extreme numbers and 1 MB text comes back exactly through dead letter and replay", async () => {
    const data = {
      text: `a\u0000b 😀 \uD800 lone \uDFFF 𝄞 ${"é".repeat(10)}`,
      numbers: [Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, 1.7976931348623157e308, 5e-324, -0, 0.1],
      nested: {
        "key\u0000with nul": "v",
        "😀": [null, true, "12345678901234567890.12345678901234567890"],
        big: "x".repeat(900_000),
      },
    };
    const key = `k\u0000😀${"K".repeat(300)}`;
    const b = bus();
    const seen: unknown[] = [];
    let fail = true;
    b.subscribe(Hostile, { group: "hostile" }, (e) => {
      if (fail) throw new NonRetryableError("refused");
      seen.push(e.data);
    });
    await b.start();
    const event = await b.publish(Hostile, data, { key });
    await until(async () => (await b.deadLetters.count()) === 1, 20_000, "a dead letter");
    const letter = await b.deadLetters.get("hostile", event.id);
    expect(letter?.key).toBe(key);
    const body = JSON.parse(letter!.body) as { data: unknown; id: string };
    expect(body.id).toBe(event.id);
    expect(JSON.stringify(body.data)).toBe(JSON.stringify(data));
    // JSON has no -0: it reads back as 0, on every store alike.
    expect(letter!.event?.data).toEqual({ ...data, numbers: data.numbers.map((n) => n + 0) });
    fail = false;
    expect(await b.deadLetters.replay({ group: "hostile" })).toBe(1);
    await until(() => seen.length === 1, 20_000, "the replayed message handled");
    expect(JSON.stringify(seen[0])).toBe(JSON.stringify(data));
    expect(await b.deadLetters.count()).toBe(0);
  });

  it("a key longer than its column (TEXT, 64 KiB) is refused at publish with a PatchbayError, nothing published", async () => {
    const b = bus();
    const seen: number[] = [];
    b.subscribe(Tick, { group: "long-key" }, (e) => void seen.push(e.data.n));
    await b.start();
    const error = await b.publish(Tick, { n: 1 }, { key: "k".repeat(70_000) }).catch((e: unknown) => e);
    expect(isPatchbayError(error)).toBe(true);
    await b.publish(Tick, { n: 2 }, { key: "k".repeat(60_000) });
    await until(() => seen.includes(2), 10_000, "the next event");
    await new Promise((r) => setTimeout(r, 300));
    expect(seen).toEqual([2]);
    expect(await b.deadLetters.count()).toBe(0);
    expect(await count(`SELECT COUNT(*) AS n FROM ${store.dialect.table("bus_jobs")}`)).toBe(0);
  });

  it("two message ids alike in their first 255 characters are two messages, or refused: never one lost as a duplicate", async () => {
    const b = bus();
    const seen: string[] = [];
    b.subscribe(Tick, { group: "long-ids" }, (e) => void seen.push(e.id));
    await b.start();
    const ids = ["A", "B"].map((end) => `${"x".repeat(300)}${end}`);
    const outcomes = await Promise.all(
      ids.map((id, n) =>
        b.publish(Tick, { n }, { id }).then(
          () => "sent",
          (e: unknown) => e,
        ),
      ),
    );
    await b.publish(Tick, { n: 9 }, { id: "last" });
    await until(() => seen.includes("last"), 10_000, "the last event");
    await new Promise((r) => setTimeout(r, 300));
    for (const [i, outcome] of outcomes.entries()) {
      if (outcome === "sent") expect(seen).toContain(ids[i]);
      else expect(isPatchbayError(outcome)).toBe(true);
    }
    expect(await b.deadLetters.count()).toBe(0);
  });

  it("keys that differ only by trailing spaces are distinct, as on PostgreSQL: state, idempotency, message ids", async () => {
    await store.state.set("k", 1);
    await store.state.set("k ", 2);
    expect((await store.state.get("k"))?.value).toBe(1);
    expect((await store.state.get("k "))?.value).toBe(2);
    const first = await store.idempotency.claim({ key: "o-1", fingerprint: "f" });
    const second = await store.idempotency.claim({ key: "o-1 ", fingerprint: "f" });
    expect([first.outcome, second.outcome]).toEqual(["claimed", "claimed"]);
    const b = bus();
    const seen: string[] = [];
    b.subscribe(Tick, { group: "spaces" }, (e) => void seen.push(e.id));
    await b.start();
    await b.publish(Tick, { n: 1 }, { id: "m" });
    await b.publish(Tick, { n: 2 }, { id: "m " });
    await until(() => seen.length === 2, 10_000, "both messages");
    expect([...seen].sort()).toEqual(["m", "m "]);
  });

  it("headers MariaDB's JSON refuses (a lone surrogate) fail their publish typed; the publishes batched with it are each delivered or refused, never lost", async () => {
    const b = bus();
    const seen = new Map<number, number>();
    b.subscribe(Tick, { group: "headers" }, (e) => void seen.set(e.data.n, (seen.get(e.data.n) ?? 0) + 1));
    await b.start();
    const outcomes = await Promise.all(
      Array.from({ length: 20 }, (_, n) =>
        b
          .publish(
            Tick,
            { n },
            n === 7 ? { headers: { "x-bad": "a\uD800b" } } : { headers: { "x-ok": "😀\u0000" } },
          )
          .then(
            () => "sent",
            (e: unknown) => e,
          ),
      ),
    );
    expect(isPatchbayError(outcomes[7])).toBe(true);
    await b.publish(Tick, { n: 99 });
    await until(() => seen.has(99), 10_000, "the last event");
    await new Promise((r) => setTimeout(r, 300));
    for (const [n, outcome] of outcomes.entries()) {
      if (outcome === "sent") expect(seen.get(n)).toBe(1);
      else expect(isPatchbayError(outcome)).toBe(true);
    }
    expect(await b.deadLetters.count()).toBe(0);
  });

  it("idempotency keys alike in their first 255 characters are two keys or refused, never one claim", async () => {
    const outcomes = await Promise.all(
      ["1", "2"].map((end) =>
        store.idempotency.claim({ key: `${"k".repeat(300)}${end}`, fingerprint: "f" }).then(
          (c) => c.outcome,
          (e: unknown) => e,
        ),
      ),
    );
    for (const outcome of outcomes) {
      if (typeof outcome === "string") expect(outcome).toBe("claimed");
      else expect(isPatchbayError(outcome)).toBe(true);
    }
  });

  it("state values with big numbers, NUL and emoji come back as set; a lone surrogate is refused typed, as on PostgreSQL", async () => {
    const value = {
      big: 2 ** 53 + 2,
      small: -1e-300,
      decimal: "12345678901234567890.12345678901234567890",
      text: "\u0000😀 𝄞",
      deep: [[[[{ a: "é" }]]]],
    };
    await store.state.set("s\u0000😀", value);
    expect(JSON.stringify((await store.state.get("s\u0000😀"))?.value)).toBe(JSON.stringify(value));
    expect((await store.state.get("s"))?.value).toBeUndefined();
    await store.state.set("plain", "just a string");
    expect((await store.state.get("plain"))?.value).toBe("just a string");
    // MariaDB's JSON check (like PostgreSQL's jsonb) refuses an escaped lone surrogate.
    const error = await store.state.set("lone", { t: "\uD83D" }).catch((e: unknown) => e);
    expect(isPatchbayError(error, "QUERY_FAILED")).toBe(true);
    expect((await store.state.get("lone"))?.value).toBeUndefined();
  });

  it("the store's sessions are in UTC whatever the URL's client time zone says", async () => {
    const u = new URL(db.config.url as string);
    u.searchParams.set("timezone", "+05:00");
    const s = mysql({ url: u.toString(), max: 2 });
    try {
      await s.open();
      const { rows } = await s.query<{ tz: string }>("SELECT @@session.time_zone AS tz");
      expect(rows[0]?.tz).toBe("+00:00");
    } finally {
      await s.close();
    }
  });

  it("a handler that swallows a deadlock of its ctx.tx and returns is never acked without its effect", async () => {
    await store.query("CREATE TABLE pair (id INT PRIMARY KEY, v INT NOT NULL)");
    await store.query("INSERT INTO pair (id, v) VALUES (1, 0), (2, 0)");
    await store.query("CREATE TABLE effects (event_id VARCHAR(255) NOT NULL)");
    await store.query("CREATE TABLE heavy (id INT PRIMARY KEY)");
    const b = bus();
    let runs = 0;
    let swallowed = 0;
    // The other side of the deadlock: holds row 2 and has written many rows, so InnoDB rolls
    // back the handler's (lighter) transaction as the victim.
    const other = await mysql2.createConnection({ uri: db.config.url as string });
    let otherLocked!: () => void;
    const otherReady = new Promise<void>((r) => (otherLocked = r));
    b.subscribe(Tick, { group: "deadlocks", retry: fastRetry }, async (e, ctx) => {
      runs++;
      await ctx.tx.query("INSERT INTO effects (event_id) VALUES (?)", [e.id]);
      await ctx.tx.query("UPDATE pair SET v = v + 1 WHERE id = 1");
      if (runs === 1) {
        await otherReady;
        // The other transaction now waits for row 1; this one asks for row 2: a deadlock.
        const waiting = other.query("UPDATE pair SET v = v + 1 WHERE id = 1");
        await new Promise((r) => setTimeout(r, 300));
        try {
          await ctx.tx.query("UPDATE pair SET v = v + 1 WHERE id = 2");
        } catch {
          swallowed++; // caught and carried on, as careless user code does
        }
        await waiting.catch(() => undefined);
        await other.query("COMMIT");
      }
    });
    try {
      await other.query("START TRANSACTION");
      for (let i = 0; i < 50; i++) await other.query("INSERT INTO heavy (id) VALUES (?)", [i]);
      await other.query("UPDATE pair SET v = v + 1 WHERE id = 2");
      otherLocked();
      await b.start();
      await b.publish(Tick, { n: 1 });
      await until(
        async () => (await count("SELECT COUNT(*) AS n FROM effects")) + (await b.deadLetters.count()) >= 1,
        30_000,
        "the event settled",
      );
      await new Promise((r) => setTimeout(r, 500));
      expect(swallowed).toBe(1);
      // The swallowed deadlock rolled back the first run's effect: a second run applied it.
      expect(await count("SELECT COUNT(*) AS n FROM effects")).toBe(1);
      expect(await b.deadLetters.count()).toBe(0);
      expect(runs).toBeGreaterThanOrEqual(2);
    } finally {
      await other.end();
    }
  });

  it("a handler whose connection is killed before COMMIT is not acked; its effect lands exactly once", async () => {
    await store.query("CREATE TABLE effects (event_id VARCHAR(255) NOT NULL)");
    const b = bus();
    let runs = 0;
    b.subscribe(Tick, { group: "killed", retry: fastRetry }, async (e, ctx) => {
      runs++;
      await ctx.tx.query("INSERT INTO effects (event_id) VALUES (?)", [e.id]);
      if (runs === 1) {
        const { rows } = await ctx.tx.query<{ id: unknown }>("SELECT CONNECTION_ID() AS id");
        await admin((c) => c.query(`KILL CONNECTION ${Number(rows[0]?.id)}`));
        // The client has seen its connection close: the next statement is refused without a code.
        await new Promise((r) => setTimeout(r, 300));
      }
      // returns normally: the COMMIT is what fails
    });
    await b.start();
    await b.publish(Tick, { n: 1 });
    await until(async () => (await count("SELECT COUNT(*) AS n FROM effects")) >= 1, 15_000, "the effect");
    await new Promise((r) => setTimeout(r, 1_000));
    expect(await count("SELECT COUNT(*) AS n FROM effects")).toBe(1);
    expect(runs).toBeGreaterThanOrEqual(2);
    expect(await b.deadLetters.count()).toBe(0);
    expect(await count(`SELECT COUNT(*) AS n FROM ${store.dialect.table("bus_jobs")}`)).toBe(0);
  });

  it("a handler that holds its ctx.tx longer than the lock wait timeout does not stall or double the others", async () => {
    await store.query("CREATE TABLE effects (event_id VARCHAR(255) NOT NULL, n INT NOT NULL)");
    const b = bus();
    const runs = new Map<number, number>();
    b.subscribe(Tick, { group: "slow", concurrency: 4, retry: fastRetry }, async (e, ctx) => {
      runs.set(e.data.n, (runs.get(e.data.n) ?? 0) + 1);
      await ctx.tx.query("SET SESSION innodb_lock_wait_timeout = 1");
      await ctx.tx.query("INSERT INTO effects (event_id, n) VALUES (?, ?)", [e.id, e.data.n]);
      if (e.data.n === 0) await new Promise((r) => setTimeout(r, 3_500)); // past the 2 s lease too
    });
    await b.start();
    for (let n = 0; n < 8; n++) await b.publish(Tick, { n });
    await until(async () => (await count("SELECT COUNT(*) AS n FROM effects")) === 8, 30_000, "8 effects");
    await new Promise((r) => setTimeout(r, 1_000));
    expect(await count("SELECT COUNT(*) AS n FROM effects")).toBe(8);
    expect(await count("SELECT COUNT(DISTINCT n) AS n FROM effects")).toBe(8);
    expect(await b.deadLetters.count()).toBe(0);
  });
});
