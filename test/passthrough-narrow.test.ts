/**
 * PostgreSQL → PostgreSQL batches travel as COPY text (sync's pass-through, CDC's copy and
 * stream). Into columns that would round a value without an error — numeric(12,2), timestamp(3) —
 * such rows must be quarantined like any other rows', never loaded as the server casts them.
 */
import { afterEach, describe, expect, inject, it } from "vitest";
import { postgresDestination, postgresSource } from "../src/adapters/postgres/index.js";
import { pipeline } from "../src/sync/pipeline.js";
import { cdcFixture, cdcSuiteProblem, eventually, type CdcFixture } from "./support/cdc.js";

const { postgres: service } = inject("services");
const problem = await cdcSuiteProblem(service);

const fixtures: CdcFixture[] = [];
afterEach(async () => {
  for (const f of fixtures.splice(0)) await f.cleanup();
});

/** id → [amount, at]: rows 1 and 2 would be rounded by numeric(12,2) and timestamp(3). */
const ROWS: Array<[number, string, string]> = [
  [1, "1.005", "2026-01-01 00:00:00.123000"],
  [2, "1.50", "2026-01-01 00:00:00.123400"],
  [3, "-0.25", "2026-01-01 00:00:00.5"],
  [4, "99999999.99", "1969-12-31 23:59:59.999"],
];
const KEPT = [
  { id: 3, amount: "-0.25", at: "2026-01-01 00:00:00.500" },
  { id: 4, amount: "99999999.99", at: "1969-12-31 23:59:59.999" },
];

async function tables() {
  const f = await cdcFixture(service.url);
  fixtures.push(f);
  await f.sql(`CREATE TABLE ${f.src}.narrow (id int PRIMARY KEY, amount numeric, at timestamp(6))`);
  await f.sql(`CREATE TABLE ${f.dst}.narrow (id int PRIMARY KEY, amount numeric(12,2), at timestamp(3))`);
  const insert = (offset: number) =>
    f.sql(
      `INSERT INTO ${f.src}.narrow (id, amount, at) SELECT id + $1, amount::numeric, at::timestamp
         FROM unnest($2::int[], $3::text[], $4::text[]) AS u(id, amount, at)`,
      [offset, ROWS.map((r) => r[0]), ROWS.map((r) => r[1]), ROWS.map((r) => r[2])],
    );
  const loaded = async () =>
    (
      await f.sql(
        `SELECT id, amount::text AS amount, to_char(at, 'YYYY-MM-DD HH24:MI:SS.MS') AS at FROM ${f.dst}.narrow ORDER BY id`,
      )
    ).map((r) => ({ ...r, id: Number(r.id) }));
  const quarantined = async () =>
    (
      await f.sql(
        `SELECT row_data, error FROM ${f.dst}.patchbay_sync_quarantine ORDER BY (row_data::jsonb ->> 'id')::int`,
      )
    ).map((q) => ({
      id: Number((JSON.parse(String(q.row_data)) as { id: unknown }).id),
      code: (JSON.parse(String(q.error)) as { code: string }).code,
    }));
  return { f, insert, loaded, quarantined };
}

describe.skipIf(problem !== undefined)("Pass-through into narrow columns", { timeout: 120_000 }, () => {
  it("sync PostgreSQL → PostgreSQL (COPY text): the rows a column would round are quarantined", async () => {
    const { f, insert, loaded, quarantined } = await tables();
    await insert(0);
    const p = pipeline(`narrow_${f.id}`, {
      store: f.store(),
      source: postgresSource({ url: f.url, table: `${f.src}.narrow`, key: "id" }),
      destination: postgresDestination({ url: f.url, table: `${f.dst}.narrow`, key: "id" }),
      mode: "full",
    });
    const report = await p.run();
    expect(report.rowsQuarantined).toBe(2);
    expect(await loaded()).toEqual(KEPT);
    expect(await quarantined()).toEqual([
      { id: 1, code: "SYNC_VALUE_INEXACT" },
      { id: 2, code: "SYNC_VALUE_INEXACT" },
    ]);
  });

  it("CDC, initial copy and stream: the rows a column would round are quarantined", async () => {
    const { f, insert, loaded, quarantined } = await tables();
    await insert(0); // copied
    const cdc = f.capture("narrow");
    cdc.start();
    await eventually(async () => (await loaded()).length === 2, 60_000, "the copy");
    await insert(100); // streamed
    await eventually(async () => (await loaded()).length === 4, 60_000, "the stream");
    await eventually(async () => (await quarantined()).length === 4, 10_000, "the quarantine");
    expect(await loaded()).toEqual([...KEPT, ...KEPT.map((r) => ({ ...r, id: r.id + 100 }))]);
    expect((await quarantined()).map((q) => q.id)).toEqual([1, 2, 101, 102]);
    expect(new Set((await quarantined()).map((q) => q.code))).toEqual(new Set(["SYNC_VALUE_INEXACT"]));
    expect(cdc.failure).toBeUndefined();
  });
});
