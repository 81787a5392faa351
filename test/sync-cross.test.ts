/**
 * Pipelines across backends: PostgreSQL → MariaDB, MariaDB → SQLite, SQLite → PostgreSQL. Each
 * asserts destination == source by key and content, values compared as the same instant / number.
 */
import { afterEach, describe, expect, inject, it } from "vitest";
import { pipeline, type Pipeline } from "../src/sync/pipeline.js";
import { testRows } from "./conformance/sync.js";
import {
  mysqlSyncDb,
  postgresSyncDb,
  sqliteSyncDb,
  type StoredRow,
  type SyncDb,
} from "./support/sync-dbs.js";

const { postgres, mysql } = inject("services");

/** `2026-11-26 19:00:00.123456+00`, `...T...Z`, or zone-less (UTC) → µs since the epoch. */
function micros(text: string): number {
  const m =
    /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?\s*(Z|[+-]\d{2}(?::?\d{2})?)?$/i.exec(
      text,
    );
  if (!m) throw new Error(`not a timestamp: ${text}`);
  const [, y, mo, d, h, mi, s, frac = "", zone = "Z"] = m;
  let offset = 0;
  if (zone.toUpperCase() !== "Z") {
    const digits = zone.replace(":", "");
    offset =
      (digits[0] === "-" ? -1 : 1) * (Number(digits.slice(1, 3)) * 60 + Number(digits.slice(3, 5) || 0));
  }
  const ms =
    Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s)) - offset * 60_000;
  return ms * 1000 + Number(frac.padEnd(6, "0").slice(0, 6));
}

const normal = (rows: StoredRow[]) =>
  rows.map((r) => ({
    id: Number(r.id),
    name: r.name,
    amount: Number(r.amount).toFixed(2),
    at: micros(r.updated_at),
  }));

const pairs: Array<{ name: string; ready: boolean; from: () => SyncDb; to: () => SyncDb }> = [
  {
    name: "PostgreSQL → MariaDB",
    ready: postgres.reachable && mysql.reachable,
    from: () => postgresSyncDb(postgres.url),
    to: () => mysqlSyncDb(mysql.url),
  },
  {
    name: "MariaDB → SQLite",
    ready: mysql.reachable,
    from: () => mysqlSyncDb(mysql.url),
    to: () => sqliteSyncDb(),
  },
  {
    name: "SQLite → PostgreSQL",
    ready: postgres.reachable,
    from: () => sqliteSyncDb(),
    to: () => postgresSyncDb(postgres.url),
  },
];

describe("Sync across backends", () => {
  const open: SyncDb[] = [];
  const pipelines: Pipeline[] = [];
  afterEach(async () => {
    await Promise.allSettled(pipelines.splice(0).map((p) => p.close()));
    await Promise.allSettled(open.splice(0).map((d) => d.cleanup()));
  });

  for (const pair of pairs) {
    it.skipIf(!pair.ready)(
      `${pair.name}: incremental merge, then a full replace, equal by key and content`,
      async () => {
        const from = pair.from();
        const to = pair.to();
        open.push(from, to);
        await from.createTable("src");
        await to.createTable("dst");
        await from.insert("src", testRows(700));
        const make = (mode: "incremental" | "full") => {
          const p = pipeline(`cross_${mode}`, {
            store: from.store(),
            source: from.source({ table: "src", cursor: "updated_at", key: "id", safetyLag: 0 }),
            destination: to.destination(
              mode === "full"
                ? { table: "dst", key: "id", write: "replace" }
                : { table: "dst", key: "id", version: "updated_at" },
            ),
            mode,
            batchSize: 150,
          });
          pipelines.push(p);
          return p;
        };
        await make("incremental").run();
        expect(normal(await to.rows("dst"))).toEqual(normal(await from.rows("src")));
        await from.remove("src", [7, 70, 700]);
        await from.update("src", [8, 80], "changed");
        const report = await make("full").run();
        expect(report.rowsDeleted).toBe(3);
        expect(normal(await to.rows("dst"))).toEqual(normal(await from.rows("src")));
      },
    );
  }
});
