/**
 * The paginated HTTP source against a real HTTP server on loopback (cursor tokens, a failing
 * page, a 503 with Retry-After), loading into a real SQLite database.
 */
import { createServer, type Server } from "node:http";
import { mkdtempSync, rmSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { sqlite, sqliteDestination } from "../src/adapters/sqlite/index.js";
import { isPatchbayError } from "../src/core/errors.js";
import { constant } from "../src/resilience/backoff.js";
import type { SqlStore } from "../src/store/sql-store.js";
import { httpSource } from "../src/sync/http-source.js";
import { pipeline, type Pipeline } from "../src/sync/pipeline.js";

interface Item {
  id: number;
  name: string;
}

describe("Sync: paginated HTTP API source", () => {
  let server: Server;
  let base: string;
  let items: Item[];
  const log: string[] = [];
  /** Page token → status to answer once instead of the page. */
  const failOnce = new Map<string, { status: number; headers?: Record<string, string> }>();
  let dir: string;
  let store: SqlStore;
  let rows: SqlStore;
  const pipelines: Pipeline[] = [];

  beforeEach(async () => {
    items = Array.from({ length: 95 }, (_, i) => ({ id: i + 1, name: `item ${i + 1}` }));
    log.length = 0;
    failOnce.clear();
    server = createServer((req, res) => {
      const url = new URL(req.url ?? "/", "http://x");
      const after = Number(url.searchParams.get("after") ?? 0);
      const limit = Number(url.searchParams.get("limit") ?? 10);
      log.push(String(after));
      const fail = failOnce.get(String(after));
      if (fail) {
        failOnce.delete(String(after));
        res.writeHead(fail.status, fail.headers).end("{}");
        return;
      }
      const page = items.filter((i) => i.id > after).slice(0, limit);
      const last = page.at(-1);
      const more = last !== undefined && items.some((i) => i.id > last.id);
      res.writeHead(200, { "content-type": "application/json" });
      res.end(
        JSON.stringify({ data: page, meta: { next: more ? String(last.id) : null, total: items.length } }),
      );
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    dir = mkdtempSync(join(tmpdir(), "patchbay-http-"));
    store = sqlite({ file: join(dir, "store.db") });
    rows = sqlite({ file: join(dir, "dst.db") });
  });
  afterEach(async () => {
    await Promise.allSettled(pipelines.splice(0).map((p) => p.close()));
    await store.close();
    await rows.close();
    await new Promise((resolve) => server.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  });

  const make = () => {
    const p = pipeline("api", {
      store,
      source: httpSource({
        clientOptions: { baseUrl: base, retry: { maxAttempts: 3, backoff: constant("1ms") } },
        path: "items",
        items: "data",
        next: "meta.next",
        param: "after",
        pageSizeParam: "limit",
        total: "meta.total",
      }),
      destination: sqliteDestination({ file: join(dir, "dst.db"), table: "items", key: "id" }),
      mode: "incremental",
      drift: "evolve",
      batchSize: 20,
    });
    pipelines.push(p);
    return p;
  };
  const stored = async () => (await rows.query<Item>("SELECT id, name FROM items ORDER BY id")).rows;

  it("follows the page tokens to the end, one batch per page; the next run re-reads only the last page", async () => {
    const totals: Array<number | undefined> = [];
    const report = await make().run({ onProgress: (p) => void totals.push(p.total) });
    expect(report).toMatchObject({ status: "succeeded", rowsRead: 95, batches: 5 });
    expect(totals[0]).toBe(95);
    expect(await stored()).toEqual(items);
    log.length = 0;
    items.push({ id: 96, name: "item 96" }, { id: 97, name: "item 97" });
    const again = await make().run();
    expect(log).toEqual(["80"]);
    expect(again.rowsRead).toBe(17);
    expect(await stored()).toEqual(items);
  });

  it("a page that fails fails the run; the next run resumes at that page, not the first", async () => {
    failOnce.set("40", { status: 404 });
    const error = await make()
      .run()
      .catch((e: unknown) => e);
    expect(isPatchbayError(error, "HTTP_STATUS")).toBe(true);
    expect((await stored()).length).toBe(40);
    log.length = 0;
    await make().run();
    expect(log[0]).toBe("40");
    expect(await stored()).toEqual(items);
  });

  it("a 503 with Retry-After is retried by the resilient client within the run", async () => {
    failOnce.set("20", { status: 503, headers: { "retry-after": "0" } });
    const report = await make().run();
    expect(report.status).toBe("succeeded");
    expect(log.filter((a) => a === "20")).toHaveLength(2);
    expect(await stored()).toEqual(items);
  });
});
