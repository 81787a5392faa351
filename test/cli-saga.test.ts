/** `patchbay saga` against a real SQLite store holding real saga instances. */
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterEach, beforeEach, describe, expect, inject, it } from "vitest";
import { NonRetryableError } from "../src/core/errors.js";
import { defineSaga } from "../src/saga/definition.js";
import { createSagaRunner, type SagaRunner } from "../src/saga/runner.js";
import type { SqlStore } from "../src/store/sql-store.js";
import { postgresDatabase, sqliteDatabase, type IsolatedDatabase } from "./support/stores.js";

const CLI = fileURLToPath(new URL("../src/cli/main.ts", import.meta.url));
const CONFIG = fileURLToPath(new URL("./fixtures/saga-config.ts", import.meta.url));
const run = promisify(execFile);

describe("patchbay saga", () => {
  let db: IsolatedDatabase;
  let store: SqlStore;
  let runner: SagaRunner;
  let refundWorks = false;
  const undone: string[] = [];
  const order = defineSaga("order", {
    version: 1,
    compensateRetry: { maxAttempts: 1 },
    steps: [
      { name: "reserve", run: () => "R", compensate: (_r, ctx) => void undone.push(`${ctx.sagaId}:reserve`) },
      {
        name: "charge",
        run: () => ({ charge: "C" }),
        compensate: (_r, ctx) => {
          if (!refundWorks) throw new Error("refund API down");
          undone.push(`${ctx.sagaId}:charge`);
        },
      },
      { name: "ship", run: () => Promise.reject(new NonRetryableError("no courier")) },
    ],
  });
  const cli = async (...args: string[]) => {
    const { stdout } = await run(process.execPath, ["--import", "tsx", CLI, ...args, "--config", CONFIG], {
      env: { ...process.env, PATCHBAY_TEST_SAGA_DB: String(db.config.file) },
    });
    return stdout;
  };

  beforeEach(async () => {
    refundWorks = false;
    undone.length = 0;
    db = sqliteDatabase();
    store = db.make();
    runner = createSagaRunner({ store, sagas: [order], pollInterval: 20 });
    await runner.start();
    for (const id of ["o-1", "o-2", "o-3"]) await runner.saga(order).start({ orderId: id }, { id });
    for (const id of ["o-1", "o-2", "o-3"]) expect((await runner.wait(id)).status).toBe("failed");
    await runner.stop();
  });
  afterEach(async () => {
    await runner.stop();
    await store.close();
    await db.cleanup();
  });

  it("lists and shows stuck sagas, then retries, skips and resolves them", async () => {
    const listed = JSON.parse(await cli("saga", "list", "--status", "failed", "--json")) as Array<{
      id: string;
    }>;
    expect(listed.map((i) => i.id).sort()).toEqual(["o-1", "o-2", "o-3"]);
    const table = await cli("saga", "list", "--name", "order");
    expect(table).toContain("compensate charge: Error: refund API down");
    expect(table.trim().split("\n")).toHaveLength(4);

    const shown = await cli("saga", "show", "o-1");
    expect(shown).toContain("FAILED");
    expect(shown).toMatch(/run\s+ship\s+failed\s+1\s+NON_RETRYABLE: no courier/);
    expect(shown).toMatch(/compensate\s+charge\s+failed\s+1\s+Error: refund API down/);
    expect(shown).toContain("next: patchbay saga retry o-1");

    expect(await cli("saga", "retry", "o-1")).toContain("saga o-1: retrying; now compensating");
    expect(await cli("saga", "skip", "o-2", "--note", "refunded by hand")).toContain("now compensating");
    const resolved = JSON.parse(await cli("saga", "resolve", "o-3", "--note", "written off", "--json")) as {
      status: string;
      note: string;
    };
    expect(resolved).toMatchObject({ status: "resolved", note: "written off" });

    refundWorks = true;
    runner = createSagaRunner({ store, sagas: [order], pollInterval: 20 });
    await runner.start();
    expect((await runner.wait("o-1")).status).toBe("compensated");
    expect((await runner.wait("o-2")).status).toBe("compensated");
    expect(undone.sort()).toEqual(["o-1:charge", "o-1:reserve", "o-2:reserve"]);
    expect(await cli("saga", "show", "o-2")).toMatch(/compensate\s+charge\s+skipped.*refunded by hand/);
  });

  it("shows a compensated saga without a step index of -1", async () => {
    refundWorks = true;
    runner = createSagaRunner({ store, sagas: [order], pollInterval: 20 });
    await runner.start();
    await runner.saga(order).start({ orderId: "o-4" }, { id: "o-4" });
    expect((await runner.wait("o-4")).status).toBe("compensated");
    const shown = await cli("saga", "show", "o-4");
    expect(shown).toContain("COMPENSATED");
    expect(shown).toMatch(/^ {2}step {6}none \(every step compensated\), attempt/m);
    expect(shown).not.toContain("step      -1");
    expect(await cli("saga", "list", "--name", "order")).toMatch(/o-4\s+order v1\s+compensated\s+-\s/);
  });

  it("explains a refused action and usage errors", async () => {
    const refused = await cli("saga", "resolve", "nope").catch((e: { code: number; stderr: string }) => e);
    expect(refused).toMatchObject({ code: 1 });
    expect((refused as { stderr: string }).stderr).toContain("SAGA_NOT_FOUND");
    const usage = await cli("saga", "list", "--status", "stuck").catch(
      (e: { code: number; stderr: string }) => e,
    );
    expect(usage).toMatchObject({ code: 2 });
    expect((usage as { stderr: string }).stderr).toContain("unknown status");
  });
});

const { postgres: pg } = inject("services");
const cases: Array<[string, () => IsolatedDatabase]> = [["SQLite", sqliteDatabase]];
if (pg.reachable) cases.push(["PostgreSQL", () => postgresDatabase(pg.url)]);
else console.log(`saga CLI bulk tests on PostgreSQL skipped: ${pg.where} unreachable (${pg.error})`);

for (const [name, makeDb] of cases) {
  describe(`patchbay saga in bulk on ${name}`, () => {
    let db: IsolatedDatabase;
    let store: SqlStore;
    const order = defineSaga("order", {
      version: 1,
      compensateRetry: { maxAttempts: 1 },
      steps: [
        { name: "reserve", run: () => "R", compensate: () => undefined },
        { name: "charge", run: () => "C", compensate: () => Promise.reject(new Error("refund API down")) },
        { name: "ship", run: () => Promise.reject(new NonRetryableError("no courier")) },
      ],
    });
    const storeFlags = () =>
      db.adapter === "sqlite"
        ? ["--sqlite", String(db.config.file)]
        : ["--pg", String(db.config.url), "--schema", String(db.config.schema)];
    /** Exit code, stdout and stderr of one CLI run, with the store named on the line. */
    const cli = async (...args: string[]) =>
      run(process.execPath, ["--import", "tsx", CLI, ...args, ...storeFlags(), "--config", CONFIG], {
        env: {
          ...process.env,
          PATCHBAY_TEST_SAGA_DB: typeof db.config.file === "string" ? db.config.file : "unused.db",
        },
      }).then(
        ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
        (e: { code: number; stdout: string; stderr: string }) => ({
          code: e.code,
          stdout: e.stdout,
          stderr: e.stderr,
        }),
      );

    const failed = () => createSagaRunner({ store, sagas: [order] }).count({ status: "failed" });

    beforeEach(async () => {
      db = makeDb();
      store = db.make();
      const runner = createSagaRunner({ store, sagas: [order], pollInterval: 20 });
      await runner.start();
      for (const id of ["b-1", "b-2", "b-3"]) await runner.saga(order).start({}, { id });
      for (const id of ["b-1", "b-2", "b-3"]) expect((await runner.wait(id)).status).toBe("failed");
      await runner.stop();
    });
    afterEach(async () => {
      await store.close();
      await db.cleanup();
    });

    it("a dry run counts and samples; resolve by filter acts in batches with progress on stderr, and twice is safe", async () => {
      const dry = await cli(
        "saga",
        "resolve",
        "--status",
        "failed",
        "--name",
        "order",
        "--since",
        "1h",
        "--dry-run",
      );
      expect(dry.code).toBe(0);
      expect(dry.stdout).toContain("dry run: 3 sagas match (status failed, name order, updated since");
      expect(dry.stdout).toMatch(/b-1\s+order v1\s+failed/);
      expect(await failed()).toBe(3);

      const done = await cli(
        "saga",
        "resolve",
        "--status",
        "failed",
        "--name",
        "order",
        "--note",
        "written off",
        "--batch",
        "2",
      );
      expect(done).toMatchObject({ code: 0 });
      expect(done.stdout).toContain("saga resolve: matched 3, acted 3, skipped 0");
      expect(done.stderr).toContain("saga resolve: 2/3 (acted 2, skipped 0)");
      expect(done.stderr).toContain("saga resolve: 3/3 (acted 3, skipped 0)");
      const listed = JSON.parse(
        (await cli("saga", "list", "--status", "resolved", "--json")).stdout,
      ) as Array<{
        id: string;
        note: string;
      }>;
      expect(listed.map((i) => [i.id, i.note]).sort()).toEqual([
        ["b-1", "written off"],
        ["b-2", "written off"],
        ["b-3", "written off"],
      ]);

      const again = await cli("saga", "resolve", "--status", "failed", "--name", "order", "--json");
      expect(JSON.parse(again.stdout)).toMatchObject({ matched: 0, acted: 0, skipped: 0 });
      const nothingSince = await cli(
        "saga",
        "retry",
        "--status",
        "resolved",
        "--since",
        "2000-01-01T00:00:00Z",
        "--dry-run",
        "--json",
      );
      expect(JSON.parse(nothingSince.stdout)).toMatchObject({ dryRun: true, matched: 3 });
    });

    it("bulk usage errors exit 2 before touching the store; --help prints the bulk usage", async () => {
      const noFilter = await cli("saga", "retry");
      expect(noFilter.code).toBe(2);
      expect(noFilter.stderr).toContain("give an <id>, or --status");
      expect((await cli("saga", "retry", "b-1", "--status", "failed")).code).toBe(2);
      const note = await cli("saga", "retry", "--status", "failed", "--note", "why");
      expect(note.code).toBe(2);
      expect(note.stderr).toContain("--note is for skip and resolve, not retry");
      expect((await cli("saga", "resolve", "--status", "failed", "--result", "{}")).code).toBe(2);
      const typo = await cli("saga", "retry", "--status", "failed", "--dryrun");
      expect(typo.code).toBe(2);
      expect(typo.stderr).toContain("did you mean --dry-run?");
      const since = await cli("saga", "retry", "--status", "failed", "--since", "yesterday");
      expect(since.code).toBe(2);
      expect(since.stderr).toContain("--since must be a duration");
      const help = await cli("saga", "retry", "--status", "failed", "--help");
      expect(help.code).toBe(0);
      expect(help.stdout).toContain("retry|skip|resolve --status s[,s] [--name n] [--since t] [--dry-run]");
      expect(await failed()).toBe(3);
    });
  });
}
