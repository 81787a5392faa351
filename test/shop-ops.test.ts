/**
 * The running shop serves /metrics, /healthz and /readyz and prints where: after a short load
 * with failures injected, its scrape passes `promtool check metrics` and counts what happened.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { until } from "./conformance/transport.js";
import { hasPromtool, promtool, promtoolRequired, sayPromtoolMissing } from "./support/promtool.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const TSX_LOADER = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;

function run(script: string, args: string[], cwd: string) {
  const proc = spawn(
    process.execPath,
    ["--import", TSX_LOADER, join(ROOT, "examples", "shop", script), ...args],
    {
      cwd,
      env: {
        ...process.env,
        PATCHBAY_PG_URL: undefined,
        PATCHBAY_AMQP_URL: undefined,
        PORT: "0",
        TSX_TSCONFIG_PATH: join(ROOT, "tsconfig.json"),
      },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let output = "";
  proc.stdout.on("data", (d: Buffer) => (output += d.toString()));
  proc.stderr.on("data", (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => proc.once("exit", (code) => resolve(code)));
  return { proc, exited, output: () => output };
}

/** The sum of every series of `metric` in a scrape (all label sets). */
function total(scrape: string, metric: string): number {
  let sum = 0;
  for (const line of scrape.split("\n")) {
    if (line.startsWith(`${metric}{`) || line.startsWith(`${metric} `)) sum += Number(line.split(" ").pop());
  }
  return sum;
}

describe("shop: operations endpoints", () => {
  const cwd = mkdtempSync(join(tmpdir(), "patchbay-shop-ops-"));
  const shop = run("main.ts", [], cwd);
  afterAll(async () => {
    shop.proc.kill("SIGTERM");
    await shop.exited;
    rmSync(cwd, { recursive: true, force: true });
  });

  it("prints the URLs of /metrics, /healthz and /readyz, which answer after a load with failures", async () => {
    await until(
      () => shop.output().includes("Patchbay shop running") || shop.proc.exitCode !== null,
      60_000,
      "the shop to start",
    );
    const { shop: base } = JSON.parse(readFileSync(join(cwd, ".patchbay", "shop.json"), "utf8")) as {
      shop: string;
    };
    expect(shop.output()).toContain(`metrics           ${base}/metrics`);
    expect(shop.output()).toContain(`${base}/healthz  ${base}/readyz`);

    const load = run(
      "load.ts",
      // --decline: a declined card compensates its saga. At the default 5%, 30 orders had no
      // decline one run in five (0.95^30) and the compensated count below was 0.
      [
        "--orders",
        "30",
        "--users",
        "3",
        "--payment-failure",
        "0.3",
        "--email-failure",
        "0.2",
        "--decline",
        "0.3",
        "--json",
      ],
      cwd,
    );
    expect(await load.exited, load.output().slice(-2000)).toBe(0);

    const ready = await fetch(`${base}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ status: "ready", checks: { workers: { state: "started" } } });
    expect((await fetch(`${base}/healthz`)).status).toBe(200);

    const scrape = await (await fetch(`${base}/metrics`)).text();
    expect(total(scrape, "patchbay_bus_published_total")).toBeGreaterThanOrEqual(30);
    expect(total(scrape, "patchbay_bus_delivered_total")).toBeGreaterThanOrEqual(30);
    expect(total(scrape, "patchbay_bus_handler_duration_seconds_count")).toBeGreaterThanOrEqual(30);
    expect(total(scrape, "patchbay_saga_started_total")).toBeGreaterThanOrEqual(30);
    expect(total(scrape, "patchbay_saga_compensated_total")).toBeGreaterThan(0); // declined cards
    expect(total(scrape, "patchbay_webhook_attempts_total")).toBeGreaterThan(0);
    expect(total(scrape, "patchbay_http_client_requests_total")).toBeGreaterThan(0);
    expect(total(scrape, "patchbay_saga_instances")).toBeGreaterThanOrEqual(30);

    if (hasPromtool || promtoolRequired) {
      const r = promtool(["check", "metrics"], scrape);
      expect(r.output).toBe("");
      expect(r.status).toBe(0);
    }
  }, 180_000);
});

sayPromtoolMissing();
