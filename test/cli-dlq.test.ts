/** `patchbay dlq` against a real SQLite store holding real dead letters. */
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { createEventBus } from "../src/bus/bus.js";
import { defineEvent } from "../src/core/events.js";
import { NonRetryableError } from "../src/core/errors.js";
import type { SqlStore } from "../src/store/sql-store.js";
import { until } from "./conformance/transport.js";
import { sqliteDatabase, type IsolatedDatabase } from "./support/stores.js";

const CLI = fileURLToPath(new URL("../src/cli/main.ts", import.meta.url));
const run = promisify(execFile);
const Ping = defineEvent("ping.sent", { version: 1, schema: z.object({ n: z.number() }) });

describe("patchbay dlq", () => {
  let db: IsolatedDatabase;
  let store: SqlStore;
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
    const bus = createEventBus({ store, events: [Ping] });
    bus.subscribe(Ping, { group: "pinger" }, () => {
      throw new NonRetryableError("no pings today");
    });
    await bus.start();
    for (let n = 0; n < 3; n++) await bus.publish(Ping, { n });
    await until(async () => (await bus.deadLetters.count()) === 3, 10_000, "3 dead letters");
    await bus.stop();
  });
  afterEach(async () => {
    await store.close();
    await db.cleanup();
  });

  it("lists, shows, replays and purges dead letters", async () => {
    const list = JSON.parse(await cli("dlq", "list", "--json")) as Array<{
      messageId: string;
      error: { code: string };
    }>;
    expect(list).toHaveLength(3);
    expect(list[0]!.error.code).toBe("NON_RETRYABLE");
    expect(await cli("dlq", "list")).toContain("no pings today");

    const shown = JSON.parse(await cli("dlq", "show", "pinger", list[0]!.messageId, "--json")) as {
      event: { data: unknown };
    };
    expect(shown.event.data).toEqual({ n: 0 });

    expect(await cli("dlq", "replay", "--id", list[0]!.messageId)).toContain("replayed 1 dead letter");
    const jobs = await store.query<{ n: number }>(
      `SELECT COUNT(*) AS n FROM ${store.dialect.table("bus_jobs")}`,
    );
    expect(Number(jobs.rows[0]!.n)).toBe(1);

    expect(await cli("dlq", "purge", "--all")).toContain("purged 2 dead letters");
    expect(JSON.parse(await cli("dlq", "list", "--json"))).toEqual([]);
  });

  it("refuses a replay or purge that names nothing", async () => {
    const error = await cli("dlq", "purge").catch((e: { code: number; stderr: string }) => e);
    expect(error).toMatchObject({ code: 2 });
    expect((error as { stderr: string }).stderr).toContain("--all");
  });
});
