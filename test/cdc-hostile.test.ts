/**
 * Change data capture at the edges the fidelity suite does not reach: a table captured by
 * `REPLICA IDENTITY FULL` without a primary key, whose updates carry the whole old row.
 */
import { afterEach, describe, expect, inject, it } from "vitest";
import { cdcFixture, cdcSuiteProblem, eventually, type CdcFixture } from "./support/cdc.js";

const service = inject("services").postgres;
const problem = await cdcSuiteProblem(service);
if (problem) console.log(`CDC hostile suite skipped: ${problem}`);

describe.skipIf(problem !== undefined)("CDC: a table with REPLICA IDENTITY FULL and no primary key", () => {
  let f: CdcFixture | undefined;
  afterEach(async () => {
    await f?.cleanup();
    f = undefined;
  });

  it("an update that leaves a TOASTed column unchanged keeps its value", async () => {
    f = await cdcFixture(service.url);
    await f.sql(`CREATE TABLE ${f.src}.t (id int NOT NULL, v text, big text)`);
    await f.sql(`ALTER TABLE ${f.src}.t REPLICA IDENTITY FULL`);
    await f.sql(`CREATE TABLE ${f.dst}.t (id int PRIMARY KEY, v text, big text)`);
    // Random text does not compress: stored out of line (TOAST).
    const big = "(SELECT string_agg(md5(random()::text), '') FROM generate_series(1, 4000))";
    await f.sql(`INSERT INTO ${f.src}.t SELECT 1, 'a', ${big}`);
    const capture = f.capture("t");
    capture.start();
    const rows = () =>
      f!.sql(
        `SELECT d.id, d.v, d.big = s.big AS same FROM ${f!.dst}.t d LEFT JOIN ${f!.src}.t s USING (id) ORDER BY id`,
      );
    await eventually(async () => (await rows()).length === 1, 30_000, "the initial copy");
    await f.sql(`UPDATE ${f.src}.t SET v = 'b' WHERE id = 1`);
    await f.sql(`INSERT INTO ${f.src}.t VALUES (2, 'marker', NULL)`);
    await eventually(async () => (await rows()).some((r) => r.id === 2), 30_000, "the marker row");
    expect(await rows()).toEqual([
      { id: 1, v: "b", same: true },
      { id: 2, v: "marker", same: null },
    ]);
  });

  it("an update of a column that is not the destination's key keeps the row, with its new value; deletes still delete", async () => {
    f = await cdcFixture(service.url);
    await f.sql(`CREATE TABLE ${f.src}.t (id int NOT NULL, v text)`);
    await f.sql(`ALTER TABLE ${f.src}.t REPLICA IDENTITY FULL`);
    await f.sql(`CREATE TABLE ${f.dst}.t (id int PRIMARY KEY, v text)`);
    await f.sql(`INSERT INTO ${f.src}.t VALUES (1, 'a'), (2, 'b'), (3, 'c')`);
    const capture = f.capture("t");
    capture.start();
    const rows = () => f!.sql(`SELECT id, v FROM ${f!.dst}.t ORDER BY id`);
    await eventually(async () => (await rows()).length === 3, 30_000, "the initial copy");
    await f.sql(`UPDATE ${f.src}.t SET v = 'changed' WHERE id = 2`);
    // In one transaction: a value changed and changed back, a row updated then deleted.
    await f.sql(
      `BEGIN; UPDATE ${f.src}.t SET v = 'x' WHERE id = 1; UPDATE ${f.src}.t SET v = 'a' WHERE id = 1;
       UPDATE ${f.src}.t SET v = 'gone' WHERE id = 3; DELETE FROM ${f.src}.t WHERE id = 3; COMMIT`,
    );
    await f.sql(`INSERT INTO ${f.src}.t VALUES (4, 'marker')`);
    await eventually(async () => (await rows()).some((r) => r.id === 4), 30_000, "the marker row");
    expect(await rows()).toEqual([
      { id: 1, v: "a" },
      { id: 2, v: "changed" },
      { id: 4, v: "marker" },
    ]);
  });
});
