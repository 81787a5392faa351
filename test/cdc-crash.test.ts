/**
 * The CDC process SIGKILLed again and again while a mixed load of transactions of 1 to 10,000
 * rows runs (after the initial copy; test/cdc-copy-crash.test.ts kills during it): in the end the destination equals the
 * source by checksum, every row's change count matches, and an append-only log of the changes
 * holds no row version twice.
 */
import { afterEach, describe, expect, inject, it } from "vitest";
import { cdcFixture, eventually, cdcSuiteProblem, crashChildren, type CdcFixture } from "./support/cdc.js";

const KILLS = 8;
const SIZES = [1, 3, 10, 50, 300, 1000, 3000, 10_000];

const { postgres: service } = inject("services");
const problem = await cdcSuiteProblem(service);

const fixtures: CdcFixture[] = [];
const children = crashChildren("cdc-child.ts");
const startChild = (args: unknown) => children.start(args);
afterEach(async () => {
  children.killAll();
  for (const f of fixtures.splice(0)) await f.cleanup();
});

describe.skipIf(problem !== undefined)("CDC crash recovery (SIGKILL)", () => {
  it(`${KILLS} SIGKILLs during a mixed load: nothing lost, nothing applied twice`, async () => {
    const f = await cdcFixture(service.url);
    fixtures.push(f);
    const ddl = (table: string) =>
      `CREATE TABLE ${table} (id int PRIMARY KEY, v int NOT NULL, n int NOT NULL DEFAULT 0)`;
    await f.sql(ddl(`${f.src}.items`));
    await f.sql(ddl(`${f.dst}.items`));
    // The log: every row version the capture appended (no key: a version written twice shows).
    await f.sql(`CREATE TABLE ${f.dst}.log (id int NOT NULL, v int NOT NULL, n int NOT NULL)`);
    await f.sql(`INSERT INTO ${f.src}.items (id, v) SELECT g, g FROM generate_series(1, 20000) g`);
    const args = {
      url: f.url,
      meta: f.meta,
      batchSize: 2000,
      captures: [
        {
          name: `cdc_${f.id}`,
          slot: f.slot,
          publication: f.publication,
          tables: [`${f.src}.items`],
          table: `${f.dst}.items`,
          key: "id",
          write: "merge",
        },
        {
          name: `cdc_log_${f.id}`,
          slot: `${f.slot}_log`,
          publication: f.publication,
          tables: [`${f.src}.items`],
          table: `${f.dst}.log`,
          key: "id",
          write: "append",
          checkpointTable: "log_checkpoints",
        },
      ],
    };
    // Cleanup drops the second slot too.
    fixtures.push({
      ...f,
      cleanup: async () => {
        const { Client } = (await import("pg")).default;
        const c = new Client({ connectionString: f.url });
        await c.connect();
        await c
          .query(
            "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1 AND active_pid IS NOT NULL",
            [`${f.slot}_log`],
          )
          .catch(() => undefined);
        for (let i = 0; i < 50; i++) {
          try {
            await c.query(
              "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1",
              [`${f.slot}_log`],
            );
            break;
          } catch {
            await new Promise((r) => setTimeout(r, 200));
          }
        }
        await c.end();
      },
    });

    let loading = true;
    let nextId = 1_000_000;
    let transactions = 0;
    let loadError: unknown;
    const load = (async () => {
      let i = 0;
      while (loading) {
        const size = SIZES[i++ % SIZES.length] as number;
        const client = await f.db.connect();
        try {
          await client.query("BEGIN");
          await client.query(
            `INSERT INTO ${f.src}.items (id, v) SELECT g, g FROM generate_series($1::int, $2::int) g`,
            [nextId, nextId + size - 1],
          );
          nextId += size;
          await client.query(
            `UPDATE ${f.src}.items SET n = n + 1, v = v + 1 WHERE id IN (SELECT id FROM ${f.src}.items TABLESAMPLE SYSTEM (1) LIMIT $1)`,
            [size],
          );
          await client.query(
            `DELETE FROM ${f.src}.items WHERE id IN (SELECT id FROM ${f.src}.items TABLESAMPLE SYSTEM (1) LIMIT $1)`,
            [Math.max(1, Math.floor(size / 5))],
          );
          await client.query("COMMIT");
          transactions++;
          // A steady load the capture can follow on a loaded 2-core machine.
          await new Promise((r) => setTimeout(r, size / 20));
        } finally {
          client.release();
        }
      }
    })().catch((e: unknown) => (loadError = e));

    for (let k = 0; k < KILLS; k++) {
      const child = startChild(args);
      if (k === 0) {
        // The first child finishes the initial copy: this test is about the stream (kills during
        // the copy are test/cdc-copy-crash.test.ts).
        await eventually(
          async () =>
            Number((await f.sql(`SELECT count(*)::int AS c FROM ${f.dst}.log`))[0]?.c ?? 0) >= 20_000,
          120_000,
          "the initial copy of the log",
        );
      }
      await new Promise((r) => setTimeout(r, 700 + Math.random() * 2300));
      expect(child.output()).not.toMatch(/^failed/m);
      child.proc.kill("SIGKILL");
      await child.exited;
    }
    loading = false;
    await load;
    expect(loadError).toBeUndefined();
    expect(transactions).toBeGreaterThan(KILLS);

    const final = startChild(args);
    await eventually(
      async () => {
        if (process.env.PB_CDC_DEBUG) {
          const lag = await f.sql(
            `SELECT slot_name, pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn) AS lag FROM pg_replication_slots WHERE slot_name LIKE '${f.slot}%'`,
          );
          console.log(Date.now(), JSON.stringify(lag));
        }
        return (await f.checksum(`${f.src}.items`)) === (await f.checksum(`${f.dst}.items`));
      },
      90_000,
      "the destination to equal the source",
    ).catch(async (e: unknown) => {
      const counts = await f.sql(
        `SELECT (SELECT count(*) FROM ${f.src}.items) AS src, (SELECT count(*) FROM ${f.dst}.items) AS dst, (SELECT count(*) FROM ${f.src}.items s LEFT JOIN ${f.dst}.items d USING (id) WHERE d.id IS NULL OR d.n <> s.n) AS differ, (SELECT count(*) FROM ${f.dst}.items d WHERE NOT EXISTS (SELECT 1 FROM ${f.src}.items s WHERE s.id = d.id)) AS extra, (SELECT json_agg(json_build_object('slot', slot_name, 'active', active, 'wait', (SELECT wait_event_type || ':' || wait_event FROM pg_stat_activity a WHERE a.pid = active_pid), 'lag', pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn))) FROM pg_replication_slots WHERE slot_name LIKE '${f.slot}%') AS slots`,
      );
      throw new Error(`${(e as Error).message}: ${JSON.stringify(counts)}\n${final.output().slice(-3000)}`);
    });
    // The log has caught up too once it holds the source's newest versions.
    await eventually(
      async () => {
        const [r] = await f.sql(
          `SELECT count(*)::int AS missing FROM ${f.src}.items s WHERE NOT EXISTS (SELECT 1 FROM ${f.dst}.log l WHERE l.id = s.id AND l.n = s.n AND l.v = s.v)`,
        );
        return r?.missing === 0;
      },
      240_000,
      "the log",
    );
    final.proc.kill("SIGKILL");
    await final.exited;

    const [src] = await f.sql(`SELECT count(*)::int AS c, sum(n)::bigint::text AS n FROM ${f.src}.items`);
    const [dst] = await f.sql(`SELECT count(*)::int AS c, sum(n)::bigint::text AS n FROM ${f.dst}.items`);
    expect(dst).toEqual(src);
    const mismatched = await f.sql(
      `SELECT count(*)::int AS c FROM ${f.src}.items s JOIN ${f.dst}.items d USING (id) WHERE s.n <> d.n OR s.v <> d.v`,
    );
    expect(mismatched[0]?.c).toBe(0);
    const doubled = await f.sql(
      `SELECT count(*)::int AS c FROM (SELECT id, n, v FROM ${f.dst}.log GROUP BY id, n, v HAVING count(*) > 1) d`,
    );
    expect(doubled[0]?.c, "row versions appended twice").toBe(0);
  }, 600_000);
});

describe.skipIf(problem === undefined)("CDC crash recovery (SIGKILL)", () => {
  it.skip(`skipped: ${problem}`, () => {});
});
