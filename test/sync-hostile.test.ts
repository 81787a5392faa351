/**
 * Hostile values the fidelity matrix does not hold, each through the pairs it can break:
 * instants read in a source session whose zone is not UTC (Asia/Kathmandu, +05:45, +05:41:16
 * before 1986) into a column without a zone, including years before 1 AD and after 9999; rows
 * that each fit MariaDB's max_allowed_packet but not together; NDJSON and HTTP API numbers beyond
 * a double; text with a lone surrogate, which no UTF-8 column can hold; times with seven digits
 * of a second (.NET's round-trip format) into PostgreSQL's microsecond columns; keys of 64-bit
 * integers beyond 2^53 and of bytes; a merge into a table with another unique index; a MariaDB
 * database whose default character set is latin1 (MariaDB's own default); CSV files that begin
 * with a UTF-8 byte order mark (as Excel writes them).
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import mysql from "mysql2/promise";
import { describe, expect, inject, it } from "vitest";
import { mysqlDestination } from "../src/adapters/mysql/index.js";
import { sqlite, sqliteDestination } from "../src/adapters/sqlite/index.js";
import { csvSource, ndjsonSource } from "../src/sync/files.js";
import { httpSource } from "../src/sync/http-source.js";
import { isPatchbayError } from "../src/core/errors.js";
import { ndjsonDestination } from "../src/sync/ndjson-destination.js";
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

describe("NDJSON source: numbers a double cannot hold", () => {
  // Each line's numbers as written; a JS number would round all but the last three of them.
  const lines = [
    `{"id": 1, "n": 12345678901234567890, "doc": {"big": 12345678901234567890123, "list": [9007199254740993, 0.1]}}`,
    `{"id": 2, "n": 0.1000000000000000055511151231257827, "doc": [-9223372036854775809]}`,
    `{"id": 3, "n": 9007199254740993, "doc": {"tiny": 1e-400}}`,
    `{"id": 4, "n": 1E2, "doc": {"plain": 1.5}}`,
    `{"id": 5, "n": -0.0, "doc": null}`,
    `{"id": 6, "n": 2.5, "doc": {"x": [1, 2.0, -3e-2]}}`,
  ];
  const exact: Array<[number, string, string | null]> = [
    [1, "12345678901234567890", `{"big":12345678901234567890123,"list":[9007199254740993,0.1]}`],
    [2, "0.1000000000000000055511151231257827", `[-9223372036854775809]`],
    [3, "9007199254740993", `{"tiny":1e-400}`],
    [4, "100", `{"plain":1.5}`],
    [5, "0", null],
    [6, "2.5", `{"x":[1,2,-0.03]}`],
  ];

  it("arrive in a SQLite TEXT column and an NDJSON file as written, never rounded", async () => {
    const dir = mkdtempSync(join(tmpdir(), "patchbay-ndjson-exact-"));
    const store = sqlite({ file: join(dir, "store.db") });
    const file = join(dir, "data.db");
    try {
      writeFileSync(join(dir, "in.ndjson"), lines.join("\n") + "\n");
      const db = sqliteSyncDb({ kind: "sqlite", location: dir });
      await db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, n TEXT, doc TEXT)");
      for (const [name, destination] of [
        ["lite", sqliteDestination({ file, table: "t", key: "id" })],
        ["file", ndjsonDestination({ path: join(dir, "out.ndjson") })],
      ] as const) {
        const p = pipeline(`ndjson_exact_${name}`, {
          store,
          source: ndjsonSource({ path: join(dir, "in.ndjson") }),
          destination,
          mode: "full",
          batchSize: 4,
        });
        const report = await p.run();
        expect(report.rowsWritten).toBe(lines.length);
        await p.close();
      }
      const rows = await db.exec("SELECT id, n, doc FROM t ORDER BY id");
      // 1E2 and -0.0 are JS numbers (SQLite's TEXT affinity writes a bound double as `100.0`).
      const plain = (id: number, n: unknown) => (id === 4 || id === 5 ? Number(n) : String(n));
      expect(rows.map((r) => [Number(r.id), plain(Number(r.id), r.n), r.doc])).toEqual(
        exact.map(([id, n, doc]) => [id, plain(id, n), doc]),
      );
      // The file holds each number's digits: a string where a JS number could not hold it.
      const written = readFileSync(join(dir, "out.ndjson"), "utf8").trim().split("\n");
      expect(written[0]).toBe(
        `{"id":1,"n":"12345678901234567890","doc":{"big":12345678901234567890123,"list":[9007199254740993,0.1]}}`,
      );
      expect(written[5]).toBe(`{"id":6,"n":2.5,"doc":{"x":[1,2,-0.03]}}`);
      await db.cleanup();
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it.skipIf(!services.postgres.reachable)(
    "arrive in PostgreSQL numeric and jsonb columns exactly",
    async () => {
      const dir = mkdtempSync(join(tmpdir(), "patchbay-ndjson-exact-pg-"));
      const db = postgresSyncDb(services.postgres.url);
      try {
        writeFileSync(join(dir, "in.ndjson"), lines.join("\n") + "\n");
        await db.exec(`CREATE TABLE ${db.sqlName("t")} (id int PRIMARY KEY, n numeric, doc jsonb)`);
        const p = pipeline("ndjson_exact_pg", {
          store: db.store(),
          source: ndjsonSource({ path: join(dir, "in.ndjson") }),
          destination: db.destination({ table: "t", key: "id" }),
          mode: "full",
        });
        const report = await p.run();
        expect(report.rowsWritten).toBe(lines.length);
        await p.close();
        const rows = await db.exec(
          `SELECT id, n::text AS n, doc::text AS doc, doc = $1::jsonb AS same FROM ${db.sqlName("t")} ORDER BY id`,
          [exact[0]?.[2]],
        );
        expect(rows.map((r) => [r.id, r.n])).toEqual(exact.map(([id, n]) => [id, id === 4 ? "100" : n]));
        expect(rows[0]?.same).toBe(true);
        expect(rows[1]?.doc).toBe("[-9223372036854775809]");
      } finally {
        await db.cleanup();
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});

describe("HTTP API source: numbers a double cannot hold", () => {
  it("items and page tokens keep their digits: nothing rounded, no page skipped or read twice", async () => {
    // Page tokens are numbers too big for a double: rounded, the second token would ask for a
    // page that does not exist.
    const pages: Record<string, string> = {
      first: `{"data": [{"id": 1, "n": 12345678901234567890, "doc": {"big": 12345678901234567890123}}], "next": 12345678901234567890}`,
      "12345678901234567890": `{"data": [{"id": 2, "n": 9007199254740993, "doc": [0.1000000000000000055511151231257827]}], "next": 12345678901234567891}`,
      "12345678901234567891": `{"data": [{"id": 3, "n": 1.5, "doc": null}], "next": null}`,
    };
    const asked: string[] = [];
    const server = createServer((req, res) => {
      const token = new URL(req.url ?? "/", "http://x").searchParams.get("cursor") ?? "first";
      asked.push(token);
      const body = pages[token];
      res.writeHead(body === undefined ? 404 : 200, { "content-type": "application/json" }).end(body ?? "{}");
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const db = sqliteSyncDb();
    try {
      await db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, n TEXT, doc TEXT)");
      const p = pipeline("http_exact", {
        store: db.store(),
        source: httpSource({
          clientOptions: {
            baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
            retry: false,
          },
          path: "items",
          next: "next",
        }),
        destination: db.destination({ table: "t", key: "id" }),
        mode: "full",
      });
      const report = await p.run();
      expect(report.rowsWritten).toBe(3);
      expect(asked).toEqual(["first", "12345678901234567890", "12345678901234567891"]);
      const rows = await db.exec("SELECT id, n, doc FROM t ORDER BY id");
      expect(rows.map((r) => [Number(r.id), String(r.n), r.doc])).toEqual([
        [1, "12345678901234567890", `{"big":12345678901234567890123}`],
        [2, "9007199254740993", `[0.1000000000000000055511151231257827]`],
        [3, "1.5", null],
      ]);
      await p.close();
    } finally {
      await db.cleanup();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe("HTTP API source: a page that is not the JSON it says", () => {
  it("fails the run with a typed error (HTTP_BODY_INVALID) naming the URL, and loads nothing of it", async () => {
    const server = createServer((_req, res) => {
      res.writeHead(200, { "content-type": "application/json" }).end(`{"data": [{"id": 1}`);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const db = sqliteSyncDb();
    try {
      await db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY)");
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
      const p = pipeline("http_cut", {
        store: db.store(),
        source: httpSource({ clientOptions: { baseUrl: base, retry: false }, path: "items", next: "next" }),
        destination: db.destination({ table: "t", key: "id" }),
        mode: "full",
      });
      const error = await p.run().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isPatchbayError(error, "HTTP_BODY_INVALID")).toBe(true);
      expect((error as Error).message).toContain(`GET ${base}items`);
      expect(await db.exec("SELECT id FROM t")).toEqual([]);
      await p.close();
    } finally {
      await db.cleanup();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe("Text with a lone surrogate (JSON allows \\ud800; UTF-8 has no such character)", () => {
  const dbs = {
    sqlite: {
      ready: true,
      make: () => sqliteSyncDb(),
      ddl: "CREATE TABLE {t} (id INTEGER PRIMARY KEY, s TEXT)",
    },
    postgres: {
      ready: services.postgres.reachable,
      make: () => postgresSyncDb(services.postgres.url),
      ddl: "CREATE TABLE {t} (id int PRIMARY KEY, s text)",
    },
    mysql: {
      ready: services.mysql.reachable,
      make: () => mysqlSyncDb(services.mysql.url),
      ddl: "CREATE TABLE {t} (id INT PRIMARY KEY, s LONGTEXT) CHARACTER SET utf8mb4",
    },
  };
  for (const [kind, spec] of Object.entries(dbs)) {
    it.skipIf(!spec.ready)(
      `${kind}: the row is quarantined (SYNC_VALUE_INEXACT), never stored with U+FFFD`,
      async () => {
        const dir = mkdtempSync(join(tmpdir(), "patchbay-surrogate-"));
        const db = spec.make();
        const meta = sqliteSyncDb();
        try {
          writeFileSync(
            join(dir, "in.ndjson"),
            [
              `{"id": 1, "s": "a\\ud800b"}`,
              `{"id": 2, "s": "ok 😀"}`,
              `{"id": 3, "s": "x\\udc00"}`,
              `{"id": 4, "s": "\\ud83d\\ude00"}`,
            ].join("\n") + "\n",
          );
          await db.exec(spec.ddl.replace("{t}", db.sqlName("t")));
          const destination = db.destination({ table: "t", key: "id" });
          const p = pipeline(`surrogate_${kind}`, {
            store: meta.store(),
            source: ndjsonSource({ path: join(dir, "in.ndjson") }),
            destination,
            mode: "full",
          });
          const report = await p.run();
          expect(report.rowsWritten).toBe(2);
          expect(report.rowsQuarantined).toBe(2);
          const rows = await db.exec(`SELECT id, s FROM ${db.sqlName("t")} ORDER BY id`);
          expect(rows.map((r) => [Number(r.id), r.s])).toEqual([
            [2, "ok 😀"],
            [4, "😀"],
          ]);
          const quarantined = await destination.quarantined?.(`surrogate_${kind}`);
          expect(quarantined?.map((q) => [(q.row as { id: number }).id, q.error.code]).sort()).toEqual([
            [1, "SYNC_VALUE_INEXACT"],
            [3, "SYNC_VALUE_INEXACT"],
          ]);
          await p.close();
        } finally {
          await meta.cleanup();
          await db.cleanup();
          rmSync(dir, { recursive: true, force: true });
        }
      },
    );
  }
});

describe("PostgreSQL timestamp and timestamptz keep six digits of a second", () => {
  it.skipIf(!services.postgres.reachable)(
    "a time with seven (.NET's `o` format) is quarantined (SYNC_VALUE_INEXACT), never rounded; six or trailing zeros load",
    async () => {
      const from = sqliteSyncDb();
      const to = postgresSyncDb(services.postgres.url);
      try {
        await from.exec("CREATE TABLE stamps (id INTEGER PRIMARY KEY, at TEXT, wall TEXT)");
        const rows: Array<[number, string, string]> = [
          [1, "2026-01-01T00:00:00.1234567Z", "2026-01-01T00:00:00.123456Z"],
          [2, "2026-01-01T00:00:00.123456Z", "2026-01-01 00:00:00.9999999"],
          [3, "2026-01-01T00:00:00.1234560+00:00", "2026-01-01 00:00:00.1000000"],
        ];
        for (const r of rows) await from.exec("INSERT INTO stamps VALUES (?, ?, ?)", r);
        await to.exec(
          `CREATE TABLE ${to.sqlName("stamps")} (id int PRIMARY KEY, at timestamptz, wall timestamp)`,
        );
        const p = pipeline("seven_digits", {
          store: from.store(),
          source: from.source({ table: "stamps", key: "id" }),
          destination: to.destination({ table: "stamps", key: "id" }),
          mode: "full",
        });
        const report = await p.run();
        expect(report.rowsQuarantined).toBe(2);
        expect(report.rowsWritten).toBe(1);
        const loaded = await to.exec(
          `SELECT id, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') AS at, wall::text AS wall FROM ${to.sqlName("stamps")} ORDER BY id`,
        );
        expect(loaded).toEqual([{ id: 3, at: "2026-01-01 00:00:00.123456", wall: "2026-01-01 00:00:00.1" }]);
        await p.close();
      } finally {
        await from.cleanup();
        await to.cleanup();
      }
    },
  );
});

describe("Keys a JS number or string cannot stand for: 64-bit integers beyond 2^53, bytes", () => {
  const dbs = {
    sqlite: {
      ready: true,
      make: () => sqliteSyncDb(),
      ddl: "CREATE TABLE {t} (a INTEGER NOT NULL, b INTEGER NOT NULL, v TEXT, PRIMARY KEY (a, b))",
      bin: "CREATE TABLE {t} (k BLOB PRIMARY KEY, v TEXT)",
      read: "SELECT CAST(a AS TEXT) || ':' || CAST(b AS TEXT) || '=' || v AS r FROM {t}",
      readBin: "SELECT hex(k) || '=' || v AS r FROM {t}",
    },
    postgres: {
      ready: services.postgres.reachable,
      make: () => postgresSyncDb(services.postgres.url),
      ddl: "CREATE TABLE {t} (a bigint, b bigint, v text, PRIMARY KEY (a, b))",
      bin: "CREATE TABLE {t} (k bytea PRIMARY KEY, v text)",
      read: "SELECT a || ':' || b || '=' || v AS r FROM {t}",
      readBin: "SELECT upper(encode(k, 'hex')) || '=' || v AS r FROM {t}",
    },
    mysql: {
      ready: services.mysql.reachable,
      make: () => mysqlSyncDb(services.mysql.url),
      ddl: "CREATE TABLE {t} (a BIGINT, b BIGINT, v TEXT, PRIMARY KEY (a, b))",
      bin: "CREATE TABLE {t} (k VARBINARY(16) PRIMARY KEY, v TEXT)",
      read: "SELECT CONCAT(a, ':', b, '=', v) AS r FROM {t}",
      readBin: "SELECT CONCAT(HEX(k), '=', v) AS r FROM {t}",
    },
  };
  for (const [kind, spec] of Object.entries(dbs)) {
    it.skipIf(!spec.ready)(
      `SQLite → ${kind}: every row arrives once, none merged with another or failing the run`,
      async () => {
        const from = sqliteSyncDb();
        const to = spec.make();
        try {
          await from.exec(
            "CREATE TABLE src (a INTEGER NOT NULL, b INTEGER NOT NULL, v TEXT, PRIMARY KEY (a, b))",
          );
          await from.exec("CREATE TABLE bin (id INTEGER PRIMARY KEY, v TEXT)");
          const pairs: Array<[bigint, bigint]> = [
            [1n, 9223372036854775807n],
            [1n, 9007199254740993n],
            [1n, 9007199254740992n],
            [9007199254740993n, -9223372036854775808n],
          ];
          for (const [a, b] of pairs)
            await from.exec("INSERT INTO src VALUES (?, ?, ?)", [a, b, `${a}:${b}`]);
          // Binary keys (made by a transform; a CDC source gives bytea keys so) that are not UTF-8:
          // as text, each would read as U+FFFD.
          for (const [i, hex] of ["FF", "FE", "C3", "00", "FFFE"].entries())
            await from.exec("INSERT INTO bin VALUES (?, ?)", [i, hex]);
          await to.exec(spec.ddl.replace("{t}", to.sqlName("dst")));
          await to.exec(spec.bin.replace("{t}", to.sqlName("bin")));
          for (const [table, key] of [
            ["src", ["a", "b"]],
            ["bin", ["k"]],
          ] as const) {
            const p = pipeline(`keys_${table}`, {
              store: from.store(),
              source: from.source({ table, key: table === "src" ? [...key] : "id" }),
              destination: to.destination({ table: table === "src" ? "dst" : "bin", key: [...key] }),
              mode: "full",
              batchSize: 10,
              ...(table === "bin"
                ? { transform: (row: Row) => ({ k: Buffer.from(String(row.v), "hex"), v: row.v }) }
                : {}),
            });
            const report = await p.run();
            expect(report.rowsWritten).toBe(table === "src" ? 4 : 5);
            await p.close();
          }
          const rows = (await to.exec(spec.read.replace("{t}", to.sqlName("dst"))))
            .map((r) => String(r.r))
            .sort();
          expect(rows).toEqual(pairs.map(([a, b]) => `${a}:${b}=${a}:${b}`).sort());
          const bin = (await to.exec(spec.readBin.replace("{t}", to.sqlName("bin"))))
            .map((r) => String(r.r))
            .sort();
          expect(bin).toEqual(["00=00", "C3=C3", "FE=FE", "FF=FF", "FFFE=FFFE"]);
        } finally {
          await from.cleanup();
          await to.cleanup();
        }
      },
    );
  }
});

describe("Merge into a table with a unique index besides the key", () => {
  const dbs = {
    sqlite: {
      ready: true,
      make: () => sqliteSyncDb(),
      ddl: "CREATE TABLE {t} (id INTEGER PRIMARY KEY, email TEXT UNIQUE, name TEXT)",
    },
    postgres: {
      ready: services.postgres.reachable,
      make: () => postgresSyncDb(services.postgres.url),
      ddl: "CREATE TABLE {t} (id int PRIMARY KEY, email text UNIQUE, name text)",
    },
    mysql: {
      ready: services.mysql.reachable,
      make: () => mysqlSyncDb(services.mysql.url),
      ddl: "CREATE TABLE {t} (id INT PRIMARY KEY, email VARCHAR(100) UNIQUE, name TEXT)",
    },
  };
  for (const [kind, spec] of Object.entries(dbs)) {
    it.skipIf(!spec.ready)(
      `${kind}: a new row whose email a stored row still holds fails the batch (QUERY_FAILED); the stored row is not overwritten`,
      async () => {
        const from = sqliteSyncDb();
        const to = spec.make();
        try {
          await from.exec("CREATE TABLE src (id INTEGER PRIMARY KEY, email TEXT, name TEXT)");
          await from.exec("INSERT INTO src VALUES (1, 'a@x', 'one'), (2, 'b@x', 'two')");
          await to.exec(spec.ddl.replace("{t}", to.sqlName("dst")));
          const run = () =>
            pipeline("unique_merge", {
              store: from.store(),
              source: from.source({ table: "src", key: "id" }),
              destination: to.destination({ table: "dst", key: "id" }),
              mode: "full",
            }).run();
          await run();
          // Row 1 is gone at the source, row 3 takes its email: a merge has not deleted row 1.
          await from.exec("UPDATE src SET email = 'a@x', name = 'three', id = 3 WHERE id = 1");
          const error = await run().then(
            () => undefined,
            (e: unknown) => e as { code?: string },
          );
          expect(error?.code).toBe("QUERY_FAILED");
          const rows = await to.exec(`SELECT id, email, name FROM ${to.sqlName("dst")} ORDER BY id`);
          expect(rows.map((r) => [Number(r.id), r.email, r.name])).toEqual([
            [1, "a@x", "one"],
            [2, "b@x", "two"],
          ]);
        } finally {
          await from.cleanup();
          await to.cleanup();
        }
      },
    );
  }
});

describe("MariaDB database whose default character set is latin1", () => {
  it.skipIf(!services.mysql.reachable)(
    "checkpoints and quarantined rows holding emoji are stored: the run succeeds and a rerun adds nothing",
    async () => {
      const name = `pb_latin1_${Math.random().toString(16).slice(2, 10)}`;
      const server = new URL(services.mysql.url);
      server.pathname = "/";
      const admin = await mysql.createConnection({ uri: server.toString() });
      const from = sqliteSyncDb();
      const url = new URL(services.mysql.url);
      url.pathname = `/${name}`;
      const destination = mysqlDestination({ url: url.toString(), table: "dst", key: "k" });
      try {
        await admin.query(`CREATE DATABASE ${name} CHARACTER SET latin1`);
        // The user's table is utf8mb4; the sync's own tables are made by the destination.
        await admin.query(
          `CREATE TABLE ${name}.dst (k VARCHAR(50) PRIMARY KEY, v TEXT, d DOUBLE) CHARACTER SET utf8mb4`,
        );
        await from.exec("CREATE TABLE src (k TEXT PRIMARY KEY, v TEXT, d REAL)");
        await from.exec("INSERT INTO src VALUES ('a', 'x', 1), ('b 😀', 'é 😀', 2), ('c 😀', 'z', 3)");
        const run = () =>
          pipeline("latin1", {
            store: from.store(),
            source: from.source({ table: "src", key: "k" }),
            destination,
            mode: "full",
            batchSize: 1,
            // NaN, which MariaDB has not: that row is quarantined, emoji and all.
            transform: (row: Row) => (row.k === "b 😀" ? { ...row, d: Number.NaN } : row),
          }).run();
        for (let i = 0; i < 2; i++) {
          const report = await run();
          expect([report.status, report.rowsWritten, report.rowsQuarantined]).toEqual(["succeeded", 2, 1]);
        }
        const [rows] = await admin.query(`SELECT k, v FROM ${name}.dst ORDER BY k`);
        expect(rows).toEqual([
          { k: "a", v: "x" },
          { k: "c 😀", v: "z" },
        ]);
        const [quarantined] = await admin.query(`SELECT row_data FROM ${name}.patchbay_sync_quarantine`);
        expect(
          (quarantined as Array<{ row_data: string }>).map((q) => JSON.parse(q.row_data) as unknown),
        ).toEqual([{ k: "b 😀", v: "é 😀", d: null }]);
      } finally {
        await destination.close();
        await admin.query(`DROP DATABASE IF EXISTS ${name}`);
        await admin.end();
        await from.cleanup();
      }
    },
  );
});

describe('CSV file with a UTF-8 byte order mark (Excel\'s "CSV UTF-8")', () => {
  it("the mark is not part of the first column's name, nor of the first value", async () => {
    const dir = mkdtempSync(join(tmpdir(), "patchbay-bom-"));
    const db = sqliteSyncDb();
    try {
      const bom = "\uFEFF";
      writeFileSync(join(dir, "header.csv"), `${bom}id,name\n1,a\n2,b\n`);
      writeFileSync(join(dir, "bare.csv"), `${bom}x1,first\nx2,second\n`);
      // The mark inside the file is a character like any other: kept.
      writeFileSync(join(dir, "inner.csv"), `id,name\n1,${bom}a\n`);
      await db.exec("CREATE TABLE h (id TEXT PRIMARY KEY, name TEXT)");
      await db.exec("CREATE TABLE b (code TEXT PRIMARY KEY, label TEXT)");
      await db.exec("CREATE TABLE i (id TEXT PRIMARY KEY, name TEXT)");
      const runs: Array<[string, ReturnType<typeof csvSource>, string, string]> = [
        ["h", csvSource({ path: join(dir, "header.csv") }), "h", "id"],
        [
          "b",
          csvSource({ path: join(dir, "bare.csv"), header: false, columns: ["code", "label"] }),
          "b",
          "code",
        ],
        ["i", csvSource({ path: join(dir, "inner.csv") }), "i", "id"],
      ];
      for (const [name, source, table, key] of runs) {
        const p = pipeline(`bom_${name}`, {
          store: db.store(),
          source,
          destination: db.destination({ table, key }),
          mode: "full",
        });
        const report = await p.run();
        expect(report.rowsQuarantined).toBe(0);
        await p.close();
      }
      expect(await db.exec("SELECT id, name FROM h ORDER BY id")).toEqual([
        { id: "1", name: "a" },
        { id: "2", name: "b" },
      ]);
      expect(await db.exec("SELECT code, label FROM b ORDER BY code")).toEqual([
        { code: "x1", label: "first" },
        { code: "x2", label: "second" },
      ]);
      expect(await db.exec("SELECT id, name FROM i")).toEqual([{ id: "1", name: `${bom}a` }]);
    } finally {
      await db.cleanup();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
