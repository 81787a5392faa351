/**
 * The console reached from beyond loopback, as a colleague on the network would: it listens on
 * 0.0.0.0 and the requests go to the machine's own non-loopback address. Without a token it
 * serves the page but refuses every action; with one, every request needs it. Skipped with one
 * line when the machine has no non-loopback IPv4 address.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { networkInterfaces } from "node:os";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createConsole, type ConsoleHandler } from "../src/ops/console.js";
import type { SqlStore } from "../src/store/sql-store.js";
import { sqliteDatabase, type IsolatedDatabase } from "./support/stores.js";

const address = Object.values(networkInterfaces())
  .flat()
  .find((i) => i !== undefined && i.family === "IPv4" && !i.internal)?.address;

const ACTION = { "content-type": "application/json", "x-patchbay-console": "1" };
const TOKEN = "network-token-1234";

if (address === undefined) {
  describe("console beyond loopback", () => {
    it.skip("skipped: this machine has no non-loopback IPv4 address", () => {});
  });
} else {
  describe("console beyond loopback", () => {
    let db: IsolatedDatabase;
    let store: SqlStore;
    const servers: Array<{ server: Server; handler: ConsoleHandler }> = [];

    /** Serves a console on every address; answers its URL on the non-loopback one and on 127.0.0.1. */
    async function serve(options: { token?: string } = {}) {
      const handler = createConsole({ store, ...options });
      const server = createServer(handler);
      await new Promise<void>((resolve) => server.listen(0, "0.0.0.0", resolve));
      servers.push({ server, handler });
      const { port } = server.address() as AddressInfo;
      return { remote: `http://${address}:${port}/`, local: `http://127.0.0.1:${port}/` };
    }

    beforeAll(async () => {
      db = sqliteDatabase();
      store = db.make();
      await store.open();
    });
    afterAll(async () => {
      for (const { server, handler } of servers) {
        server.closeAllConnections();
        await new Promise((r) => server.close(r));
        await handler.close();
      }
      await store?.close();
      await db?.cleanup();
    });

    it("without a token: serves the page and the lists, refuses every action with CONSOLE_TOKEN_REQUIRED", async () => {
      const { remote, local } = await serve();
      expect((await fetch(remote)).status).toBe(200);
      expect((await fetch(remote + "api/overview")).status).toBe(200);
      const config = (await (await fetch(remote + "api/config")).json()) as Record<string, unknown>;
      expect(config).toMatchObject({ tokenRequired: true });

      const pause = (base: string) =>
        fetch(base + "api/queues/pause", {
          method: "POST",
          headers: ACTION,
          body: JSON.stringify({ group: "billing" }),
        });
      const refused = await pause(remote);
      expect(refused.status).toBe(403);
      expect(((await refused.json()) as { code: string }).code).toBe("CONSOLE_TOKEN_REQUIRED");
      const audit = (await (await fetch(local + "api/audit")).json()) as { total: number };
      expect(audit.total).toBe(0);
      // The same console on loopback acts (nothing was paused by the refused request).
      expect((await pause(local)).status).toBe(200);
    });

    it("with a token: every request from beyond loopback needs it, reads and page included", async () => {
      const { remote } = await serve({ token: TOKEN });
      const page = await fetch(remote);
      expect(page.status).toBe(401);
      expect(page.headers.get("www-authenticate")).toMatch(/^Basic /);
      expect((await fetch(remote + "api/overview")).status).toBe(401);
      const auth = { authorization: `Bearer ${TOKEN}` };
      expect((await fetch(remote, { headers: auth })).status).toBe(200);
      expect((await fetch(remote + "api/overview", { headers: auth })).status).toBe(200);

      const resume = (headers: Record<string, string>) =>
        fetch(remote + "api/queues/resume", {
          method: "POST",
          headers,
          body: JSON.stringify({ group: "x" }),
        });
      expect((await resume(ACTION)).status).toBe(401);
      expect((await resume({ ...ACTION, authorization: "Bearer wrong-token-1234" })).status).toBe(401);
      const basic = `Basic ${Buffer.from(`bob:${TOKEN}`).toString("base64")}`;
      const ok = await resume({ ...ACTION, authorization: basic });
      expect(ok.status).toBe(200);
      const audit = (await (await fetch(remote + "api/audit", { headers: auth })).json()) as {
        items: Array<Record<string, unknown>>;
      };
      expect(audit.items[0]).toMatchObject({ actor: "bob", action: "queues.resume", outcome: "ok" });
    });

    it("answers 404, not a server error, for a path that starts with //", async () => {
      const { remote } = await serve();
      // remote ends with "/": these are "//" and "//evil.example/api/overview".
      for (const path of ["/", "/evil.example/api/overview"]) {
        const res = await fetch(remote + path);
        expect(res.status).toBe(404);
        expect(((await res.json()) as { code: string }).code).toBe("CONSOLE_NOT_FOUND");
      }
    });
  });
}
