/**
 * Dead-letter pages on SQLite and PostgreSQL: keyset (`after`) pages walk the same order as
 * `offset` pages, ties in `lastFailedAt` included, with and without a group filter; and the page
 * query reads the list's index instead of sorting the table.
 */
import { describe, expect, inject, it } from "vitest";
import { createDeadLetters, type DeadLetter, type DeadLetters } from "../src/bus/dead-letters.js";
import { localTransport } from "../src/bus/local-transport.js";
import type { SqlStore } from "../src/store/sql-store.js";
import { postgresDatabase, sqliteDatabase, type IsolatedDatabase } from "./support/stores.js";

const { postgres: pg } = inject("services");

const cases: Array<[string, () => IsolatedDatabase, boolean]> = [
  ["SQLite", sqliteDatabase, true],
  ["PostgreSQL", () => postgresDatabase(pg.url), pg.reachable],
];

const key = (l: DeadLetter) => `${l.lastFailedAt}/${l.group}/${l.messageId}`;

async function seed(store: SqlStore, letters: DeadLetters): Promise<void> {
  // 60 letters in 3 groups; every 4 share a failure time, so pages end inside ties.
  for (let i = 0; i < 60; i++) {
    const at = 1_000 + Math.floor(i / 4);
    await letters.add(store, {
      group: ["a", "b", "c"][i % 3]!,
      messageId: `m-${String(59 - i).padStart(2, "0")}`,
      type: "order.created",
      key: undefined,
      body: "{}",
      headers: {},
      error: { name: "Error", code: i % 2 ? "NON_RETRYABLE" : "SCHEMA_INVALID", message: "no" },
      attempts: 1,
      firstFailedAt: at,
      lastFailedAt: at,
    });
  }
}

async function walk(letters: DeadLetters, filter: { group?: string }, limit: number) {
  const seen: DeadLetter[] = [];
  for (;;) {
    const last = seen.at(-1);
    const page = await letters.list({ ...filter, limit, ...(last ? { after: last } : {}) });
    seen.push(...page);
    if (page.length < limit) return seen;
  }
}

for (const [name, database, reachable] of cases) {
  describe.runIf(reachable)(`dead-letter pages on ${name}`, () => {
    it("pages by cursor as by offset, through ties and within a group", async () => {
      const db = database();
      const store = db.make();
      try {
        await store.open();
        const letters = createDeadLetters(store, localTransport(store));
        await seed(store, letters);
        for (const filter of [{}, { group: "b" }]) {
          const all = await letters.list({ ...filter, limit: 1000 });
          expect(all.length).toBe("group" in filter ? 20 : 60);
          const sorted = [...all].sort(
            (x, y) =>
              x.lastFailedAt - y.lastFailedAt ||
              (x.group < y.group ? -1 : x.group > y.group ? 1 : 0) ||
              (x.messageId < y.messageId ? -1 : 1),
          );
          expect(all.map(key)).toEqual(sorted.map(key));
          for (const limit of [1, 3, 7]) {
            expect((await walk(letters, filter, limit)).map(key)).toEqual(all.map(key));
          }
          // Offset still works, and combines with a cursor (skips after it).
          expect((await letters.list({ ...filter, limit: 5, offset: 5 })).map(key)).toEqual(
            all.slice(5, 10).map(key),
          );
          expect((await letters.list({ ...filter, limit: 3, offset: 2, after: all[4]! })).map(key)).toEqual(
            all.slice(7, 10).map(key),
          );
        }
        // A cursor from another group than the filter's still means a position in the order.
        const inB = await letters.list({ group: "b", limit: 1000 });
        const fromA = (await letters.list({ group: "a", limit: 1000 }))[10]!;
        expect((await letters.list({ group: "b", after: fromA, limit: 1000 })).map(key)).toEqual(
          inB.filter((l) => key(l) > key(fromA)).map(key),
        );
        await expect(
          letters.list({ after: { lastFailedAt: "x", group: "a", messageId: "m" } as never }),
        ).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
      } finally {
        await store.close();
        await db.cleanup();
      }
    });

    it("reads a deep page from the index, not by sorting the table", async () => {
      const db = database();
      const store = db.make();
      try {
        await store.open();
        const t = store.dialect.table("bus_dead_letters");
        const p = (n: number) => db.p(n);
        const queries = [
          `SELECT * FROM ${t} WHERE 1 = 1 AND (last_failed_at, grp, message_id) > (${p(1)}, ${p(2)}, ${p(3)}) ORDER BY last_failed_at, grp, message_id LIMIT 50`,
          `SELECT * FROM ${t} WHERE 1 = 1 AND grp = ${p(1)} AND (last_failed_at, message_id) > (${p(2)}, ${p(3)}) ORDER BY last_failed_at, grp, message_id LIMIT 50`,
        ];
        const params = [
          [5, "a", "m"],
          ["a", 5, "m"],
        ];
        for (const [i, q] of queries.entries()) {
          let plan: string;
          if (db.adapter === "sqlite") {
            const { rows } = await store.query<{ detail: string }>(`EXPLAIN QUERY PLAN ${q}`, params[i]);
            plan = rows.map((r) => r.detail).join("\n");
            expect(plan).not.toMatch(/TEMP B-TREE/);
          } else {
            // An empty table would be scanned whatever the indexes; forbid that choice.
            await store.transaction(async (tx) => {
              await tx.query("SET LOCAL enable_seqscan = off");
              await tx.query("SET LOCAL enable_sort = off");
              const { rows } = await tx.query<{ "QUERY PLAN": string }>(`EXPLAIN ${q}`, params[i]);
              plan = rows.map((r) => r["QUERY PLAN"]).join("\n");
            });
            expect(plan!).not.toMatch(/Sort|Seq Scan/);
          }
          expect(plan!).toMatch(/bus_dead_letters_(failed|group)/);
        }
      } finally {
        await store.close();
        await db.cleanup();
      }
    });
  });
}
