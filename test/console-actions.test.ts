/**
 * The console's operator actions beyond dead letters and sagas, against real stores: rotating a
 * webhook endpoint's secret (the new one shown once), sending a test event that a real receiver
 * gets through the normal worker, resetting a circuit breaker, reading a pipeline's quarantined
 * rows. Each action works with the token, is refused without it and in read-only mode, and leaves
 * an audit row. The metrics an action moves (resolved sagas) and the pipeline cursor lag appear
 * in a scrape with the right values.
 */
/* eslint-disable @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-explicit-any --
   API answers are JSON read field by field in assertions; the assertions are the type check. */
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, inject, it } from "vitest";
import { sqlite, sqliteDestination, sqliteSource } from "../src/adapters/sqlite/index.js";
import { createMetrics, type PatchbayMetrics } from "../src/ops/metrics.js";
import { circuitBreaker, type CircuitBreakerPolicy } from "../src/resilience/breaker.js";
import { consecutive } from "../src/resilience/consecutive.js";
import type { SqlStore } from "../src/store/sql-store.js";
import { pipeline, type Pipeline } from "../src/sync/pipeline.js";
import { verifyWebhook } from "../src/webhooks/verify.js";
import { createWebhooks, type Webhooks } from "../src/webhooks/webhooks.js";
import { consoleApp, type ConsoleApp } from "./support/console-fixture.js";
import { postgresDatabase, sqliteDatabase, type IsolatedDatabase } from "./support/stores.js";

const { postgres: pg } = inject("services");

const TOKEN = "s3cret-token";
const ACTION = { "content-type": "application/json", "x-patchbay-console": "1" };
const AUTHORIZED = { ...ACTION, authorization: `Bearer ${TOKEN}` };

async function until(predicate: () => boolean | Promise<boolean>, ms: number, what: string) {
  const deadline = Date.now() + ms;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The value of one series in a scrape, or undefined. */
function sample(scrape: string, series: string): number | undefined {
  for (const line of scrape.split("\n")) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  }
  return undefined;
}

/** A webhook receiver on loopback that answers 200 and keeps every request. */
async function receiver() {
  const requests: Array<{ headers: IncomingHttpHeaders; body: string }> = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      requests.push({ headers: req.headers, body: Buffer.concat(chunks).toString("utf8") });
      res.end("ok");
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`,
    requests,
    close: () => new Promise((r) => server.close(r)),
  };
}

/** Calls the console's API (`path` below `api/`). */
function client(url: string) {
  return {
    async get(path: string) {
      const res = await fetch(`${url}api/${path}`);
      return { status: res.status, body: (await res.json()) as Record<string, any> };
    },
    async post(path: string, body: unknown, headers: Record<string, string> = AUTHORIZED) {
      const res = await fetch(`${url}api/${path}`, { method: "POST", headers, body: JSON.stringify(body) });
      return { status: res.status, body: (await res.json()) as Record<string, any> };
    },
  };
}

const adapters: Array<[string, () => IsolatedDatabase, boolean]> = [
  ["SQLite", sqliteDatabase, true],
  ["PostgreSQL", () => postgresDatabase(pg.url), pg.reachable],
];

for (const [name, makeDb, reachable] of adapters) {
  describe.skipIf(!reachable)(`console actions on ${name}`, () => {
    let db: IsolatedDatabase;
    let app: ConsoleApp;
    let webhooks: Webhooks;
    let hooks: Awaited<ReturnType<typeof receiver>>;
    let breaker: CircuitBreakerPolicy;
    let metrics: PatchbayMetrics;
    let api: ReturnType<typeof client>;
    let readOnly: ReturnType<typeof client>;

    beforeEach(async () => {
      db = makeDb();
      app = await consoleApp(db.make());
      webhooks = createWebhooks({ store: app.store, allow: ["127.0.0.1/32"], pollInterval: "50ms" });
      await webhooks.start();
      hooks = await receiver();
      breaker = circuitBreaker({ strategy: consecutive({ threshold: 1 }), halfOpenAfter: "1h" });
      metrics = createMetrics({ defaultMetrics: false });
      const parts = { webhooks, breakers: { payments: breaker } };
      api = client((await app.serve({ ...parts, token: TOKEN })).url);
      readOnly = client((await app.serve({ ...parts, token: TOKEN, readOnly: true })).url);
    });
    afterEach(async () => {
      metrics.close();
      await webhooks.stop({ timeout: "2s" });
      await hooks.close();
      await app.stop();
      await db.cleanup();
    });

    it("rotates an endpoint's secret: the new one is answered once, the old one signs through the grace, the audit row holds no secret", async () => {
      const endpoint = await webhooks.endpoints.create({ url: hooks.url, events: ["order.*"] });

      const none = await api.post("webhooks/rotate-secret", { endpointId: endpoint.id }, ACTION);
      expect(none.status).toBe(401);
      expect(none.body.code).toBe("CONSOLE_UNAUTHORIZED");
      const ro = await readOnly.post("webhooks/rotate-secret", { endpointId: endpoint.id });
      expect(ro.status).toBe(403);
      expect(ro.body.code).toBe("CONSOLE_READ_ONLY");
      expect((await webhooks.endpoints.secrets(endpoint.id)).current).toBe(endpoint.secret);

      const rotated = await api.post("webhooks/rotate-secret", { endpointId: endpoint.id, grace: "1h" });
      expect(rotated.status).toBe(200);
      const secret = rotated.body.secret as string;
      expect(secret).toMatch(/^whsec_/);
      expect(secret).not.toBe(endpoint.secret);
      const stored = await webhooks.endpoints.secrets(endpoint.id);
      expect(stored).toMatchObject({ current: secret, previous: endpoint.secret });
      expect(rotated.body.previousUntil).toBe(stored.previousUntil);
      expect(stored.previousUntil! - Date.now()).toBeGreaterThan(3_500_000);

      const bad = await api.post("webhooks/rotate-secret", { endpointId: endpoint.id, grace: "soon" });
      expect(bad.status).toBe(400);
      const missing = await api.post("webhooks/rotate-secret", { endpointId: "nope" });
      expect(missing.status).toBe(404);
      expect(missing.body.code).toBe("WEBHOOK_ENDPOINT_NOT_FOUND");

      // A test event after the rotation carries signatures of both secrets.
      const sent = await api.post("webhooks/test", { endpointId: endpoint.id });
      await until(() => hooks.requests.length === 1, 20_000, "the test event received");
      const request = hooks.requests[0]!;
      for (const key of [secret, endpoint.secret]) {
        const verified = verifyWebhook<{ type: string; data: unknown }>(key, request.headers, request.body);
        expect(verified.id).toBe(sent.body.messageId);
      }

      const audit = (await api.get("audit")).body.items as Array<Record<string, unknown>>;
      expect(audit.map((e) => [e.action, e.count, e.outcome, e.actor])).toEqual([
        ["webhooks.test", 1, "ok", "token"],
        ["webhooks.rotate-secret", 0, "WEBHOOK_ENDPOINT_NOT_FOUND", "token"],
        ["webhooks.rotate-secret", 1, "ok", "token"],
      ]);
      expect(audit[2]!.target).toEqual({ endpointId: endpoint.id, grace: "1h" });
      expect(JSON.stringify(audit)).not.toContain(secret);
    });

    it("sends a test event through the worker, whatever the endpoint's filters; its attempt is in the log", async () => {
      const endpoint = await webhooks.endpoints.create({ url: hooks.url, events: ["order.paid"] });
      expect((await api.post("webhooks/test", { endpointId: endpoint.id }, ACTION)).status).toBe(401);
      expect((await readOnly.post("webhooks/test", { endpointId: endpoint.id })).body.code).toBe(
        "CONSOLE_READ_ONLY",
      );
      expect(hooks.requests).toHaveLength(0);

      const sent = await api.post("webhooks/test", { endpointId: endpoint.id });
      expect(sent.status).toBe(200);
      const messageId = sent.body.messageId as string;
      await until(() => hooks.requests.length === 1, 20_000, "the test event received");
      const { payload } = verifyWebhook<{ type: string; data: unknown }>(
        endpoint.secret,
        hooks.requests[0]!.headers,
        hooks.requests[0]!.body,
      );
      expect(payload).toMatchObject({
        type: "patchbay.webhook.test",
        data: { endpointId: endpoint.id, test: true },
      });
      await until(
        async () => (await webhooks.deliveries.get(endpoint.id, messageId))?.status === "delivered",
        20_000,
        "the delivery recorded",
      );
      const attempts = await api.get(`webhooks/attempts?endpoint=${endpoint.id}&message=${messageId}`);
      expect(attempts.body.items).toHaveLength(1);
      expect(attempts.body.items[0]).toMatchObject({ attempt: 1, outcome: "succeeded", status: 200 });

      const missing = await api.post("webhooks/test", { endpointId: "nope" });
      expect(missing.status).toBe(404);
      const audit = (await api.get("audit")).body.items as Array<Record<string, unknown>>;
      expect(audit.map((e) => [e.action, e.count, e.outcome])).toEqual([
        ["webhooks.test", 0, "WEBHOOK_ENDPOINT_NOT_FOUND"],
        ["webhooks.test", 1, "ok"],
      ]);
      expect(audit[1]!.target).toEqual({ endpointId: endpoint.id });
    });

    it("resets a breaker given to the console; shows breakers other processes saved; the metric follows", async () => {
      const stop = metrics.trackBreaker("payments", breaker);
      await breaker.execute(() => Promise.reject(new Error("down"))).catch(() => undefined);
      expect(breaker.state).toBe("open");
      await app.store.state.set("breaker/inventory", { version: 1, state: "open", openUntil: 1, counts: {} });

      const list = await api.get("breakers");
      expect(list.body.breakers).toEqual([
        expect.objectContaining({ name: "inventory", state: "open", resettable: false }),
        expect.objectContaining({ name: "payments", state: "open", resettable: true }),
      ]);
      const overview = await api.get("overview");
      expect(overview.body.attention).toContainEqual({
        what: "circuit breakers not closed",
        count: 2,
        link: "#/breakers",
      });

      expect((await api.post("breakers/reset", { name: "payments" }, ACTION)).status).toBe(401);
      expect((await readOnly.post("breakers/reset", { name: "payments" })).body.code).toBe(
        "CONSOLE_READ_ONLY",
      );
      expect(breaker.state).toBe("open");
      const other = await api.post("breakers/reset", { name: "inventory" });
      expect(other.status).toBe(404);
      expect(other.body.code).toBe("CONSOLE_NOT_FOUND");
      expect((await api.post("breakers/reset", { name: "toString" })).status).toBe(404);

      const reset = await api.post("breakers/reset", { name: "payments" });
      expect(reset.body).toEqual({ count: 1, before: "open", state: "closed" });
      expect(breaker.state).toBe("closed");
      expect(await breaker.execute(() => Promise.resolve("up"))).toBe("up");
      const text = await metrics.scrape();
      expect(sample(text, 'patchbay_circuit_breaker_state{breaker="payments",state="closed"}')).toBe(1);
      expect(sample(text, 'patchbay_circuit_breaker_state{breaker="payments",state="open"}')).toBe(0);
      stop();

      const audit = (await api.get("audit")).body.items as Array<Record<string, unknown>>;
      expect(audit.map((e) => [e.action, e.target, e.count, e.outcome])).toEqual([
        ["breakers.reset", { name: "payments" }, 1, "ok"],
      ]);
    });

    it("counts sagas an operator resolves, one and in bulk, by saga name", async () => {
      await app.failSagas(["r-1", "r-2", "r-3"]);
      const series = 'patchbay_saga_resolved_total{saga="order"}';
      expect(sample(await metrics.scrape(), series)).toBeUndefined();
      const one = await api.post("sagas/resolve", { id: "r-1", note: "refunded by hand" });
      expect(one.body.saga.status).toBe("resolved");
      expect(sample(await metrics.scrape(), series)).toBe(1);
      // Refused actions count nothing.
      expect((await readOnly.post("sagas/resolve", { id: "r-2" })).status).toBe(403);
      expect((await api.post("sagas/resolve", { id: "r-1" })).status).toBe(409);
      expect(sample(await metrics.scrape(), series)).toBe(1);
      const bulk = await api.post("sagas/resolve", {
        filter: { status: "failed", name: "order" },
        note: "x",
      });
      expect(bulk.body).toMatchObject({ matched: 2, count: 2 });
      expect(sample(await metrics.scrape(), series)).toBe(3);
    });
  });
}

describe("console: a pipeline's quarantined rows; metrics: its cursor lag", () => {
  let dir: string;
  let store: SqlStore;
  let copy: Pipeline;
  let metrics: PatchbayMetrics;
  let api: ReturnType<typeof client>;
  let close: () => Promise<void>;
  const hourAgo = Date.now() - 3_600_000;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), "patchbay-console-sync-"));
    store = sqlite({ file: join(dir, "app.db") });
    await store.open();
    const data = sqlite({ file: join(dir, "data.db") });
    await data.open();
    await data.query(
      "CREATE TABLE src (id INTEGER PRIMARY KEY, name TEXT NOT NULL, updated_at TEXT NOT NULL)",
    );
    for (let i = 1; i <= 5; i++) {
      // The newest row was written an hour ago (ISO text without an offset, as SQLite keeps it: UTC).
      const at = new Date(hourAgo - (5 - i) * 60_000).toISOString().replace("T", " ").replace("Z", "");
      await data.query(
        `INSERT INTO src (id, name, updated_at) VALUES (${i}, '${i % 2 ? "ok" : "bad"}', '${at}')`,
      );
    }
    await data.close();
    copy = pipeline("copy_src", {
      store,
      source: sqliteSource({
        file: join(dir, "data.db"),
        table: "src",
        cursor: "updated_at",
        key: "id",
        safetyLag: 0,
      }),
      destination: sqliteDestination({ file: join(dir, "copy.db"), table: "dst", key: "id" }),
      mode: "incremental",
      drift: "evolve",
      transform: (row) => {
        if (row.name === "bad") throw new Error(`row ${String(row.id)} is bad`);
        return row;
      },
    });
    metrics = createMetrics({ defaultMetrics: false });
    const served = await consoleApp(store).then(async (app) => {
      const s = await app.serve({ pipelines: [copy], token: TOKEN });
      return { ...s, app };
    });
    api = client(served.url);
    close = async () => {
      await served.app.stop();
    };
  });
  afterEach(async () => {
    metrics.close();
    await copy.close();
    await close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("lists the quarantined rows newest first, paged by id, and reports the cursor lag until a reset", async () => {
    const before = await api.get("pipelines/quarantine?name=copy_src");
    expect(before.body).toEqual({ name: "copy_src", readable: true, items: [] });
    const report = await copy.run();
    expect(report.rowsQuarantined).toBe(2);

    const page = await api.get("pipelines/quarantine?name=copy_src&limit=1");
    expect(page.body.items).toHaveLength(1);
    expect(page.body.items[0]).toMatchObject({
      reason: "transform",
      error: { message: "row 4 is bad" },
      row: { id: 4, name: "bad" },
      runId: report.id,
    });
    const rest = await api.get(`pipelines/quarantine?name=copy_src&limit=1&before=${page.body.next}`);
    expect(rest.body.items[0].row).toMatchObject({ id: 2 });
    expect((await api.get("pipelines/quarantine?name=elsewhere")).status).toBe(404);

    const lag = () =>
      metrics.scrape().then((t) => sample(t, 'patchbay_pipeline_cursor_lag_seconds{pipeline="copy_src"}'));
    const seconds = await lag();
    expect(seconds).toBeGreaterThanOrEqual(3600);
    expect(seconds).toBeLessThan(3600 + 120);

    await api.post("pipelines/reset", { name: "copy_src" });
    expect(await lag()).toBeUndefined();
  });

  it("runs a pipeline now and resets its checkpoint: the next run reads every row again; audited", async () => {
    const first = await api.post("pipelines/run", { name: "copy_src" });
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({
      count: 3,
      report: { status: "succeeded", rowsRead: 5, rowsWritten: 3 },
    });
    const again = await api.post("pipelines/run", { name: "copy_src" });
    expect(again.body.report).toMatchObject({ status: "succeeded", rowsRead: 0 });
    const held = (await api.get("pipelines")).body;
    expect(held.pipelines[0].checkpoint).toBeTruthy();
    expect((held.runs as Array<{ status: string }>).map((r) => r.status)).toEqual(["succeeded", "succeeded"]);

    expect((await api.post("pipelines/reset", { name: "copy_src" })).body).toEqual({ count: 1 });
    expect((await api.get("pipelines")).body.pipelines[0].checkpoint ?? null).toBeNull();
    const fromStart = await api.post("pipelines/run", { name: "copy_src" });
    expect(fromStart.body.report).toMatchObject({ status: "succeeded", rowsRead: 5 });

    expect((await api.post("pipelines/run", { name: "nowhere" })).status).toBe(404);
    const audit = (await api.get("audit")).body.items as Array<Record<string, unknown>>;
    expect(audit.map((e) => [e.action, e.target, e.count, e.outcome])).toEqual([
      ["pipelines.run", { name: "copy_src" }, 3, "ok"], // newest first: every row written again
      ["pipelines.reset", { name: "copy_src" }, 1, "ok"],
      ["pipelines.run", { name: "copy_src" }, 0, "ok"],
      ["pipelines.run", { name: "copy_src" }, 3, "ok"],
    ]);
  });
});
