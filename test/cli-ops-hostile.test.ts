/**
 * Operator commands given hostile or ambiguous input: each is refused with a usage error (exit 2)
 * and changes nothing, never applied to more (or other) rows than the operator named.
 */
import { execFile } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { createEventBus } from "../src/bus/bus.js";
import { groupPauses } from "../src/bus/pause.js";
import { defineEvent } from "../src/core/events.js";
import { NonRetryableError } from "../src/core/errors.js";
import type { SqlStore } from "../src/store/sql-store.js";
import { createWebhooks } from "../src/webhooks/index.js";
import { until } from "./conformance/transport.js";
import { sqliteDatabase, type IsolatedDatabase } from "./support/stores.js";

const CLI = fileURLToPath(new URL("../src/cli/main.ts", import.meta.url));
const run = promisify(execFile);
const Ping = defineEvent("ping.sent", { version: 1, schema: z.object({ n: z.number() }) });

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

describe("operator commands given hostile input", () => {
  let db: IsolatedDatabase;
  let store: SqlStore;
  /** Runs the CLI in a process whose local time zone is `tz`; resolves with its exit code and output. */
  const cli = async (tz: string, ...args: string[]): Promise<Outcome> => {
    try {
      const { stdout, stderr } = await run(
        process.execPath,
        ["--import", "tsx", CLI, ...args, "--sqlite", String(db.config.file)],
        { env: { ...process.env, TZ: tz } },
      );
      return { code: 0, stdout, stderr };
    } catch (e) {
      const { code, stdout, stderr } = e as Outcome;
      return { code, stdout, stderr };
    }
  };
  const count = async (table: string, where = "1 = 1") =>
    Number(
      (
        await store.query<{ n: number }>(
          `SELECT COUNT(*) AS n FROM ${store.dialect.table(table)} WHERE ${where}`,
        )
      ).rows[0]!.n,
    );

  beforeEach(() => {
    db = sqliteDatabase();
    store = db.make();
  });
  afterEach(async () => {
    await store.close();
    await db.cleanup();
  });

  const deadLetters = async (n: number) => {
    const bus = createEventBus({ store, events: [Ping] });
    bus.subscribe(Ping, { group: "pinger" }, () => {
      throw new NonRetryableError("no pings today");
    });
    await bus.start();
    for (let i = 0; i < n; i++) await bus.publish(Ping, { n: i });
    await until(async () => (await bus.deadLetters.count()) === n, 10_000, `${n} dead letters`);
    await bus.stop();
  };

  /** One endpoint and one message whose delivery failed (every attempt gets a 500). */
  const failedDelivery = async () => {
    const bus = createEventBus({ store });
    const webhooks = createWebhooks({
      store,
      bus,
      retry: { delays: ["0s"] },
      resolver: () => Promise.resolve([{ address: "93.184.215.14", family: 4 }]),
      connector: () => Promise.resolve({ status: 500, headers: {}, body: "down" }),
    });
    await bus.start();
    await webhooks.start();
    const endpointId = (
      await webhooks.endpoints.create({ url: "https://hooks.example.com/in", events: ["ping.*"] })
    ).id;
    const messageId = (await bus.publish(Ping, { n: 1 })).id;
    await until(async () => (await webhooks.deliveries.get(endpointId, messageId))?.status === "failed");
    await webhooks.stop();
    await bus.stop();
    return { endpointId, messageId, webhooks };
  };

  it("refuses --limit on dlq purge and replay instead of acting on every letter", async () => {
    await deadLetters(3);
    for (const args of [
      ["dlq", "purge", "--all", "--limit", "1"],
      ["dlq", "replay", "--group", "pinger", "--limit", "1"],
    ]) {
      const out = await cli("UTC", ...args);
      expect({ args, code: out.code, stdout: out.stdout }).toEqual({ args, code: 2, stdout: "" });
      expect(out.stderr).toContain("--limit");
      expect(out.stderr).not.toMatch(/\n\s+at /);
      expect(await count("bus_dead_letters")).toBe(3);
      expect(await count("bus_jobs")).toBe(0);
    }
  });

  it("refuses a dlq --before whose meaning depends on the local time zone", async () => {
    await deadLetters(3);
    // Far in the future in every zone: without an offset it purged all three, whatever was meant.
    for (const before of ["2099-01-01T00:00", "2099-01-01 00:00:00", "Jan 1 2099", "5", "yesterday"]) {
      const out = await cli("America/New_York", "dlq", "purge", "--before", before);
      expect({ before, code: out.code, stdout: out.stdout }).toEqual({ before, code: 2, stdout: "" });
      expect(out.stderr).toContain("--before");
      expect(await count("bus_dead_letters")).toBe(3);
    }
    // With an offset, or as a duration back from now, it is unambiguous and acts.
    expect(
      (await cli("America/New_York", "dlq", "purge", "--before", "2000-01-01T00:00:00Z")).stdout,
    ).toContain("purged 0 dead letters");
    expect(
      (await cli("Asia/Tokyo", "dlq", "purge", "--before", "2099-01-01T00:00:00+09:00")).stdout,
    ).toContain("purged 3 dead letters");
  });

  it("refuses a webhooks recover --since whose meaning depends on the local time zone", async () => {
    const { endpointId, messageId, webhooks } = await failedDelivery();
    // One minute before the message, written in UTC without saying so: in New York it reads as
    // five hours later (nothing recovered), in UTC as meant (one recovered) — the same command.
    const created = (await webhooks.deliveries.get(endpointId, messageId))!.createdAt;
    const local = new Date(created - 60_000).toISOString().slice(0, 16);
    for (const tz of ["America/New_York", "UTC"]) {
      const out = await cli(tz, "webhooks", "recover", endpointId, "--since", local);
      expect({ tz, code: out.code, stdout: out.stdout }).toEqual({ tz, code: 2, stdout: "" });
      expect(out.stderr).toContain("--since");
      expect(await count("webhook_deliveries", "status = 'failed'")).toBe(1);
    }
    const ok = await cli("America/New_York", "webhooks", "recover", endpointId, "--since", `${local}Z`);
    expect(ok.stdout).toContain("scheduled 1 failed delivery again");
  });

  it("refuses a webhooks status it does not know, and a recover of an endpoint that does not exist", async () => {
    const { endpointId } = await failedDelivery();
    // A typo must not read as "nothing failed" or "all recovered".
    for (const args of [
      ["webhooks", "deliveries", "--status", "faild"],
      ["webhooks", "endpoints", "--status", "enable"],
    ]) {
      const out = await cli("UTC", ...args);
      expect({ args, code: out.code, stdout: out.stdout }).toEqual({ args, code: 2, stdout: "" });
      expect(out.stderr).toContain("status");
    }
    const typo = await cli("UTC", "webhooks", "recover", `${endpointId}x`, "--since", "1d");
    expect({ code: typo.code, stdout: typo.stdout }).toEqual({ code: 1, stdout: "" });
    expect(typo.stderr).toContain("WEBHOOK_ENDPOINT_NOT_FOUND");
    expect(await count("webhook_deliveries", "status = 'failed'")).toBe(1);
    expect((await cli("UTC", "webhooks", "deliveries", "--status", "failed")).stdout).toContain(endpointId);
  });

  // A container often runs under a uid with no passwd entry (OpenShift, `docker run --user 12345`):
  // the operator must still be able to pause a group there.
  it.runIf(process.getuid?.() === 0)(
    "pauses and resumes a group from a process whose uid has no user name",
    async () => {
      await store.open();
      await store.close();
      const dir = dirname(dirname(String(db.config.file)));
      const open = (d: string) => {
        chmodSync(d, 0o777);
        for (const e of readdirSync(d, { withFileTypes: true })) {
          if (e.isDirectory()) open(join(d, e.name));
          else chmodSync(join(d, e.name), 0o666);
        }
      };
      open(dir);
      const as = (...args: string[]) =>
        run(process.execPath, ["--import", "tsx", CLI, ...args, "--sqlite", String(db.config.file)], {
          uid: 54321,
          gid: 54321,
        }).then(
          ({ stdout }) => ({ code: 0, stdout, stderr: "" }),
          (e: Outcome) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
        );
      const paused = await as("bus", "pause", "billing");
      expect(paused).toEqual({ code: 0, stdout: "group billing paused\n", stderr: "" });
      store = db.make();
      const list = await groupPauses(store).list();
      expect(list.map((p) => [p.group, p.by])).toEqual([["billing", "cli:uid 54321"]]);
      expect(await as("bus", "resume", "billing")).toMatchObject({
        code: 0,
        stdout: "group billing resumed\n",
      });
    },
  );

  it("refuses --store sqlite: with no path instead of opening (and creating) the default file", async () => {
    const cwd = mkdtempSync(join(tmpdir(), "patchbay-cwd-"));
    symlinkSync(fileURLToPath(new URL("../node_modules", import.meta.url)), join(cwd, "node_modules"));
    try {
      for (const args of [
        ["dlq", "list"],
        ["dlq", "purge", "--all"],
        ["saga", "list"],
      ]) {
        const out = await run(process.execPath, ["--import", "tsx", CLI, ...args, "--store", "sqlite:"], {
          cwd,
        }).then(
          ({ stdout }) => ({ code: 0, stdout }),
          (e: Outcome) => ({ code: e.code, stdout: e.stdout }),
        );
        // Before: "no dead letters" (exit 0) from an empty .patchbay/patchbay.db it had just made.
        expect({ args, ...out }).toEqual({ args, code: 2, stdout: "" });
      }
      expect(existsSync(join(cwd, ".patchbay"))).toBe(false);
    } finally {
      rmSync(cwd, { recursive: true, force: true });
    }
  });
});
