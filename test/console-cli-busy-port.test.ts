/** `patchbay console` on a port already taken: a clear error and a prompt exit, the store closed. */
import { execFile } from "node:child_process";
import { createServer, type Server } from "node:net";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterEach, beforeEach, describe, expect, inject, it } from "vitest";
import { postgresDatabase, type IsolatedDatabase } from "./support/stores.js";

const { postgres: pg } = inject("services");
const CLI = fileURLToPath(new URL("../src/cli/main.ts", import.meta.url));
const run = promisify(execFile);

describe.skipIf(!pg.reachable)("patchbay console on a busy port (PostgreSQL)", () => {
  let db: IsolatedDatabase;
  let taken: Server;
  let port: number;
  beforeEach(async () => {
    db = postgresDatabase(pg.url);
    const store = db.make();
    await store.open();
    await store.close();
    taken = createServer();
    await new Promise<void>((r) => taken.listen(0, "127.0.0.1", r));
    port = (taken.address() as { port: number }).port;
  });
  afterEach(async () => {
    await new Promise((r) => taken.close(r));
    await db.cleanup();
  });

  it("fails at once with the listen error, without waiting for the store's pool to go idle", async () => {
    const started = Date.now();
    const out = await run(process.execPath, [
      "--import",
      "tsx",
      CLI,
      "console",
      "--port",
      String(port),
      "--pg",
      String(db.config.url),
      "--schema",
      String(db.config.schema),
    ]).then(
      () => ({ code: 0, stderr: "" }),
      (e: { code: number; stderr: string }) => ({ code: e.code, stderr: e.stderr }),
    );
    const took = Date.now() - started;
    expect(out.code).toBe(1);
    expect(out.stderr).toContain("EADDRINUSE");
    // The CLI's own start-up takes about a second; an open pool kept it alive 10 s more.
    expect(took).toBeLessThan(6_000);
  }, 30_000);
});
