/**
 * Change data capture from PostgreSQL logical replication, against the real server: the
 * snapshot, every insert, update and delete, unchanged TOAST values, the snapshot-to-stream seam
 * under concurrent writes, and the setup errors.
 */
import { randomBytes } from "node:crypto";
import pg from "pg";
import { afterEach, describe, expect, inject, it } from "vitest";
import { postgresChanges, postgresDestination } from "../src/adapters/postgres/index.js";
import { changeCapture, type ChangeCapture } from "../src/cdc/change-capture.js";
import { isPatchbayError } from "../src/core/errors.js";
import { toCdcError } from "../src/adapters/postgres/cdc/replication.js";
import { checkWalLevel, walLevelError } from "../src/adapters/postgres/cdc/slots.js";
import { cdcFixture, eventually, cdcSuiteProblem, type CdcFixture } from "./support/cdc.js";

const { postgres: service } = inject("services");
const problem = await cdcSuiteProblem(service);

const fixtures: CdcFixture[] = [];
const captures: ChangeCapture[] = [];
afterEach(async () => {
  for (const c of captures.splice(0)) await c.close().catch(() => undefined);
  for (const f of fixtures.splice(0)) await f.cleanup();
});

async function setup(options: { batchSize?: number } = {}) {
  const f = await cdcFixture(service.url);
  fixtures.push(f);
  const ddl = (schema: string) =>
    `CREATE TABLE ${schema}.items (id int PRIMARY KEY, name text, big text, n int NOT NULL DEFAULT 0)`;
  await f.sql(ddl(f.src));
  await f.sql(ddl(f.dst));
  const make = (source: { maxLagBytes?: number } = {}) =>
    changeCapture({
      name: `cdc_${f.id}`,
      store: f.store(),
      source: postgresChanges({
        url: f.url,
        slot: f.slot,
        publication: f.publication,
        tables: [`${f.src}.items`],
        heartbeat: "1s",
        ...source,
      }),
      destination: postgresDestination({ url: f.url, table: `${f.dst}.items`, key: "id" }),
      ...(options.batchSize ? { batchSize: options.batchSize } : {}),
      restartDelay: "200ms",
    });
  const cdc = make();
  captures.push(cdc);
  const same = async () => (await f.checksum(`${f.src}.items`)) === (await f.checksum(`${f.dst}.items`));
  return { f, cdc, make, same };
}

/** A text PostgreSQL stores out of line (TOAST): random, so compression cannot shrink it inline. */
const bigText = () => randomBytes(12_000).toString("base64");

describe.skipIf(problem !== undefined)(
  "CDC from PostgreSQL logical replication",
  { timeout: 180_000 },
  () => {
    it("copies the existing rows, then applies inserts, updates and deletes in commit order", async () => {
      const { f, cdc, same } = await setup();
      await f.sql(`INSERT INTO ${f.src}.items (id, name) SELECT g, 'r' || g FROM generate_series(1, 500) g`);
      cdc.start();
      await eventually(same, 60_000, "the snapshot");
      await f.sql(`INSERT INTO ${f.src}.items (id, name) VALUES (1001, 'new')`);
      await f.sql(`UPDATE ${f.src}.items SET name = 'changed', n = n + 1 WHERE id <= 10`);
      await f.sql(`DELETE FROM ${f.src}.items WHERE id BETWEEN 20 AND 29`);
      // Deleted and inserted again with the same key, in one transaction.
      await f.sql(
        `BEGIN; DELETE FROM ${f.src}.items WHERE id = 30; INSERT INTO ${f.src}.items (id, name) VALUES (30, 'again'); COMMIT`,
      );
      await eventually(same, 60_000, "the changes");
      const rows = await f.sql(`SELECT count(*)::int AS n FROM ${f.dst}.items`);
      expect(rows[0]?.n).toBe(491);
      const again = await f.sql(`SELECT name FROM ${f.dst}.items WHERE id = 30`);
      expect(again[0]?.name).toBe("again");
      expect(cdc.failure).toBeUndefined();
    });

    it("keeps an unchanged TOAST value (pgoutput's 'u') instead of writing NULL", async () => {
      const { f, cdc, same } = await setup();
      const big = bigText();
      await f.sql(`INSERT INTO ${f.src}.items (id, name, big) VALUES (1, 'a', $1)`, [big]);
      cdc.start();
      await eventually(same, 60_000, "the snapshot");
      // Streamed insert of a TOASTed row, then updates that do not touch it.
      await f.sql(`INSERT INTO ${f.src}.items (id, name, big) VALUES (2, 'b', $1)`, [bigText()]);
      await f.sql(`UPDATE ${f.src}.items SET name = 'a2', n = n + 1`);
      await f.sql(
        `BEGIN; UPDATE ${f.src}.items SET n = n + 1 WHERE id = 1; UPDATE ${f.src}.items SET n = n + 1 WHERE id = 1; COMMIT`,
      );
      // One transaction mixing a row that carries the value with rows that do not.
      await f.sql(
        `WITH i AS (INSERT INTO ${f.src}.items (id, name, big) VALUES (3, 'c', $1) RETURNING 1)
       UPDATE ${f.src}.items SET n = n + 1 WHERE id IN (1, 2)`,
        [bigText()],
      );
      await eventually(same, 60_000, "the updates");
      const rows = await f.sql(`SELECT id, length(big) AS len FROM ${f.dst}.items ORDER BY id`);
      expect(rows.map((r) => r.len)).toEqual([big.length, big.length, big.length]);
    });

    it("streams values of every kind as the server sent them (COPY text passed through): escapes, NULLs, arrays, json, bytea, times, keys changed", async () => {
      const { f } = await setup();
      const ddl = (schema: string) =>
        `CREATE TABLE ${schema}.kinds (id int PRIMARY KEY, t text, j jsonb, a text[], b bytea, ts timestamp(3),
           tz timestamptz, d numeric(12,4), f double precision, big text)`;
      await f.sql(ddl(f.src));
      await f.sql(ddl(f.dst));
      const cdc = changeCapture({
        name: `cdc_kinds_${f.id}`,
        store: f.store(),
        source: postgresChanges({
          url: f.url,
          slot: f.slot,
          publication: f.publication,
          tables: [`${f.src}.kinds`],
          snapshot: false,
        }),
        destination: postgresDestination({ url: f.url, table: `${f.dst}.kinds`, key: "id" }),
        restartDelay: "200ms",
      });
      captures.push(cdc);
      cdc.start();
      await eventually(async () => (await cdc.status()).checkpoint !== undefined, 60_000, "the slot");
      const odd = "tab\there, new\nline, cr\r, back\\slash \\N, quote \" ' and é ✓";
      await f.sql(
        `INSERT INTO ${f.src}.kinds VALUES
           (1, $1, $2::jsonb, $3::text[], $4::bytea, '2026-12-07 01:02:03.456', '2026-12-07 01:02:03.456+05:30', 12345678.1234, 0.1, $5),
           (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
           (3, '\\N', '{"a":[1,"x\\ty"]}', '{"a b","c,d",NULL,"e\\"f"}', '\\x00ff5c09', 'infinity', '-infinity', 'NaN', '-0', '')`,
        [
          odd,
          JSON.stringify({ k: odd, n: [1, null] }),
          [odd, null, "{}"],
          Buffer.from([0, 9, 10, 92, 255]),
          bigText(),
        ],
      );
      // Updates (one leaves the TOASTed value unsent), a key change, a delete, in one transaction.
      await f.sql(
        `BEGIN; UPDATE ${f.src}.kinds SET t = t || '\t2' WHERE id = 1; UPDATE ${f.src}.kinds SET id = 4 WHERE id = 2;
         DELETE FROM ${f.src}.kinds WHERE id = 3; INSERT INTO ${f.src}.kinds (id, t) VALUES (3, 'back'); COMMIT`,
      );
      const same = async () => (await f.checksum(`${f.src}.kinds`)) === (await f.checksum(`${f.dst}.kinds`));
      await eventually(same, 60_000, "the changes");
      const rows = await f.sql(`SELECT id, t, length(big) AS len FROM ${f.dst}.kinds ORDER BY id`);
      expect(rows.map((r) => r.id)).toEqual([1, 3, 4]);
      expect(rows[0]?.t).toBe(`${odd}\t2`);
      expect(rows[0]?.len).toBeGreaterThan(10_000);
      expect(cdc.failure).toBeUndefined();
    });

    it("hands over from snapshot to stream under concurrent writes: no change lost or doubled at the seam", async () => {
      const { f, cdc, same } = await setup({ batchSize: 200 });
      await f.sql(`INSERT INTO ${f.src}.items (id, name) SELECT g, 'r' || g FROM generate_series(1, 3000) g`);
      let writing = true;
      let writes = 0;
      const writer = (async () => {
        let next = 100_000;
        while (writing) {
          const id = 1 + Math.floor(Math.random() * 3000);
          await f.sql(
            `WITH u AS (UPDATE ${f.src}.items SET n = n + 1 WHERE id = $1 RETURNING 1),
                i AS (INSERT INTO ${f.src}.items (id, name) VALUES ($2, 'w') RETURNING 1)
           DELETE FROM ${f.src}.items WHERE id = $3`,
            [id, next++, 1 + Math.floor(Math.random() * 3000)],
          );
          writes++;
        }
      })();
      await new Promise((r) => setTimeout(r, 300));
      cdc.start(); // the slot and its snapshot are taken while the writer runs
      await new Promise((r) => setTimeout(r, 3000));
      writing = false;
      await writer;
      expect(writes).toBeGreaterThan(10);
      await eventually(same, 120_000, "the destination to equal the source");
      // Every update counted once: the sum of counters matches.
      const [a] = await f.sql(`SELECT sum(n)::int AS s, count(*)::int AS c FROM ${f.src}.items`);
      const [b] = await f.sql(`SELECT sum(n)::int AS s, count(*)::int AS c FROM ${f.dst}.items`);
      expect(b).toEqual(a);
    });

    it("the article's trigger + pg_notify loses changes while its listener is down and fails a 9000-byte row; the slot delivers both", async () => {
      const { f, cdc, make, same } = await setup();
      const channel = `pb_cdc_${f.id}`;
      await f.sql(`CREATE FUNCTION ${f.src}.notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN PERFORM pg_notify('${channel}', row_to_json(NEW)::text); RETURN NEW; END $$`);
      await f.sql(
        `CREATE TRIGGER notify_change AFTER INSERT OR UPDATE ON ${f.src}.items FOR EACH ROW EXECUTE FUNCTION ${f.src}.notify_change()`,
      );
      const heard: number[] = [];
      const listen = async () => {
        const client = new pg.Client({ connectionString: f.url });
        await client.connect();
        client.on("notification", (m) =>
          heard.push(Number((JSON.parse(m.payload ?? "{}") as { id: number }).id)),
        );
        await client.query(`LISTEN ${channel}`);
        return client;
      };
      let listener = await listen();
      await f.sql(`INSERT INTO ${f.src}.items (id, name) VALUES (1, 'heard')`);
      await eventually(() => Promise.resolve(heard.includes(1)), 10_000, "the first notification");
      await listener.end();
      // The listener is down (a deploy, a crash): these are never delivered to it.
      await f.sql(`INSERT INTO ${f.src}.items (id, name) VALUES (2, 'while down'), (3, 'while down')`);
      listener = await listen();
      await f.sql(`INSERT INTO ${f.src}.items (id, name) VALUES (4, 'heard again')`);
      await eventually(
        () => Promise.resolve(heard.includes(4)),
        10_000,
        "the notification after the restart",
      );
      expect(heard.sort()).toEqual([1, 4]);
      // A 9000-byte row: NOTIFY refuses payloads of 8000 bytes or more, and takes the insert down with it.
      const large = "x".repeat(9000);
      const failed = await f
        .sql(`INSERT INTO ${f.src}.items (id, name, big) VALUES (5, 'large', $1)`, [large])
        .then(
          () => undefined,
          (e: unknown) => e as { code?: string; message: string },
        );
      expect(failed?.message).toMatch(/payload string too long/);
      await listener.end();

      // Ours: the slot keeps every change while the capture is down, whatever its size.
      await f.sql(`DROP TRIGGER notify_change ON ${f.src}.items`);
      cdc.start();
      await eventually(same, 60_000, "the snapshot");
      await cdc.stop();
      await f.sql(`INSERT INTO ${f.src}.items (id, name) VALUES (6, 'while down'), (7, 'while down')`);
      await f.sql(`INSERT INTO ${f.src}.items (id, name, big) VALUES (5, 'large', $1)`, [large]);
      const again = make();
      captures.push(again);
      again.start();
      await eventually(same, 60_000, "the changes made while it was down");
      const rows = await f.sql(`SELECT id, length(big) AS len FROM ${f.dst}.items ORDER BY id`);
      expect(rows.map((r) => r.id)).toEqual([1, 2, 3, 4, 5, 6, 7]);
      expect(rows.find((r) => r.id === 5)?.len).toBe(9000);
    });

    it("a slot whose consumer stopped trips the lag limit (CDC_LAG_EXCEEDED, recorded); a restart resumes", async () => {
      const { f, cdc, make, same } = await setup();
      await f.sql(`INSERT INTO ${f.src}.items (id, name) VALUES (1, 'a')`);
      cdc.start();
      await eventually(same, 60_000, "the snapshot");
      await cdc.stop();
      // About 5 MB of WAL while nobody consumes the slot.
      await f.sql(
        `INSERT INTO ${f.src}.items (id, name) SELECT g, repeat('x', 100) FROM generate_series(2, 40000) g`,
      );
      const limited = make({ maxLagBytes: 1024 * 1024 });
      captures.push(limited);
      limited.start();
      await eventually(() => Promise.resolve(limited.failure !== undefined), 60_000, "the lag limit");
      expect(isPatchbayError(limited.failure, "CDC_LAG_EXCEEDED")).toBe(true);
      const status = await limited.status();
      expect(status.runs[0]?.error?.code).toBe("CDC_LAG_EXCEEDED");
      expect(status.slot?.lagBytes).toBeGreaterThan(1024 * 1024);
      await limited.stop();
      const resumed = make();
      captures.push(resumed);
      resumed.start();
      await eventually(same, 120_000, "the capture to catch up");
      expect((await resumed.status()).slot?.lagBytes ?? 0).toBeLessThan(1024 * 1024 * 64);
    });

    it("an idle capture's heartbeat advances the slot past other tables' WAL (stored first, then confirmed)", async () => {
      const { f, cdc, same } = await setup();
      await f.sql(`INSERT INTO ${f.src}.items (id, name) VALUES (1, 'a')`);
      cdc.start();
      await eventually(same, 60_000, "the snapshot");
      await f.sql(`CREATE TABLE ${f.src}.other (id int PRIMARY KEY, pad text)`);
      const confirmed = async () => {
        const [r] = await f.sql(
          "SELECT confirmed_flush_lsn::text AS lsn, pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint AS lag FROM pg_replication_slots WHERE slot_name = $1",
          [f.slot],
        );
        return { lsn: String(r?.lsn), lag: Number(r?.lag) };
      };
      const before = await confirmed();
      // WAL the capture does not decode into changes (a table outside the publication).
      await f.sql(`INSERT INTO ${f.src}.other SELECT g, repeat('x', 200) FROM generate_series(1, 20000) g`);
      const grown = await confirmed();
      expect(grown.lag).toBeGreaterThan(1024 * 1024);
      // Past the end of that WAL (not "near the server's current position": other sessions of a
      // shared server keep writing WAL, so the gap to it need never close).
      const [written] = await f.sql("SELECT pg_current_wal_lsn()::text AS lsn");
      const passed = async () => {
        const [r] = await f.sql(
          "SELECT confirmed_flush_lsn >= $2::pg_lsn AS ok FROM pg_replication_slots WHERE slot_name = $1",
          [f.slot, written?.lsn],
        );
        return r?.ok === true;
      };
      await eventually(passed, 60_000, "the slot to advance past the other table's WAL");
      const status = await cdc.status();
      // The position confirmed to the server is the one stored with the destination.
      const stored = (status.checkpoint as { cursor: { lsn: string } }).cursor.lsn;
      const after = await confirmed();
      expect(after.lsn).not.toBe(before.lsn);
      const [cmp] = await f.sql("SELECT $1::pg_lsn >= $2::pg_lsn AS ok", [stored, after.lsn]);
      expect(cmp?.ok).toBe(true);
    });

    it("refuses a table without a key or replica identity with CDC_REPLICA_IDENTITY", async () => {
      const { f } = await setup();
      await f.sql(`CREATE TABLE ${f.src}.nokey (a int, b text)`);
      const source = postgresChanges({
        url: f.url,
        slot: f.slot,
        publication: f.publication,
        tables: [`${f.src}.nokey`],
      });
      const it = source.read({
        mode: "incremental",
        cursor: undefined,
        batchSize: 10,
        signal: new AbortController().signal,
      });
      const error = await it[Symbol.asyncIterator]()
        .next()
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      await source.close();
      expect(isPatchbayError(error, "CDC_REPLICA_IDENTITY")).toBe(true);
    });

    // What this covers: the check reads the real server's wal_level and passes it (logical); the
    // decision for any other level and the mapping of PostgreSQL's own refusal are checked on the
    // values, because the shared server cannot be restarted with wal_level = replica here (CI's
    // .ci/run sets logical; a server still at replica fails the same check before anything runs).
    it("CDC_WAL_LEVEL: reads the server's wal_level, refuses every level but logical, and maps the server's refusal", async () => {
      const { f } = await setup();
      const client = await f.db.connect();
      try {
        const [level] = (await client.query<{ wal_level: string }>("SHOW wal_level")).rows;
        expect(level?.wal_level).toBe("logical");
        await expect(checkWalLevel(client)).resolves.toBeUndefined();
      } finally {
        client.release();
      }
      expect(walLevelError("logical")).toBeUndefined();
      for (const other of ["replica", "minimal"]) {
        const error = walLevelError(other);
        expect(isPatchbayError(error, "CDC_WAL_LEVEL")).toBe(true);
        expect(error?.message).toContain(`wal_level = ${other}`);
      }
      // PostgreSQL 15's words when a slot is created on a server at replica.
      const refused = toCdcError(
        Object.assign(new Error("logical decoding requires wal_level >= logical"), { code: "55000" }),
        "create replication slot",
      );
      expect(isPatchbayError(refused, "CDC_WAL_LEVEL")).toBe(true);
    });

    // Fills every free slot of the shared server with temporary physical slots (no WAL reserved,
    // dropped with their session) for the moment of one run: max_replication_slots is 10 here.
    it("CDC_NO_SLOTS when every replication slot is in use; a free one lets the capture run", async () => {
      const { f, cdc, same } = await setup();
      const [max] = await f.sql(
        "SELECT setting::int AS n FROM pg_settings WHERE name = 'max_replication_slots'",
      );
      if (Number(max?.n) > 64) {
        console.log(
          `skipped filling ${String(max?.n)} replication slots: too many to fill on a shared server`,
        );
        return;
      }
      await f.sql(`INSERT INTO ${f.src}.items (id, name) VALUES (1, 'one')`);
      const filler = await f.db.connect();
      let error: unknown;
      try {
        // Exactly the free ones: an error in this session would drop its temporary slots again.
        await filler.query(
          `SELECT count(pg_create_physical_replication_slot('pb_fill_${f.id}_' || g, false, true))
             FROM generate_series(1, current_setting('max_replication_slots')::int - (SELECT count(*)::int FROM pg_replication_slots)) g`,
        );
        error = await cdc.run().then(
          () => undefined,
          (e: unknown) => e,
        );
      } finally {
        filler.release(true); // its session ends: the temporary slots are dropped
      }
      expect(isPatchbayError(error, "CDC_NO_SLOTS")).toBe(true);
      expect((error as Error).message).toMatch(/max_replication_slots/);
      cdc.start();
      await eventually(same, 60_000, "the capture once a slot is free");
    });
  },
);

describe.skipIf(problem === undefined)("CDC from PostgreSQL logical replication", () => {
  it.skip(`skipped: ${problem}`, () => {});
});
