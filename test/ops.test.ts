/**
 * Operations: the Prometheus scrape of a running Patchbay with traffic (checked by promtool),
 * /healthz and /readyz through opsHandler on a real HTTP server.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { z } from "zod";
import { sqlite, sqliteDestination, sqliteSource } from "../src/adapters/sqlite/index.js";
import { defineEvent } from "../src/core/events.js";
import { NonRetryableError } from "../src/core/errors.js";
import { silentLogger } from "../src/core/logger.js";
import { httpClient } from "../src/http/client.js";
import { opsHandler } from "../src/ops/health-handler.js";
import { createPatchbay, type Patchbay } from "../src/patchbay.js";
import { until } from "./conformance/transport.js";
import { hasPromtool, promtool, promtoolRequired, sayPromtoolMissing } from "./support/promtool.js";
import { isolatedBroker } from "./support/rabbitmq.js";
import { postgresDatabase } from "./support/stores.js";

const { postgres: pgService, rabbitmq: amqpService } = inject("services");

const OrderPlaced = defineEvent("order.placed", { version: 1, schema: z.object({ n: z.number() }) });

/** The value of one series in a scrape, or undefined. */
function sample(scrape: string, series: string): number | undefined {
  for (const line of scrape.split("\n")) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  }
  return undefined;
}

describe("ops: metrics and health of a running Patchbay", () => {
  let dir: string;
  let pb: Patchbay;
  let server: Server;
  let base: string;
  let upstream: Server;
  const handled: number[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "patchbay-ops-"));
    pb = createPatchbay({
      store: sqlite({ file: join(dir, "app.db") }),
      logger: silentLogger,
      localTransport: { pollInterval: "100ms" },
    });
    pb.subscribe(OrderPlaced, { group: "billing", retry: { attempts: 1 } }, (event) => {
      if (event.data.n % 5 === 0) throw new NonRetryableError(`order ${event.data.n} is poison`);
      handled.push(event.data.n);
    });
    const checkout = pb.saga<{ ok: boolean }>("checkout", {
      version: 1,
      steps: [
        { name: "reserve", run: () => "r", compensate: () => undefined },
        {
          name: "charge",
          run: (input) => {
            if (!input.ok) throw new NonRetryableError("card declined");
          },
        },
      ],
    });
    const copy = pb.pipeline("copy_people", {
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
    const ops = opsHandler(pb);
    server = createServer((req, res) => ops(req, res));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    upstream = createServer((req, res) => {
      res.statusCode = req.url === "/down" ? 503 : 200;
      res.end("{}");
    });
    await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", r));

    // Not started yet: not ready.
    const before = await fetch(`${base}/readyz`);
    expect(before.status).toBe(503);

    await pb.start();
    await pb.store.query("CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT NOT NULL)");
    await pb.store.query("INSERT INTO people (id, name) VALUES (1, 'Ada'), (2, 'Grace'), (3, 'Edsger')");
    // A group bound but never consumed: its queue grows (depth and oldest age).
    await pb.bus.transport.bind("backlog", ["order.*"]);
    for (let n = 1; n <= 10; n++) await pb.publish(OrderPlaced, { n });
    await until(() => handled.length === 8, 20_000, "8 orders billed");
    await until(
      async () => (await pb.bus.deadLetters.count({ group: "billing" })) === 2,
      20_000,
      "2 dead letters",
    );
    await checkout.start({ ok: true }, { id: "c-1" });
    await checkout.start({ ok: false }, { id: "c-2" });
    expect((await pb.sagas.wait("c-1")).status).toBe("completed");
    expect((await pb.sagas.wait("c-2")).status).toBe("compensated");
    expect((await copy.run()).status).toBe("succeeded");
    const client = httpClient({ baseUrl: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}` });
    await client.get("/up");
    await expect(client.get("/down")).rejects.toThrow();
  }, 60_000);

  afterAll(async () => {
    await new Promise((r) => server?.close(r));
    await new Promise((r) => upstream?.close(r));
    await pb?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("counts bus traffic per consumer group and reads queue depth and dead letters from the store", async () => {
    const res = await fetch(`${base}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    expect(sample(text, 'patchbay_bus_published_total{messaging_destination_name="order.placed"}')).toBe(10);
    expect(sample(text, 'patchbay_bus_delivered_total{messaging_consumer_group_name="billing"}')).toBe(10);
    expect(sample(text, 'patchbay_bus_dead_lettered_total{messaging_consumer_group_name="billing"}')).toBe(2);
    expect(sample(text, 'patchbay_bus_dead_letters{messaging_consumer_group_name="billing"}')).toBe(2);
    expect(
      sample(text, 'patchbay_bus_handler_duration_seconds_count{messaging_consumer_group_name="billing"}'),
    ).toBe(8); // handlers that succeeded
    expect(
      sample(text, 'patchbay_bus_acked_total{messaging_consumer_group_name="billing",duplicate="false"}'),
    ).toBe(8);
    expect(sample(text, 'patchbay_bus_queue_depth{messaging_consumer_group_name="backlog"}')).toBe(10);
    // A bound group with nothing waiting has its series at 0 (a dashboard shows 0, not "no data").
    expect(sample(text, 'patchbay_bus_queue_depth{messaging_consumer_group_name="billing"}')).toBe(0);
    expect(
      sample(text, 'patchbay_bus_queue_oldest_age_seconds{messaging_consumer_group_name="billing"}'),
    ).toBe(0);
    expect(sample(text, 'patchbay_bus_dead_letters{messaging_consumer_group_name="backlog"}')).toBe(0);
    expect(sample(text, 'patchbay_bus_group_paused{messaging_consumer_group_name="billing"}')).toBe(0);
    expect(
      sample(text, 'patchbay_bus_queue_oldest_age_seconds{messaging_consumer_group_name="backlog"}'),
    ).toBeGreaterThanOrEqual(0);
    expect(text).toMatch(/^process_cpu_seconds_total \d/m);
    expect(text).not.toMatch(/^patchbay_metrics_store_errors_total\{/m);
    // No message ids in labels: every series' labels come from a small set of names.
    expect(text).not.toMatch(/[0-9a-f]{8}-[0-9a-f]{4}-7/);
  });

  it("counts sagas by outcome, step durations, pipeline rows and runs, HTTP client requests and breakers", async () => {
    const text = await (await fetch(`${base}/metrics`)).text();
    expect(sample(text, 'patchbay_saga_started_total{saga="checkout"}')).toBe(2);
    expect(sample(text, 'patchbay_saga_completed_total{saga="checkout"}')).toBe(1);
    expect(sample(text, 'patchbay_saga_compensated_total{saga="checkout"}')).toBe(1);
    expect(sample(text, 'patchbay_saga_instances{saga="checkout",status="completed"}')).toBe(1);
    expect(
      sample(
        text,
        'patchbay_saga_step_duration_seconds_count{saga="checkout",step="charge",phase="run",status="failed"}',
      ),
    ).toBe(1);
    expect(sample(text, 'patchbay_pipeline_rows_read_total{pipeline="copy_people"}')).toBe(3);
    expect(sample(text, 'patchbay_pipeline_rows_written_total{pipeline="copy_people"}')).toBe(3);
    expect(sample(text, 'patchbay_pipeline_runs_total{pipeline="copy_people",status="succeeded"}')).toBe(1);
    const lastSuccess = sample(
      text,
      'patchbay_pipeline_last_success_timestamp_seconds{pipeline="copy_people"}',
    );
    expect(Math.abs((lastSuccess ?? 0) - Date.now() / 1000)).toBeLessThan(120);
    const host = `127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    expect(
      sample(
        text,
        `patchbay_http_client_requests_total{server_address="${host}",http_request_method="GET",outcome="success"}`,
      ),
    ).toBe(1);
    expect(
      sample(
        text,
        `patchbay_http_client_requests_total{server_address="${host}",http_request_method="GET",outcome="error"}`,
      ),
    ).toBe(1);
    expect(
      sample(text, `patchbay_http_client_retries_total{server_address="${host}",http_request_method="GET"}`),
    ).toBe(2);
    expect(sample(text, `patchbay_circuit_breaker_state{breaker="http:${host}",state="closed"}`)).toBe(1);
  });

  it("answers /healthz and /readyz with JSON detail", async () => {
    const live = await fetch(`${base}/healthz`);
    expect(live.status).toBe(200);
    expect(await live.json()).toMatchObject({ status: "ok", pid: process.pid });
    const ready = await fetch(`${base}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({
      status: "ready",
      checks: {
        store: { ok: true, dialect: "sqlite" },
        transport: { ok: true, name: "local (sqlite)" },
        workers: { ok: true, state: "started" },
      },
    });
    expect((await fetch(`${base}/nothing`)).status).toBe(404);
    expect((await fetch(`${base}/metrics`, { method: "POST" })).status).toBe(405);
  });

  it.skipIf(!hasPromtool && !promtoolRequired)("the scrape passes promtool check metrics", async () => {
    const text = await (await fetch(`${base}/metrics`)).text();
    const r = promtool(["check", "metrics"], text);
    expect(r.output).toBe("");
    expect(r.status).toBe(0);
  });
});

describe.skipIf(!pgService.reachable)("ops on PostgreSQL", () => {
  it("reads queue depth, dead letters, sagas and endpoints from a PostgreSQL store at scrape time", async () => {
    const db = postgresDatabase(pgService.url);
    const pb = createPatchbay({ store: db.make(), logger: silentLogger });
    try {
      pb.subscribe(OrderPlaced, { group: "pg_billing", retry: { attempts: 1 } }, () => {
        throw new NonRetryableError("always poison");
      });
      const saga = pb.saga<{ n: number }>("pg_saga", { version: 1, steps: [{ name: "only", run: () => 1 }] });
      await pb.start();
      await pb.bus.transport.bind("pg_backlog", ["order.*"]);
      await pb.publish(OrderPlaced, { n: 1 });
      await saga.start({ n: 1 }, { id: "s-1" });
      await pb.sagas.wait("s-1");
      await pb.bus.pause("pg_backlog", { by: "ops test" });
      await until(
        async () => (await pb.bus.deadLetters.count({ group: "pg_billing" })) === 1,
        20_000,
        "a dead letter",
      );
      const text = await pb.metrics().scrape();
      expect(text).not.toMatch(/^patchbay_metrics_store_errors_total\{/m);
      expect(sample(text, 'patchbay_bus_queue_depth{messaging_consumer_group_name="pg_backlog"}')).toBe(1);
      expect(sample(text, 'patchbay_bus_dead_letters{messaging_consumer_group_name="pg_billing"}')).toBe(1);
      expect(sample(text, 'patchbay_bus_group_paused{messaging_consumer_group_name="pg_backlog"}')).toBe(1);
      expect(sample(text, 'patchbay_bus_group_paused{messaging_consumer_group_name="pg_billing"}')).toBe(0);
      expect(sample(text, 'patchbay_saga_instances{saga="pg_saga",status="completed"}')).toBe(1);
      expect((await pb.health()).status).toBe("ready");
      if (hasPromtool || promtoolRequired)
        expect(promtool(["check", "metrics"], text)).toEqual({ status: 0, output: "" });
    } finally {
      await pb.stop();
      await db.cleanup();
    }
  }, 60_000);
});

describe.skipIf(!amqpService.reachable)("ops on RabbitMQ", () => {
  it("/readyz reports the broker's connection: not connected before start, connected after", async () => {
    const dir = mkdtempSync(join(tmpdir(), "patchbay-ops-amqp-"));
    const broker = isolatedBroker(amqpService.url);
    const pb = createPatchbay({
      store: sqlite({ file: join(dir, "app.db") }),
      transport: broker.make(),
      logger: silentLogger,
    });
    try {
      pb.subscribe(OrderPlaced, { group: "amqp_billing" }, () => undefined);
      const before = await pb.health();
      expect(before.checks.transport.ok).toBe(false);
      expect(before.checks.transport.detail).toMatch(/not connected to RabbitMQ/);
      await pb.start();
      const after = await pb.health();
      expect(after.status).toBe("ready");
      expect(after.checks.transport.ok).toBe(true);
      expect(after.checks.transport.name).toMatch(/^rabbitmq/);
      expect(after.checks.transport.detail).toBeUndefined();
      // The queue lives in the broker: no depth gauge read from the store.
      expect(await pb.metrics().scrape()).not.toMatch(/^patchbay_bus_queue_depth/m);
    } finally {
      await pb.stop();
      await broker.cleanup();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});

sayPromtoolMissing();
