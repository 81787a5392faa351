/**
 * The filters behind operator actions (dead letters, sagas) given values the database cannot
 * hold or that mean nothing: a typed `INVALID_ARGUMENT`, the same on every store — never a
 * driver error on one store and a silent "nothing matched" on another.
 */
import { execFile } from "node:child_process";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterEach, beforeEach, describe, expect, inject, it } from "vitest";
import { createDeadLetters } from "../src/bus/dead-letters.js";
import { localTransport } from "../src/bus/local-transport.js";
import { createConsole } from "../src/ops/console.js";
import { createSagaRunner } from "../src/saga/runner.js";
import type { SqlStore } from "../src/store/sql-store.js";
import { postgresDatabase, sqliteDatabase, type IsolatedDatabase } from "./support/stores.js";

const { postgres: pg } = inject("services");
const CLI = fileURLToPath(new URL("../src/cli/main.ts", import.meta.url));
const run = promisify(execFile);

const adapters: Array<[string, () => IsolatedDatabase, boolean]> = [
  ["SQLite", sqliteDatabase, true],
  ["PostgreSQL", () => postgresDatabase(pg.url), pg.reachable],
];

const codeOf = async (p: Promise<unknown>) =>
  p.then(
    () => "resolved",
    (e: unknown) => (e as { code?: string }).code ?? String(e),
  );

for (const [name, makeDb, reachable] of adapters) {
  describe.skipIf(!reachable)(`operator filters given hostile values on ${name}`, () => {
    let db: IsolatedDatabase;
    let store: SqlStore;
    beforeEach(async () => {
      db = makeDb();
      store = db.make();
      await store.open();
      await createDeadLetters(store, localTransport(store)).add(store, {
        group: "g",
        messageId: "m-1",
        type: "ping.sent",
        key: undefined,
        body: "{}",
        headers: {},
        error: { code: "NON_RETRYABLE", message: "no" },
        attempts: 1,
        firstFailedAt: 1,
        lastFailedAt: 1,
      });
    });
    afterEach(async () => {
      await store.close();
      await db.cleanup();
    });

    it("refuses dead-letter times out of range, and leaves the letters alone", async () => {
      const letters = createDeadLetters(store, localTransport(store));
      for (const f of [{ before: 1e20 }, { since: -1e20 }, { before: 1.5 }, { since: Number.NaN }]) {
        expect({ f, list: await codeOf(letters.list(f)) }).toEqual({ f, list: "INVALID_ARGUMENT" });
        expect({ f, purge: await codeOf(letters.purge(f)) }).toEqual({ f, purge: "INVALID_ARGUMENT" });
        expect({ f, replay: await codeOf(letters.replay(f)) }).toEqual({ f, replay: "INVALID_ARGUMENT" });
      }
      expect(await letters.count()).toBe(1);
    });

    it("refuses saga filters that cannot match anything: unknown status, times of the wrong kind", async () => {
      const runner = createSagaRunner({ store });
      const bad: Array<Record<string, unknown>> = [
        { status: "faild" },
        { status: ["failed", "runing"] },
        { since: "1h" },
        { since: 1e20 },
        { before: "yesterday" },
        { name: 42 },
      ];
      for (const f of bad) {
        expect({ f, list: await codeOf(runner.list(f as never)) }).toEqual({ f, list: "INVALID_ARGUMENT" });
        expect({ f, count: await codeOf(runner.count(f as never)) }).toEqual({
          f,
          count: "INVALID_ARGUMENT",
        });
        expect({
          f,
          bulk: await codeOf(runner.bulk("resolve", { status: "failed", ...f } as never)),
        }).toEqual({
          f,
          bulk: "INVALID_ARGUMENT",
        });
      }
    });

    it("answers a CLI time too far back with a usage error, and a console one with a 400", async () => {
      const storeArgs =
        db.adapter === "sqlite"
          ? ["--sqlite", String(db.config.file)]
          : ["--pg", String(db.config.url), "--schema", String(db.config.schema)];
      const out = await run(process.execPath, [
        "--import",
        "tsx",
        CLI,
        "dlq",
        "purge",
        "--before",
        "99999999999w",
        ...storeArgs,
      ]).then(
        () => ({ code: 0, stderr: "" }),
        (e: { code: number; stderr: string }) => ({ code: e.code, stderr: e.stderr }),
      );
      expect(out.code).toBe(2);
      expect(out.stderr).toContain("--before");
      expect(out.stderr).toContain("INVALID_ARGUMENT");

      const handler = createConsole({ store });
      const server = createServer(handler);
      await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
      try {
        const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/`;
        for (const path of ["dead-letters?since=99999999999999999999", "sagas?since=99999999999999999999"]) {
          const res = await fetch(base + path);
          expect({ path, status: res.status }).toEqual({ path, status: 400 });
        }
      } finally {
        server.closeAllConnections();
        await new Promise((r) => server.close(r));
        await handler.close();
      }
      expect(await createDeadLetters(store, localTransport(store)).count()).toBe(1);
    });

    it.runIf(name === "PostgreSQL")(
      "refuses a --schema that holds no Patchbay tables instead of creating an empty store there",
      async () => {
        const typo = `${String(db.config.schema)}_typo`;
        for (const args of [
          ["dlq", "list"],
          ["dlq", "purge", "--all"],
          ["saga", "retry", "--status", "failed"],
        ]) {
          const out = await run(process.execPath, [
            "--import",
            "tsx",
            CLI,
            ...args,
            "--pg",
            String(db.config.url),
            "--schema",
            typo,
          ]).then(
            ({ stdout }) => ({ code: 0, stdout, stderr: "" }),
            (e: { code: number; stdout: string; stderr: string }) => e,
          );
          // Before: "no dead letters" / "purged 0" / "matched 0", exit 0, and 16 new tables.
          expect({ args, code: out.code, stdout: out.stdout }).toEqual({ args, code: 1, stdout: "" });
          expect(out.stderr).toContain("no Patchbay tables");
          expect(out.stderr).toContain("SCHEMA_OUTDATED");
        }
        const { rows } = await store.query<{ n: number }>(
          "SELECT COUNT(*) AS n FROM information_schema.schemata WHERE schema_name = $1",
          [typo],
        );
        const created = Number(rows[0]!.n);
        if (created > 0) await store.query(`DROP SCHEMA ${typo} CASCADE`);
        expect(created).toBe(0);
      },
    );
  });
}
