/**
 * The web console's API against real stores (a SQLite file, a PostgreSQL schema): listing,
 * filtering and paging dead letters and sagas, replaying a letter and seeing it handled,
 * bulk-retrying sagas by filter, and the safety rules (read-only, token, cross-site).
 */
/* eslint-disable @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-assignment, @typescript-eslint/no-unsafe-call, @typescript-eslint/no-explicit-any --
   API answers are JSON read field by field in assertions; the assertions are the type check. */
import { afterEach, beforeEach, describe, expect, inject, it } from "vitest";
import { consoleApp, Ping, type ConsoleApp } from "./support/console-fixture.js";
import { PARKED } from "../src/bus/local-transport.js";
import { postgresDatabase, sqliteDatabase, type IsolatedDatabase } from "./support/stores.js";

const { postgres: pg } = inject("services");

async function until(predicate: () => boolean | Promise<boolean>, ms: number, what: string) {
  const deadline = Date.now() + ms;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const ACTION = { "content-type": "application/json", "x-patchbay-console": "1" };

const adapters: Array<[string, () => IsolatedDatabase, boolean]> = [
  ["SQLite", sqliteDatabase, true],
  ["PostgreSQL", () => postgresDatabase(pg.url), pg.reachable],
];

for (const [name, makeDb, reachable] of adapters) {
  describe.skipIf(!reachable)(`console API on ${name}`, () => {
    let db: IsolatedDatabase;
    let app: ConsoleApp;
    let url: string;
    const get = async (path: string, headers: Record<string, string> = {}) => {
      const res = await fetch(url + path, { headers });
      return { status: res.status, body: (await res.json()) as Record<string, any> };
    };
    const post = async (path: string, body: unknown, headers: Record<string, string> = ACTION) => {
      const res = await fetch(url + path, { method: "POST", headers, body: JSON.stringify(body) });
      return { status: res.status, body: (await res.json()) as Record<string, any> };
    };

    beforeEach(async () => {
      db = makeDb();
      app = await consoleApp(db.make());
      ({ url } = await app.serve());
    });
    afterEach(async () => {
      await app.stop();
      await db.cleanup();
    });

    it("serves the page and its assets, with a CSP that allows no inline code", async () => {
      const page = await fetch(url);
      expect(page.status).toBe(200);
      expect(page.headers.get("content-security-policy")).toContain("script-src 'self'");
      const html = await page.text();
      expect(html).toContain('<script src="console.js"');
      expect((await fetch(url + "console.js")).status).toBe(200);
      expect((await fetch(url + "console.css")).status).toBe(200);
      expect((await get("api/nothing")).body.code).toBe("CONSOLE_NOT_FOUND");
    });

    it("shows the local transport's consumer groups and whether each is paused", async () => {
      const q = (await get("api/queues")).body as {
        inStore: boolean;
        transport: string;
        groups: Array<{ group: string; depth: number; parked: number; oldestAgeMs: number | null }>;
      };
      expect(q.inStore).toBe(true);
      // A group nobody consumes: two messages queued a minute ago, one of them parked.
      const p = (n: number) => db.p(n);
      const minuteAgo = Date.now() - 60_000;
      for (const [id, runAt] of [
        ["q-1", minuteAgo],
        ["q-2", PARKED],
      ] as const) {
        await app.store.query(
          `INSERT INTO ${app.store.dialect.table("bus_jobs")} (grp, message_id, type, body, headers, attempt, run_at, created_at)
           VALUES ('idle', ${p(1)}, 'ping.sent', '{}', '{}', 0, ${p(2)}, ${p(3)})`,
          [id, runAt, minuteAgo],
        );
      }
      const idle = ((await get("api/queues")).body as typeof q).groups.find((g) => g.group === "idle");
      expect(idle).toMatchObject({ depth: 2, parked: 1 });
      expect(idle!.oldestAgeMs).toBeGreaterThanOrEqual(60_000);
      const pinger = q.groups.find((g) => g.group === "pinger");
      expect(pinger).toBeDefined();
      expect(pinger!.depth).toBeGreaterThanOrEqual(0);
      expect(pinger!.parked).toBe(0);
      if (pinger!.depth === 0) expect(pinger!.oldestAgeMs).toBeNull();
      expect((await fetch(url + "api/queues/pause", { method: "POST" })).status).not.toBe(200);
    });

    it("lists, filters and pages dead letters; replays one and the consumer handles it", async () => {
      await app.deadLetter(0, 5);
      const all = await get("api/dead-letters?limit=2&offset=2");
      expect(all.status).toBe(200);
      expect(all.body.total).toBe(5);
      expect(all.body.items).toHaveLength(2);
      expect(all.body.items[0].errorCode).toBe("NON_RETRYABLE");
      const pages = [
        ...(await get("api/dead-letters?limit=2&offset=0")).body.items,
        ...all.body.items,
        ...(await get("api/dead-letters?limit=2&offset=4")).body.items,
      ].map((l: { messageId: string }) => l.messageId);
      expect(new Set(pages).size).toBe(5);
      // The same order by cursor: each page's `next` starts the following one.
      const byCursor: string[] = [];
      let cursor = "";
      for (let i = 0; i < 3; i++) {
        const p = (await get(`api/dead-letters?limit=2&cursor=${cursor}`)).body as {
          items: Array<{ messageId: string }>;
          next?: string;
        };
        byCursor.push(...p.items.map((l) => l.messageId));
        if (!p.next) break;
        cursor = encodeURIComponent(p.next);
      }
      expect(byCursor).toEqual(pages);
      expect((await get("api/dead-letters?cursor=nonsense")).status).toBe(400);

      expect((await get("api/dead-letters?group=pinger&code=NON_RETRYABLE")).body.total).toBe(5);
      expect((await get("api/dead-letters?code=SCHEMA_INVALID")).body.total).toBe(0);
      expect((await get("api/dead-letters?group=other")).body.total).toBe(0);
      const future = new Date(Date.now() + 3_600_000).toISOString();
      expect((await get(`api/dead-letters?since=${future}`)).body.total).toBe(0);
      expect((await get(`api/dead-letters?until=${future}`)).body.total).toBe(5);
      expect((await get("api/dead-letters?since=yesterday")).body.code).toBe("INVALID_ARGUMENT");

      const first = all.body.items[0] as { group: string; messageId: string };
      const one = await get(`api/dead-letter?group=${first.group}&id=${first.messageId}`);
      expect(one.body.error.message).toMatch(/^ping \d refused$/);
      expect(one.body.event.data).toEqual({ n: expect.any(Number) });

      app.pings.fail = false;
      const replayed = await post("api/dead-letters/replay", { selection: [first] });
      expect(replayed.body).toEqual({ matched: 1, count: 1 });
      await until(() => app.handled.length === 1, 20_000, "the replayed ping handled");
      expect(app.handled).toEqual([one.body.event.data.n]);
      expect((await get("api/dead-letters")).body.total).toBe(4);

      const preview = await post("api/dead-letters/purge", { filter: { group: "pinger" }, preview: true });
      expect(preview.body).toEqual({ matched: 4, count: 0 });
      expect((await get("api/dead-letters")).body.total).toBe(4);
      const refused = await post("api/dead-letters/purge", { filter: {} });
      expect(refused.body.code).toBe("INVALID_ARGUMENT");
      const purged = await post("api/dead-letters/purge", { filter: { group: "pinger" } });
      expect(purged.body).toEqual({ matched: 4, count: 4 });

      const audit = await get("api/audit");
      expect(audit.body.items.map((e: { action: string; count: number }) => [e.action, e.count])).toEqual([
        ["dead-letters.purge", 4],
        ["dead-letters.replay", 1],
      ]);
      expect(audit.body.items[0]).toMatchObject({
        actor: "local",
        outcome: "ok",
        target: { filter: { group: "pinger" } },
      });
    });

    it("filters and pages sagas, shows a timeline, and retries every failed one by filter", async () => {
      await app.failSagas(["o-1", "o-2", "o-3"]);
      const failed = await get("api/sagas?status=failed&name=order&limit=2");
      expect(failed.body.total).toBe(3);
      expect(failed.body.items).toHaveLength(2);
      const rest = await get(`api/sagas?status=failed&name=order&limit=2&cursor=${failed.body.next}`);
      expect([...failed.body.items, ...rest.body.items].map((s: { id: string }) => s.id).sort()).toEqual([
        "o-1",
        "o-2",
        "o-3",
      ]);
      expect((await get("api/sagas?status=completed")).body.total).toBe(0);

      const saga = await get("api/saga?id=o-1");
      expect(
        saga.body.steps.map(
          (s: { phase: string; name: string; status: string }) => `${s.phase} ${s.name} ${s.status}`,
        ),
      ).toContain("compensate charge failed");

      const overview = await get("api/overview");
      expect(overview.body.health.store.ok).toBe(true);
      expect(overview.body.attention).toContainEqual({
        what: "failed sagas",
        count: 3,
        link: "#/sagas?status=failed",
      });

      const preview = await post("api/sagas/retry", { filter: { status: "failed" }, preview: true });
      expect(preview.body.matched).toBe(3);
      expect(await app.runner.count({ status: "failed" })).toBe(3);
      expect((await post("api/sagas/retry", { filter: {} })).body.code).toBe("INVALID_ARGUMENT");

      app.refunds.fail = false;
      const retried = await post("api/sagas/retry", { filter: { status: "failed", name: "order" } });
      expect(retried.body).toMatchObject({ matched: 3, count: 3, skipped: 0 });
      await until(
        async () => (await app.runner.count({ status: "compensated" })) === 3,
        20_000,
        "compensated",
      );
      expect(app.refunded.sort()).toEqual(["o-1", "o-2", "o-3"]);

      // A saga that has finished cannot be resolved: the saga's own error, with 409.
      const refused = await post("api/sagas/resolve", { id: "o-1", note: "by hand" });
      expect(refused.status).toBe(409);
      expect(refused.body.code).toBe("SAGA_STATE_INVALID");
      const audit = (await get("api/audit")).body.items as Array<Record<string, unknown>>;
      expect(audit.map((e) => [e.action, e.count, e.outcome])).toEqual([
        ["sagas.resolve", 0, "SAGA_STATE_INVALID"],
        ["sagas.retry", 3, "ok"],
      ]);
    });

    it("pauses a consumer group (its messages wait, none dead-lettered) and resumes it; refused read-only and without the token; audited", async () => {
      app.pings.fail = false;
      const paused = await post("api/queues/pause", { group: "pinger" });
      expect(paused.status).toBe(200);
      expect(paused.body).toMatchObject({ count: 1, paused: true });
      expect((await post("api/queues/pause", { group: "pinger" })).body.count).toBe(0); // already paused
      const pinger = () =>
        get("api/queues").then((r) =>
          (r.body.groups as Array<Record<string, any>>).find((g) => g.group === "pinger")!,
        );
      expect(await pinger()).toMatchObject({ paused: true, pausedBy: "local" });
      for (let n = 0; n < 3; n++) await app.bus.publish(Ping, { n });
      await new Promise((r) => setTimeout(r, 1000));
      expect(app.handled).toEqual([]);
      expect(await pinger()).toMatchObject({ depth: 3, paused: true });

      const readOnly = await app.serve({ readOnly: true });
      const ro = await fetch(readOnly.url + "api/queues/resume", {
        method: "POST",
        headers: ACTION,
        body: JSON.stringify({ group: "pinger" }),
      });
      expect(ro.status).toBe(403);
      expect(((await ro.json()) as { code: string }).code).toBe("CONSOLE_READ_ONLY");
      const locked = await app.serve({ token: "s3cret-token" });
      const resume = (headers: Record<string, string>) =>
        fetch(locked.url + "api/queues/resume", {
          method: "POST",
          headers,
          body: JSON.stringify({ group: "pinger" }),
        });
      const none = await resume(ACTION);
      expect(none.status).toBe(401);
      expect(((await none.json()) as { code: string }).code).toBe("CONSOLE_UNAUTHORIZED");
      expect(
        (await post("api/queues/resume", { group: "pinger" }, { "content-type": "application/json" })).body
          .code,
      ).toBe("CONSOLE_CROSS_SITE");
      await new Promise((r) => setTimeout(r, 300));
      expect(app.handled).toEqual([]);
      expect((await pinger()).paused).toBe(true);

      const bad = await post("api/queues/pause", { group: "not a group" });
      expect(bad.status).toBe(400);
      expect(bad.body.code).toBe("INVALID_ARGUMENT");

      const resumed = await resume({ ...ACTION, authorization: "Bearer s3cret-token" });
      expect(resumed.status).toBe(200);
      expect(((await resumed.json()) as { count: number }).count).toBe(1);
      await until(() => app.handled.length === 3, 15_000, "the pings after the resume");
      expect([...app.handled].sort()).toEqual([0, 1, 2]);
      expect((await get("api/dead-letters")).body.total).toBe(0);
      expect(await pinger()).toMatchObject({ paused: false });

      const audit = (await get("api/audit")).body.items as Array<Record<string, unknown>>;
      const rows = audit.map((x) => [x.actor, x.action, x.target, x.count, x.outcome]);
      expect(rows).toEqual(
        expect.arrayContaining([
          ["local", "queues.pause", { group: "pinger" }, 1, "ok"],
          ["local", "queues.pause", { group: "pinger" }, 0, "ok"],
          ["local", "queues.pause", { group: "not a group" }, 0, "INVALID_ARGUMENT"],
          ["token", "queues.resume", { group: "pinger" }, 1, "ok"],
        ]),
      );
      expect(rows).toHaveLength(4);
    });

    it("refuses actions when read-only, without the token, and from another site", async () => {
      await app.deadLetter(0, 1);
      const body = { filter: { group: "pinger" } };

      const readOnly = await app.serve({ readOnly: true });
      const ro = await fetch(readOnly.url + "api/dead-letters/purge", {
        method: "POST",
        headers: ACTION,
        body: JSON.stringify(body),
      });
      expect(ro.status).toBe(403);
      expect(((await ro.json()) as { code: string }).code).toBe("CONSOLE_READ_ONLY");
      expect((await fetch(readOnly.url + "api/dead-letters")).status).toBe(200);

      const locked = await app.serve({ token: "s3cret-token" });
      const purge = (headers: Record<string, string>) =>
        fetch(locked.url + "api/dead-letters/purge", { method: "POST", headers, body: JSON.stringify(body) });
      const none = await purge(ACTION);
      expect(none.status).toBe(401);
      expect(((await none.json()) as { code: string }).code).toBe("CONSOLE_UNAUTHORIZED");
      expect((await purge({ ...ACTION, authorization: "Bearer wrong-token" })).status).toBe(401);
      // Reads stay open on loopback; the page says a token is needed for actions.
      const config = (await (await fetch(locked.url + "api/config")).json()) as Record<string, unknown>;
      expect(config).toMatchObject({ tokenRequired: true, authorized: false, readOnly: false });

      const crossSite = await post("api/dead-letters/purge", body, { "content-type": "application/json" });
      expect(crossSite.status).toBe(403);
      expect(crossSite.body.code).toBe("CONSOLE_CROSS_SITE");
      const otherOrigin = await post("api/dead-letters/purge", body, {
        ...ACTION,
        origin: "http://evil.example",
      });
      expect(otherOrigin.body.code).toBe("CONSOLE_CROSS_SITE");
      const formPost = await post("api/dead-letters/purge", body, {
        ...ACTION,
        "content-type": "text/plain",
      });
      expect(formPost.body.code).toBe("CONSOLE_CROSS_SITE");
      expect((await get("api/dead-letters")).body.total).toBe(1);

      const basic = `Basic ${Buffer.from("alice:s3cret-token").toString("base64")}`;
      const ok = await purge({ ...ACTION, authorization: basic, origin: new URL(locked.url).origin });
      expect(ok.status).toBe(200);
      expect(((await ok.json()) as { count: number }).count).toBe(1);
      const audit = (await get("api/audit")).body.items as Array<Record<string, unknown>>;
      expect(audit).toHaveLength(1);
      expect(audit[0]).toMatchObject({ actor: "alice", action: "dead-letters.purge", count: 1 });
    });
  });
}
