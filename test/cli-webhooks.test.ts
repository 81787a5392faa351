/** `patchbay webhooks` against a real SQLite store holding real endpoints, deliveries and attempts. */
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { createEventBus } from "../src/bus/bus.js";
import { defineEvent } from "../src/core/events.js";
import type { SqlStore } from "../src/store/sql-store.js";
import { createWebhooks, type WebhookDelivery, type WebhookEndpoint } from "../src/webhooks/index.js";
import { until } from "./conformance/transport.js";
import { sqliteDatabase, type IsolatedDatabase } from "./support/stores.js";

const CLI = fileURLToPath(new URL("../src/cli/main.ts", import.meta.url));
const run = promisify(execFile);
const Ping = defineEvent("ping.sent", { version: 1, schema: z.object({ n: z.number() }) });

describe("patchbay webhooks", () => {
  let db: IsolatedDatabase;
  let store: SqlStore;
  let endpointId: string;
  let messageId: string;
  const cli = async (...args: string[]) => {
    const { stdout } = await run(process.execPath, [
      "--import",
      "tsx",
      CLI,
      ...args,
      "--sqlite",
      String(db.config.file),
    ]);
    return stdout;
  };

  beforeEach(async () => {
    db = sqliteDatabase();
    store = db.make();
    const bus = createEventBus({ store });
    // No network: a resolver and connector of our own; every attempt gets a 500, one attempt only.
    const webhooks = createWebhooks({
      store,
      bus,
      retry: { delays: ["0s"] },
      resolver: () => Promise.resolve([{ address: "93.184.215.14", family: 4 }]),
      connector: () => Promise.resolve({ status: 500, headers: {}, body: "down for maintenance" }),
    });
    await bus.start();
    await webhooks.start();
    endpointId = (
      await webhooks.endpoints.create({ url: "https://hooks.example.com/in", events: ["ping.*"] })
    ).id;
    messageId = (await bus.publish(Ping, { n: 1 })).id;
    await until(async () => (await webhooks.deliveries.get(endpointId, messageId))?.status === "failed");
    await webhooks.stop();
    await bus.stop();
  }, 120_000);
  afterEach(async () => {
    await store.close();
    await db.cleanup();
  }, 120_000);

  it("lists endpoints and deliveries, shows the attempt log, recovers and replays", async () => {
    const endpoints = JSON.parse(await cli("webhooks", "endpoints", "--json")) as WebhookEndpoint[];
    expect(endpoints.map((e) => [e.id, e.url, e.status])).toEqual([
      [endpointId, "https://hooks.example.com/in", "enabled"],
    ]);
    expect(await cli("webhooks", "endpoints")).toContain("hooks.example.com");

    const failed = JSON.parse(
      await cli("webhooks", "deliveries", "--status", "failed", "--json"),
    ) as WebhookDelivery[];
    expect(failed.map((d) => [d.endpointId, d.messageId, d.lastStatus])).toEqual([
      [endpointId, messageId, 500],
    ]);
    const shown = await cli("webhooks", "deliveries", "show", endpointId, messageId);
    expect(shown).toContain("down for maintenance");
    expect(shown).toContain("WEBHOOK_HTTP_STATUS");

    expect(await cli("webhooks", "recover", endpointId, "--since", "1d")).toContain(
      "scheduled 1 failed delivery again",
    );
    expect(JSON.parse(await cli("webhooks", "deliveries", "--status", "pending", "--json"))).toHaveLength(1);
    expect(await cli("webhooks", "replay", messageId)).toContain("scheduled 1 delivery");
  }, 120_000);

  it("creates, disables, rotates and deletes endpoints", async () => {
    const created = JSON.parse(
      await cli(
        "webhooks",
        "endpoints",
        "create",
        "--url",
        "https://new.example.com/h",
        "--events",
        "a.*,b.c",
        "--json",
      ),
    ) as WebhookEndpoint & { secret: string };
    expect(created.secret).toMatch(/^whsec_/);
    expect(created.events).toEqual(["a.*", "b.c"]);
    expect(await cli("webhooks", "endpoints", "disable", created.id)).toContain("disabled");
    expect(await cli("webhooks", "endpoints", "--status", "disabled")).toContain("disabled (manual)");
    expect(await cli("webhooks", "endpoints", "rotate", created.id, "--grace", "1h")).toContain(
      "new secret: whsec_",
    );
    expect(await cli("webhooks", "endpoints", "delete", created.id)).toContain("deleted");
  }, 120_000);

  it("refuses a recover without --since, and SSRF-refused URLs", async () => {
    const missing = await cli("webhooks", "recover", endpointId).catch(
      (e: { code: number; stderr: string }) => e,
    );
    expect(missing).toMatchObject({ code: 2 });
    const refused = await cli("webhooks", "endpoints", "create", "--url", "http://10.0.0.1/h").catch(
      (e: { code: number; stderr: string }) => e,
    );
    expect(refused).toMatchObject({ code: 1 });
    expect((refused as { stderr: string }).stderr).toContain("WEBHOOK_ADDRESS_REFUSED");
  }, 120_000);
});
