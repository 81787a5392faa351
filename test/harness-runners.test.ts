/**
 * `patchbay/testing` needs no particular test runner: the harness is plain promises. This runs a
 * harness test under node:test (`node --test`), in a child process, and reads its report.
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

function run(args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((done) => {
    const proc = spawn(process.execPath, args, {
      cwd: ROOT,
      env: { ...process.env, TSX_TSCONFIG_PATH: `${ROOT}tsconfig.json` },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    proc.stdout.on("data", (d: Buffer) => (out += d.toString()));
    proc.stderr.on("data", (d: Buffer) => (out += d.toString()));
    proc.once("exit", (code) => done({ code, out }));
  });
}

describe("the harness under other test runners", () => {
  it("node:test runs a harness test to a pass", async () => {
    const { code, out } = await run([
      "--import",
      import.meta.resolve("tsx"),
      "--test",
      "--test-reporter=tap",
      "test/fixtures/harness-node-test.ts",
    ]);
    expect(code, out).toBe(0);
    expect(out).toMatch(/^# pass 1$/m);
    expect(out).toMatch(/^# fail 0$/m);
  }, 60_000);
});
