/**
 * A change batch the destination refuses only at COMMIT (a deferred unique constraint): the
 * capture must fail visibly, store no position past the refused batch, leave the slot where it
 * was — and, once the destination is fixed, apply everything exactly once.
 */
import { afterEach, describe, expect, inject, it } from "vitest";
import { isPatchbayError } from "../src/core/errors.js";
import { cdcFixture, cdcSuiteProblem, eventually, type CdcFixture } from "./support/cdc.js";

const { postgres: service } = inject("services");
const problem = await cdcSuiteProblem(service);

const fixtures: CdcFixture[] = [];
afterEach(async () => {
  for (const f of fixtures.splice(0)) await f.cleanup();
});

describe.skipIf(problem !== undefined)("CDC: a batch refused at COMMIT", { timeout: 120_000 }, () => {
  it("fails the run with the constraint's error, stores no position past it, and applies it once the destination is fixed", async () => {
    const f = await cdcFixture(service.url);
    fixtures.push(f);
    await f.sql(`CREATE TABLE ${f.src}.items (id int PRIMARY KEY, code int NOT NULL)`);
    // The destination checks `code` only when the transaction commits.
    await f.sql(
      `CREATE TABLE ${f.dst}.items (id int PRIMARY KEY, code int NOT NULL,
         CONSTRAINT code_unique UNIQUE (code) DEFERRABLE INITIALLY DEFERRED)`,
    );
    const make = () => f.capture("items");
    const ids = async (table: string) =>
      (await f.sql(`SELECT id FROM ${table} ORDER BY id`)).map((r) => Number(r.id));

    // The initial copy goes through; then one source transaction the destination cannot hold.
    await f.sql(`INSERT INTO ${f.src}.items (id, code) SELECT g, g FROM generate_series(1, 10) g`);
    const first = make();
    first.start();
    await eventually(async () => (await ids(`${f.dst}.items`)).length === 10, 60_000, "the snapshot");
    await first.stop();
    const before = await first.status();
    await f.sql(`BEGIN; INSERT INTO ${f.src}.items (id, code) VALUES (11, 100), (12, 100); COMMIT`);
    await f.sql(`INSERT INTO ${f.src}.items (id, code) VALUES (13, 13)`);

    // Run once: it must reject (never resolve as if the batch were written).
    const ran = await make()
      .run({ signal: AbortSignal.timeout(15_000) })
      .then(
        (report) => ({ report }),
        (e: unknown) => ({ error: e }),
      );
    expect("error" in ran, `the run resolved: ${JSON.stringify(ran)}`).toBe(true);
    const error = (ran as { error: unknown }).error;
    expect(isPatchbayError(error), String(error)).toBe(true);
    expect(String((error as Error).message) + String((error as { cause?: Error }).cause?.message)).toMatch(
      /code_unique|unique/i,
    );
    // Nothing of the refused transaction, nor of what followed it, is at the destination, and
    // the stored position did not move past it.
    expect(await ids(`${f.dst}.items`)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    const after = await make().status();
    expect(after.checkpoint).toEqual(before.checkpoint);

    // Fixed at the destination: the next run applies the held-back changes, once each.
    await f.sql(`ALTER TABLE ${f.dst}.items DROP CONSTRAINT code_unique`);
    const fixed = make();
    fixed.start();
    await eventually(
      async () => (await ids(`${f.dst}.items`)).length === 13,
      60_000,
      "the held-back changes",
    );
    await fixed.stop();
    expect(await ids(`${f.dst}.items`)).toEqual(Array.from({ length: 13 }, (_, i) => i + 1));
    expect(fixed.failure).toBeUndefined();
  });
});
