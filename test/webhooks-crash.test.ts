/**
 * Reliability: the sending process is SIGKILLed while requests are in flight; after a restart,
 * every message is delivered, the interrupted attempts are logged with an unknown outcome, and
 * nothing is lost.
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, inject, it } from "vitest";
import { z } from "zod";
import { createEventBus } from "../src/bus/bus.js";
import { defineEvent } from "../src/core/events.js";
import { createWebhooks } from "../src/webhooks/index.js";
import { until } from "./conformance/transport.js";
import { mysqlDatabase, postgresDatabase, sqliteDatabase, type IsolatedDatabase } from "./support/stores.js";
import { startReceiver } from "./support/webhook-receiver.js";

const { postgres: pg, mysql: maria } = inject("services");
const CHILD = fileURLToPath(new URL("./fixtures/webhooks-sender.ts", import.meta.url));
const EVENTS = 20;
const Ping = defineEvent("ping.sent", { version: 1, schema: z.object({ n: z.number() }) });

function startSender(db: IsolatedDatabase) {
  const proc = spawn(
    process.execPath,
    ["--import", "tsx", CHILD, JSON.stringify({ adapter: db.adapter, config: db.config })],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  let output = "";
  proc.stdout.on("data", (d: Buffer) => (output += d.toString()));
  proc.stderr.on("data", (d: Buffer) => (output += d.toString()));
  const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
  return { proc, exited, output: () => output };
}

const cases: Array<[string, () => IsolatedDatabase]> = [["SQLite", sqliteDatabase]];
if (pg.reachable) cases.push(["PostgreSQL", () => postgresDatabase(pg.url)]);
if (maria.reachable) cases.push(["MariaDB", () => mysqlDatabase(maria.url)]);
else
  describe("on MariaDB", () =>
    it.skip(`skipped: MariaDB unreachable at ${maria.where} (${maria.error}); set PATCHBAY_MYSQL_URL`, () => {}));

for (const [name, makeDb] of cases) {
  describe(`webhook sender crash on ${name}`, () => {
    it("SIGKILL with 4 requests in flight: after a restart all 20 are delivered, the cut attempts logged as unknown", async () => {
      const db = makeDb();
      const store = db.make();
      const receiver = await startReceiver();
      const senders: Array<ReturnType<typeof startSender>> = [];
      try {
        await store.open();
        const admin = createWebhooks({ store, allow: ["127.0.0.1/32"] });
        const endpoint = await admin.endpoints.create({ url: receiver.url, concurrency: 4 });
        receiver.hold = true;

        const first = startSender(db);
        senders.push(first);
        await until(() => first.output().includes("started"), 30_000, `sender start (${first.output()})`);
        const bus = createEventBus({ store });
        const ids: string[] = [];
        for (let n = 0; n < EVENTS; n++) ids.push((await bus.publish(Ping, { n })).id);

        await until(() => receiver.active === 4, 30_000, `4 requests in flight (${first.output()})`);
        first.proc.kill("SIGKILL");
        await first.exited;
        const cut = receiver.requests.map((r) => String(r.headers["webhook-id"]));
        expect(cut).toHaveLength(4);
        receiver.hold = false;
        receiver.release();
        const beforeRestart = receiver.requests.length;

        const second = startSender(db);
        senders.push(second);
        await until(
          async () =>
            (await admin.deliveries.list({ endpointId: endpoint.id, status: "delivered" })).length === EVENTS,
          60_000,
          `all delivered (${second.output()})`,
        );
        const received = new Set(
          receiver.requests.slice(beforeRestart).map((r) => String(r.headers["webhook-id"])),
        );
        expect([...received].sort()).toEqual([...ids].sort());
        for (const id of cut) {
          const attempts = await admin.deliveries.attempts(endpoint.id, id);
          expect(attempts.map((a) => a.outcome)).toEqual(["unknown", "succeeded"]);
          expect(attempts[0]!.error).toMatchObject({ code: "WEBHOOK_LEASE_EXPIRED" });
        }
        const others = ids.filter((id) => !cut.includes(id));
        for (const id of others) {
          expect((await admin.deliveries.attempts(endpoint.id, id)).map((a) => a.outcome)).toEqual([
            "succeeded",
          ]);
        }
      } finally {
        for (const s of senders) {
          s.proc.kill("SIGKILL");
          await s.exited;
        }
        await receiver.close();
        await store.close();
        await db.cleanup();
      }
    }, 120_000);
  });
}
