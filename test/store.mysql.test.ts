import { fileURLToPath } from "node:url";
import { describe, expect, inject, it } from "vitest";
import { isPatchbayError } from "../src/core/errors.js";
import { defineStoreConformance } from "./conformance/store.js";
import { mysqlDatabase } from "./support/stores.js";

const { mysql: service } = inject("services");

if (!service.reachable) {
  describe("Store conformance: MariaDB", () => {
    it.skip(`skipped: MariaDB unreachable at ${service.where} (${service.error}); set PATCHBAY_MYSQL_URL`, () => {});
  });
} else {
  defineStoreConformance({
    name: `MariaDB (mysql2, ${service.where}, own database per test)`,
    fresh: async () => {
      const db = mysqlDatabase(service.url);
      await db.create();
      return db;
    },
    statementErrorAbortsTransaction: false,
    keyText: "VARCHAR(255)",
    child: {
      module: fileURLToPath(new URL("../src/adapters/mysql/index.ts", import.meta.url)),
      export: "mysql",
    },
  });

  describe("MariaDB store specifics", () => {
    it("keeps emoji, NUL characters and case-distinct keys apart, exactly", async () => {
      const db = mysqlDatabase(service.url);
      const store = db.make();
      try {
        await store.open();
        const value = { text: "a\u0000b 😀 ü", big: 2 ** 53 - 1 };
        await store.state.set("Key", value);
        await store.state.set("key", "lower");
        await store.state.set("k😀", 1);
        expect((await store.state.get("Key"))?.value).toEqual(value);
        expect((await store.state.get("key"))?.value).toBe("lower");
        // Byte-wise, as on the other stores: "e" (0x65) before the emoji's first byte (0xF0).
        expect((await store.state.list("k")).map((e) => e.key)).toEqual(["key", "k😀"]);
        const first = await store.idempotency.claim({ key: "Order-1", fingerprint: "f" });
        const second = await store.idempotency.claim({ key: "order-1", fingerprint: "g" });
        expect([first.outcome, second.outcome]).toEqual(["claimed", "claimed"]);
      } finally {
        await store.close();
        await db.cleanup();
      }
    });

    it("pins its sessions whatever the server's defaults: UTC, one strict SQL mode, autocommit, UTF-8", async () => {
      // The shared server's defaults cannot be made hostile here (they are global); what the
      // sessions end up with is what a hostile default would be overwritten by.
      const db = mysqlDatabase(service.url);
      const store = db.make();
      try {
        await store.open();
        const { rows } = await store.query(
          "SELECT @@session.time_zone AS tz, @@session.sql_mode AS mode, @@session.autocommit AS ac, @@session.character_set_results AS cs, @@session.collation_connection AS coll, @@session.tx_isolation AS iso",
        );
        expect(rows).toEqual([
          {
            tz: "+00:00",
            mode: "STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION",
            ac: 1,
            cs: "utf8mb4",
            coll: "utf8mb4_bin",
            iso: "READ-COMMITTED",
          },
        ]);
        // A backslash and a quote in a value arrive as they were sent.
        await store.state.set("quote", "a\\t'b\"");
        expect((await store.state.get("quote"))?.value).toBe("a\\t'b\"");
      } finally {
        await store.close();
        await db.cleanup();
      }
    });

    it("a deadlock rolls the transaction back and is reported typed and retryable", async () => {
      const db = mysqlDatabase(service.url);
      const store = db.make();
      try {
        await store.open();
        await store.query("CREATE TABLE pair (id INT PRIMARY KEY, v INT NOT NULL)");
        await store.query("INSERT INTO pair (id, v) VALUES (1, 0), (2, 0)");
        let bothLocked!: () => void;
        let count = 0;
        const barrier = new Promise<void>((r) => (bothLocked = r));
        const cross = (first: number, second: number) =>
          store.transaction(async (tx) => {
            await tx.query("UPDATE pair SET v = v + 1 WHERE id = ?", [first]);
            if (++count === 2) bothLocked();
            await barrier;
            // Caught and ignored: the transaction must still not commit the first update alone.
            await tx.query("UPDATE pair SET v = v + 1 WHERE id = ?", [second]).catch(() => undefined);
            await tx.query("UPDATE pair SET v = v + 10 WHERE id = ?", [first]);
          });
        const outcomes = await Promise.allSettled([cross(1, 2), cross(2, 1)]);
        const failed = outcomes.filter((o) => o.status === "rejected");
        expect(failed).toHaveLength(1);
        const error = (failed[0] as PromiseRejectedResult).reason as Error & { retryable?: boolean };
        expect(isPatchbayError(error, "TRANSACTION_ROLLED_BACK"), String(error)).toBe(true);
        expect(error.retryable).toBe(true);
        // The winner's three updates, nothing of the loser's.
        const { rows } = await store.query<{ v: number }>("SELECT v FROM pair ORDER BY id");
        const total = rows.reduce((sum, r) => sum + Number(r.v), 0);
        expect(total).toBe(12);
      } finally {
        await store.close();
        await db.cleanup();
      }
    });
  });
}
