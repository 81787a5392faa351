import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { isPatchbayError } from "../src/core/errors.js";
import type { SqlStore } from "../src/store/sql-store.js";
import { defineStoreConformance } from "./conformance/store.js";
import { sqliteDatabase, type IsolatedDatabase } from "./support/stores.js";

defineStoreConformance({
  name: "SQLite (node:sqlite, temporary file)",
  fresh: () => Promise.resolve(sqliteDatabase()),
  statementErrorAbortsTransaction: false,
  child: {
    module: fileURLToPath(new URL("../src/adapters/sqlite/index.ts", import.meta.url)),
    export: "sqlite",
  },
});

describe("SQLite store: what node:sqlite must not change", () => {
  let db: IsolatedDatabase;
  let store: SqlStore;
  beforeEach(async () => {
    db = sqliteDatabase();
    store = db.make();
    await store.open();
  });
  afterEach(async () => {
    await store.close();
    await db.cleanup();
  });

  it("a transaction SQLite rolled back by itself rejects, and no later statement of it runs in autocommit", async () => {
    await store.query("CREATE TABLE orders (id TEXT PRIMARY KEY, qty INTEGER NOT NULL)");
    // A trigger's RAISE(ROLLBACK) ends the whole transaction, not just the statement.
    await store.query(
      "CREATE TRIGGER no_bad BEFORE INSERT ON orders WHEN NEW.id = 'bad' BEGIN SELECT RAISE(ROLLBACK, 'no bad orders'); END",
    );
    const error = await store
      .transaction(async (tx) => {
        await tx.query("INSERT INTO orders (id, qty) VALUES (?, ?)", ["first", 1]);
        await tx.query("INSERT INTO orders (id, qty) VALUES (?, ?)", ["bad", 1]).catch(() => undefined);
        await tx.query("INSERT INTO orders (id, qty) VALUES (?, ?)", ["after", 1]).catch(() => undefined);
        await tx.state.set("after", 1).catch(() => undefined);
      })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(isPatchbayError(error, "TRANSACTION_ROLLED_BACK"), String(error)).toBe(true);
    expect((await store.query("SELECT id FROM orders")).rows).toEqual([]);
    expect(await store.state.get("after")).toBeUndefined();
  });

  it("reads 64-bit integers exactly: numbers where safe, bigints beyond 2^53", async () => {
    await store.query("CREATE TABLE n (v INTEGER)");
    const values = [
      0n,
      2n ** 53n - 1n,
      2n ** 53n,
      2n ** 53n + 1n,
      2n ** 63n - 1n,
      -(2n ** 63n),
      -(2n ** 53n) - 1n,
    ];
    for (const v of values) await store.query("INSERT INTO n (v) VALUES (?)", [v]);
    const rows = (
      await store.query<{ v: number | bigint; t: string }>("SELECT v, CAST(v AS TEXT) AS t FROM n")
    ).rows;
    expect(rows.map((r) => String(r.v))).toEqual(values.map(String));
    expect(rows.map((r) => r.t)).toEqual(values.map(String));
    for (const r of rows)
      expect(typeof r.v).toBe(
        Number.isSafeInteger(Number(r.v)) && BigInt(Number(r.v)) === BigInt(r.v) ? "number" : "bigint",
      );
  });

  it("blobs come back as Buffers, rows as plain objects", async () => {
    await store.query("CREATE TABLE b (v BLOB)");
    await store.query("INSERT INTO b (v) VALUES (?)", [Buffer.from([0, 1, 255])]);
    const [row] = (await store.query<{ v: Buffer }>("SELECT v FROM b")).rows;
    expect(Buffer.isBuffer(row?.v)).toBe(true);
    expect([...(row?.v ?? [])]).toEqual([0, 1, 255]);
    expect(Object.getPrototypeOf(row)).toBe(Object.prototype);
  });
});
