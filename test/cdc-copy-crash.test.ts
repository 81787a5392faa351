/**
 * The CDC process SIGKILLed again and again *during its initial copy*, while a mixed load writes
 * to the rows already copied and to those not yet copied. Each resumed copy reads a new snapshot,
 * and the stream, replayed from the first snapshot's point, must not write again what the
 * resumed copy read. In the end: the merge destination equals the source by checksum, and two
 * append-only logs of row versions (one fed by COPY pass-through, one by parsed rows through a
 * transform) hold every row's current version and no version twice.
 */
import { afterEach, describe, expect, inject, it } from "vitest";
import {
  cdcFixture,
  dropSlots,
  eventually,
  cdcSuiteProblem,
  crashChildren,
  type CdcFixture,
} from "./support/cdc.js";

const ROWS = 150_000;
const MAX_KILLS = 10;

const { postgres: service } = inject("services");
const problem = await cdcSuiteProblem(service);

const fixtures: CdcFixture[] = [];
const cleanups: Array<() => Promise<void>> = [];
const children = crashChildren("cdc-child.ts");
const startChild = (args: unknown) => children.start(args);
afterEach(async () => {
  children.killAll();
  for (const c of cleanups.splice(0)) await c();
  for (const f of fixtures.splice(0)) await f.cleanup();
});

describe.skipIf(problem !== undefined)("CDC initial copy crash recovery (SIGKILL)", () => {
  it("SIGKILLs during the initial copy under a mixed load: no row version lost or written twice", async () => {
    const f = await cdcFixture(service.url);
    fixtures.push(f);
    const ddl = (table: string) =>
      `CREATE TABLE ${table} (id int PRIMARY KEY, v int NOT NULL, n int NOT NULL DEFAULT 0)`;
    await f.sql(ddl(`${f.src}.items`));
    await f.sql(ddl(`${f.dst}.items`));
    // The logs: every row version a capture appended (no key: a version written twice shows).
    for (const log of ["log", "log_rows"])
      await f.sql(`CREATE TABLE ${f.dst}.${log} (id int NOT NULL, v int NOT NULL, n int NOT NULL)`);
    await f.sql(`INSERT INTO ${f.src}.items (id, v) SELECT g, g FROM generate_series(1, ${ROWS}) g`);
    const capture = (suffix: string, table: string, write: "merge" | "append", transform = false) => ({
      name: `cdc${suffix}_${f.id}`,
      slot: `${f.slot}${suffix}`,
      publication: f.publication,
      tables: [`${f.src}.items`],
      table: `${f.dst}.${table}`,
      key: "id",
      write,
      checkpointTable: `checkpoints${suffix}`,
      transform,
    });
    const captures = [
      capture("", "items", "merge"),
      capture("_log", "log", "append"),
      capture("_rows", "log_rows", "append", true),
    ];
    cleanups.push(() => dropSlots(f.url, [`${f.slot}_log`, `${f.slot}_rows`]));
    const args = { url: f.url, meta: f.meta, batchSize: 1000, captures };
    const cursors = async () =>
      (
        await Promise.all(
          captures.map((c) =>
            f.sql(`SELECT checkpoint::text AS c FROM ${f.dst}.${c.checkpointTable}`).catch(() => []),
          ),
        )
      ).map((rows) => (rows[0]?.c as string | undefined) ?? "");

    let loading = true;
    let nextId = 1_000_000;
    let loadError: unknown;
    const load = (async () => {
      let i = 0;
      while (loading) {
        const size = [1, 5, 50, 300][i++ % 4] as number;
        const client = await f.db.connect();
        try {
          await client.query("BEGIN");
          await client.query(
            `INSERT INTO ${f.src}.items (id, v) SELECT g, g FROM generate_series($1::int, $2::int) g`,
            [nextId, nextId + size - 1],
          );
          nextId += size;
          // Rows anywhere in the key range: some copied already, some not yet.
          await client.query(
            `UPDATE ${f.src}.items SET n = n + 1, v = v + 1 WHERE id IN (SELECT (random() * ${ROWS})::int + 1 FROM generate_series(1, $1))`,
            [size],
          );
          await client.query(
            `DELETE FROM ${f.src}.items WHERE id IN (SELECT (random() * ${ROWS})::int + 1 FROM generate_series(1, $1))`,
            [Math.max(1, Math.floor(size / 5))],
          );
          await client.query("COMMIT");
          await new Promise((r) => setTimeout(r, 20));
        } finally {
          client.release();
        }
      }
    })().catch((e: unknown) => (loadError = e));

    // Kill while any capture is still copying; count the kills that cut a copy.
    let killsDuringCopy = 0;
    let resumedSegments = 0;
    for (let k = 0; k < MAX_KILLS; k++) {
      const before = (await cursors()).join("|");
      const child = startChild(args);
      // Killed moments after the child stored its first page (or after 10 s): on an idle machine
      // the whole copy takes about a second, so a fixed delay would mostly miss it.
      const deadline = Date.now() + 10_000;
      while (Date.now() < deadline && (await cursors()).join("|") === before)
        await new Promise((r) => setTimeout(r, 25));
      await new Promise((r) => setTimeout(r, Math.random() * 300));
      expect(child.output()).not.toMatch(/^failed/m);
      child.proc.kill("SIGKILL");
      await child.exited;
      const stored = await cursors();
      if (stored.some((c) => c.includes('"segments"'))) resumedSegments++;
      const copying = stored.some((c) => c === "" || c.includes('"snapshot"'));
      if (copying) killsDuringCopy++;
      else if (killsDuringCopy >= 3) break;
    }
    expect(killsDuringCopy, "kills that cut an initial copy").toBeGreaterThanOrEqual(3);
    expect(resumedSegments, "kills after a resumed copy stored a page").toBeGreaterThanOrEqual(1);
    loading = false;
    await load;
    expect(loadError).toBeUndefined();

    const final = startChild(args);
    const caughtUp = async (log: string) => {
      const [r] = await f.sql(
        `SELECT count(*)::int AS missing FROM ${f.src}.items s WHERE NOT EXISTS (SELECT 1 FROM ${f.dst}.${log} l WHERE l.id = s.id AND l.n = s.n AND l.v = s.v)`,
      );
      return r?.missing === 0;
    };
    await eventually(
      async () =>
        (await f.checksum(`${f.src}.items`)) === (await f.checksum(`${f.dst}.items`)) &&
        (await caughtUp("log")) &&
        (await caughtUp("log_rows")),
      300_000,
      "the destinations to catch up with the source",
    ).catch((e: unknown) => {
      throw new Error(`${(e as Error).message}\n${final.output().slice(-3000)}`);
    });
    final.proc.kill("SIGKILL");
    await final.exited;

    const [src] = await f.sql(`SELECT count(*)::int AS c, sum(n)::bigint::text AS n FROM ${f.src}.items`);
    const [dst] = await f.sql(`SELECT count(*)::int AS c, sum(n)::bigint::text AS n FROM ${f.dst}.items`);
    expect(dst).toEqual(src);
    for (const log of ["log", "log_rows"]) {
      // Per row, each version once: a copied row the stream wrote again would show here.
      const doubled = await f.sql(
        `SELECT count(*)::int AS c FROM (SELECT id, n, v FROM ${f.dst}.${log} GROUP BY id, n, v HAVING count(*) > 1) d`,
      );
      expect(doubled[0]?.c, `row versions appended twice to ${log}`).toBe(0);
    }
  }, 900_000);
});

describe.skipIf(problem === undefined)("CDC initial copy crash recovery (SIGKILL)", () => {
  it.skip(`skipped: ${problem}`, () => {});
});
