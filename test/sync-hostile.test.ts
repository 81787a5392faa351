/**
 * Hostile values the fidelity matrix does not hold, each through the pairs it can break:
 * instants read in a source session whose zone is not UTC (Asia/Kathmandu, +05:45, +05:41:16
 * before 1986) into a column without a zone, including years before 1 AD and after 9999; rows
 * that each fit MariaDB's max_allowed_packet but not together.
 */
import { describe, expect, inject, it } from "vitest";
import { postgresSource } from "../src/adapters/postgres/index.js";
import type { Row } from "../src/sync/contracts.js";
import { pipeline } from "../src/sync/pipeline.js";
import { mysqlSyncDb, postgresSyncDb, sqliteSyncDb } from "./support/sync-dbs.js";

const services = inject("services");

describe("PostgreSQL timestamptz into a PostgreSQL timestamp: the instant's UTC wall-clock time", () => {
  // Written in a UTC session; read by a source whose sessions are in Kathmandu.
  const instants: Array<[number, string, string]> = [
    [1, "2026-01-01 00:00:00.000001+00", "2026-01-01 00:00:00.000001"],
    [2, "1970-01-01 00:00:00+00", "1970-01-01 00:00:00"],
    [3, "0044-03-15 12:00:00+00 BC", "0044-03-15 12:00:00 BC"],
    [4, "10000-01-01 00:00:00+00", "10000-01-01 00:00:00"],
    [5, "0001-01-01 00:00:00+00", "0001-01-01 00:00:00"],
    [6, "294276-12-31 23:59:59.999999+00", "294276-12-31 23:59:59.999999"],
    [7, "4713-11-24 00:00:00+00 BC", "4713-11-24 00:00:00 BC"],
  ];
  for (const variant of ["plain", "transformed"] as const) {
    it.skipIf(!services.postgres.reachable)(
      `${variant === "plain" ? "COPY pass-through" : "through a transform"}: every year, whatever the source session's zone`,
      async () => {
        const db = postgresSyncDb(services.postgres.url);
        const url = new URL(db.config.location);
        url.searchParams.set("options", "-c TimeZone=Asia/Kathmandu");
        const source = postgresSource({ url: url.toString(), table: db.table("src"), key: "id" });
        try {
          await db.exec(`CREATE TABLE ${db.sqlName("src")} (id int PRIMARY KEY, at timestamptz)`);
          await db.exec(`CREATE TABLE ${db.sqlName("dst")} (id int PRIMARY KEY, at timestamp)`);
          await db.exec(
            `INSERT INTO ${db.sqlName("src")} SELECT (v->>0)::int, (v->>1)::timestamptz FROM json_array_elements($1::json) v`,
            [JSON.stringify(instants.map(([id, at]) => [id, at]))],
          );
          const p = pipeline(`zones_${variant}`, {
            store: db.store(),
            source,
            destination: db.destination({ table: "dst", key: "id" }),
            mode: "full",
            ...(variant === "transformed" ? { transform: (row: Row) => ({ ...row }) } : {}),
          });
          const report = await p.run();
          expect(report.rowsWritten).toBe(instants.length);
          const rows = await db.exec(`SELECT id, at::text AS at FROM ${db.sqlName("dst")} ORDER BY id`);
          expect(rows.map((r) => [r.id, r.at])).toEqual(instants.map(([id, , wall]) => [id, wall]));
          await p.close();
        } finally {
          await source.close();
          await db.cleanup();
        }
      },
    );
  }
});

describe("MariaDB destination: large rows", () => {
  it.skipIf(!services.mysql.reachable)(
    "a batch of rows that each fit max_allowed_packet but together do not is loaded, and so are its quarantined rows",
    async () => {
      const from = sqliteSyncDb();
      const to = mysqlSyncDb(services.mysql.url);
      try {
        const [limit] = await to.exec("SELECT @@max_allowed_packet AS n");
        // 20 rows of a tenth of the packet each: twice the packet in one batch.
        const size = Math.floor(Number(limit?.n) / 10);
        await from.exec("CREATE TABLE big (id INTEGER PRIMARY KEY, body TEXT, ratio REAL)");
        for (let id = 1; id <= 32; id++) {
          // Rows 21-32 hold NaN, which MariaDB has not: quarantined with their 1/10 packet of text.
          await from.exec("INSERT INTO big VALUES (?, ?, ?)", [
            id,
            String(id % 10).repeat(size),
            id > 20 ? 0 : id,
          ]);
        }
        await to.exec("CREATE TABLE big (id INT PRIMARY KEY, body LONGTEXT, ratio DOUBLE)");
        const p = pipeline("big_mysql", {
          store: from.store(),
          source: from.source({ table: "big", key: "id" }),
          destination: to.destination({ table: "big", key: "id" }),
          mode: "full",
          batchSize: 100,
          // NaN as SQLite cannot hold it: a transform gives it.
          transform: (row: Row) => ({ ...row, ratio: row.ratio === 0 ? Number.NaN : row.ratio }),
        });
        const report = await p.run();
        expect(report.status).toBe("succeeded");
        expect(report.rowsWritten).toBe(20);
        expect(report.rowsQuarantined).toBe(12);
        const rows = await to.exec("SELECT id, LENGTH(body) AS n, LEFT(body, 1) AS c FROM big ORDER BY id");
        expect(rows.map((r) => [Number(r.id), Number(r.n), r.c])).toEqual(
          Array.from({ length: 20 }, (_, i) => [i + 1, size, String((i + 1) % 10)]),
        );
        const [quarantined] = await to.exec("SELECT COUNT(*) AS n FROM patchbay_sync_quarantine");
        expect(Number(quarantined?.n)).toBe(12);
        await p.close();
      } finally {
        await from.cleanup();
        await to.cleanup();
      }
    },
  );
});
