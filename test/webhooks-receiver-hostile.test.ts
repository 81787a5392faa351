/**
 * The webhook receiver core against hostile deliveries, deduping through real stores (SQLite,
 * PostgreSQL, MariaDB): a body that is not valid UTF-8, ids the store cannot keep, emoji and NUL,
 * duplicated ids, several signature versions, timestamps at the tolerance edge. Each case counts
 * handler runs (lost / doubled) and what was answered.
 */
import { afterEach, beforeEach, describe, expect, inject, it } from "vitest";
import type { SqlStore } from "../src/store/sql-store.js";
import { FakeClock } from "../src/testing/fake-clock.js";
import {
  createWebhookReceiver,
  generateSecret,
  sign,
  signatureHeaders,
  type ReceivedWebhook,
} from "../src/webhooks/index.js";
import { mysqlDatabase, postgresDatabase, sqliteDatabase, type IsolatedDatabase } from "./support/stores.js";

const { postgres: pgService, mysql: myService } = inject("services");

const dbs: Array<[string, () => IsolatedDatabase]> = [["SQLite", sqliteDatabase]];
if (pgService.reachable) dbs.push(["PostgreSQL", () => postgresDatabase(pgService.url)]);
if (myService.reachable) dbs.push(["MariaDB", () => mysqlDatabase(myService.url)]);

for (const [name, makeDb] of dbs) {
  describe(`webhook receiver, hostile deliveries, on ${name}`, () => {
    let db: IsolatedDatabase;
    let store: SqlStore;
    const secret = generateSecret();
    const clock = new FakeClock(Date.UTC(2026, 5, 1, 12));
    let seen: Array<ReceivedWebhook<unknown>>;
    const receiver = (transaction = true) =>
      createWebhookReceiver({
        secret,
        store,
        transaction,
        clock,
        handler: (event) => void seen.push(event),
      });
    const now = () => Math.floor(clock.now() / 1000);

    beforeEach(async () => {
      db = makeDb();
      store = db.make();
      await store.open();
      seen = [];
    });
    afterEach(async () => {
      await store.close();
      await db.cleanup();
    });

    it("a signed body that is not valid UTF-8 is refused with 400, never handed on with U+FFFD in place of its bytes", async () => {
      const body = Buffer.concat([Buffer.from('{"name":"a'), Buffer.from([0xff, 0xfe]), Buffer.from('b"}')]);
      const headers = signatureHeaders(secret, { id: "msg_bad_utf8", timestamp: now(), body });
      const result = await receiver().receive(headers, body);
      expect({ status: result.status, outcome: result.outcome, handled: seen.length }).toEqual({
        status: 400,
        outcome: "rejected",
        handled: 0,
      });
      // A valid body with emoji, NUL (escaped) and a lone escaped surrogate goes through unchanged.
      const good = Buffer.from('{"name":"a😀\\u0000b","odd":"\\ud800"}');
      const ok = await receiver().receive(
        signatureHeaders(secret, { id: "msg_😀", timestamp: now(), body: good }),
        good,
      );
      expect(ok.status).toBe(200);
      expect(seen.map((e) => e.payload)).toEqual([{ name: "a😀\u0000b", odd: "\ud800" }]);
    });

    for (const transaction of [true, false]) {
      it(`an id the store cannot keep (over 255 characters) is refused with 400 before the handler runs (transaction: ${transaction})`, async () => {
        const id = `msg_${"x".repeat(300)}`;
        const body = Buffer.from('{"n":1}');
        const result = await receiver(transaction).receive(
          signatureHeaders(secret, { id, timestamp: now(), body }),
          body,
        );
        expect({ status: result.status, outcome: result.outcome, handled: seen.length }).toEqual({
          status: 400,
          outcome: "rejected",
          handled: 0,
        });
      });
    }

    it("the same id delivered 10 times at once runs the handler once; the others are duplicates or 409s, never a second run", async () => {
      const body = Buffer.from('{"n":1}');
      const headers = signatureHeaders(secret, { id: "msg_dup", timestamp: now(), body });
      const r = receiver();
      const results = await Promise.all(Array.from({ length: 10 }, () => r.receive(headers, body)));
      expect(seen).toHaveLength(1);
      for (const x of results) expect([200, 409]).toContain(x.status);
      expect(results.filter((x) => x.outcome === "processed")).toHaveLength(1);
      // The same id with another body is a conflict (422), not a silent second run or an ack.
      const other = Buffer.from('{"n":2}');
      const conflict = await r.receive(
        signatureHeaders(secret, { id: "msg_dup", timestamp: now(), body: other }),
        other,
      );
      expect(conflict.status).toBe(422);
      expect(seen).toHaveLength(1);
    });

    it("several signature versions: a v1 match among unknown versions and junk passes; only junk is refused", async () => {
      const body = Buffer.from('{"n":1}');
      const ts = now();
      const v1 = sign(secret, "msg_sigs", ts, body);
      const headers = {
        "webhook-id": "msg_sigs",
        "webhook-timestamp": String(ts),
        "webhook-signature": `v1a,${"A".repeat(80)}  v2,zzz ${v1} v1,notbase64!`,
      };
      expect((await receiver().receive(headers, body)).status).toBe(200);
      const forged = { ...headers, "webhook-id": "msg_sigs2", "webhook-signature": "v1a,x v2,y v1," };
      expect((await receiver().receive(forged, body)).status).toBe(401);
      expect(seen).toHaveLength(1);
    });

    it('a signature header sent as two lines (joined by Node and fetch with ", ") still verifies by its valid signature', async () => {
      const body = Buffer.from('{"n":1}');
      const ts = now();
      const valid = sign(secret, "msg_lines", ts, body);
      const other = sign(generateSecret(), "msg_lines", ts, body);
      for (const joined of [`${valid}, ${other}`, `${other}, ${valid}`]) {
        const headers = {
          "webhook-id": "msg_lines",
          "webhook-timestamp": String(ts),
          "webhook-signature": joined,
        };
        expect((await receiver().receive(headers, body)).status).toBe(200);
      }
      expect(seen).toHaveLength(1);
    });

    it("a handler that catches its failed statement and returns: on a store whose failed statement aborts the transaction, 500 and nothing recorded; the retry runs it again", async () => {
      await store.query(`CREATE TABLE hook_rows (id ${db.keyText} PRIMARY KEY)`);
      let runs = 0;
      const r = createWebhookReceiver({
        secret,
        store,
        clock,
        handler: async (_event, { tx }) => {
          runs++;
          await tx!.query(`INSERT INTO hook_rows (id) VALUES (${db.p(1)})`, [`row-${runs}`]);
          try {
            await tx!.query(`INSERT INTO hook_rows (id) VALUES (${db.p(1)})`, [`row-${runs}`]);
          } catch {
            // swallowed: "already there"
          }
        },
      });
      const body = Buffer.from('{"n":1}');
      const headers = signatureHeaders(secret, { id: "msg_caught", timestamp: now(), body });
      const first = await r.receive(headers, body);
      const rows = async () =>
        (await store.query<{ id: string }>("SELECT id FROM hook_rows ORDER BY id")).rows;
      if (db.statementErrorAbortsTransaction) {
        // Success must not be answered for a transaction that did not commit.
        expect({ status: first.status, rows: await rows() }).toEqual({ status: 500, rows: [] });
        expect((await r.receive(headers, body)).status).toBe(500);
        expect(runs).toBe(2);
      } else {
        // SQLite and MariaDB undo only the failed statement: the rest commits, once.
        expect({ status: first.status, rows: await rows() }).toEqual({
          status: 200,
          rows: [{ id: "row-1" }],
        });
        expect((await r.receive(headers, body)).status).toBe(200);
        expect(runs).toBe(1);
      }
    });

    it("timestamps at the tolerance edge: exactly 5 min either way passes, one second more is refused", async () => {
      const body = Buffer.from('{"n":1}');
      const at = async (id: string, ts: number) =>
        (await receiver().receive(signatureHeaders(secret, { id, timestamp: ts, body }), body)).status;
      expect(await at("t1", now() - 300)).toBe(200);
      expect(await at("t2", now() + 300)).toBe(200);
      expect(await at("t3", now() - 301)).toBe(401);
      expect(await at("t4", now() + 301)).toBe(401);
      expect(seen.map((e) => e.id)).toEqual(["t1", "t2"]);
    });
  });
}
