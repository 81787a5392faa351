/** `patchbay console`: serves the console on loopback, prints its URL, stops on SIGTERM. */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it, onTestFinished } from "vitest";
import { sqliteDatabase, type IsolatedDatabase } from "./support/stores.js";

const CLI = fileURLToPath(new URL("../src/cli/main.ts", import.meta.url));

describe("patchbay console", () => {
  let db: IsolatedDatabase;
  beforeEach(async () => {
    db = sqliteDatabase();
    const store = db.make();
    await store.open();
    await store.close();
  });
  afterEach(() => db.cleanup());

  it("prints its loopback URL, serves read-only when asked, and exits 0 on SIGTERM", async () => {
    const child = spawn(
      process.execPath,
      ["--import", "tsx", CLI, "console", "--sqlite", String(db.config.file), "--port", "0", "--read-only"],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    let out = "";
    child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
    // A failed expectation must not leave the console running after the test.
    onTestFinished(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    });
    const deadline = Date.now() + 20_000;
    // The banner is several writes: wait for its read-only line too, not only the URL.
    while (!/http:\/\/127\.0\.0\.1:\d+\/[\s\S]*read-only/.test(out)) {
      if (Date.now() > deadline) throw new Error(`no URL and read-only line printed: ${out}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const url = /http:\/\/127\.0\.0\.1:\d+\//.exec(out)![0];
    expect(out).toContain("read-only");
    const config = (await (await fetch(`${url}api/config`)).json()) as Record<string, unknown>;
    expect(config).toMatchObject({ readOnly: true, tokenRequired: false });
    const refused = await fetch(`${url}api/dead-letters/purge`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-patchbay-console": "1" },
      body: JSON.stringify({ filter: {}, all: true }),
    });
    expect(refused.status).toBe(403);
    child.kill("SIGTERM");
    expect(await exited).toBe(0);
  });
});
