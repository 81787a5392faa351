/**
 * `npm run docs:screenshots`: regenerates the PNGs of docs/console.md. Builds an app with failed
 * sagas and dead letters on a temporary SQLite store, serves its console, and photographs each
 * screen in Debian's Chromium (plus the overview in a phone-width window).
 */
import { mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { circuitBreaker } from "../../src/resilience/breaker.js";
import { consecutive } from "../../src/resilience/consecutive.js";
import { chromiumPresent, CHROMIUM, launchChromium } from "./chromium.js";
import { consoleApp } from "./console-fixture.js";
import { sqliteDatabase } from "./stores.js";

const OUT = fileURLToPath(new URL("../../docs/console/", import.meta.url));

if (!chromiumPresent()) {
  process.stderr.write(`no Chromium at ${CHROMIUM}: apt-get install -y chromium\n`);
  process.exit(1);
}
mkdirSync(OUT, { recursive: true });
const db = sqliteDatabase();
const app = await consoleApp(db.make());
const browser = await launchChromium();
try {
  // Served first: the Queues screen's "last minute" counts the deliveries after it started.
  const { url } = await app.serve();
  await app.failSagas(["order-1041", "order-1042", "order-1043"]);
  await app.deadLetter(0, 4);
  // One action, so the audit list has a row.
  await fetch(`${url}api/dead-letters/purge`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-patchbay-console": "1" },
    body: JSON.stringify({ selection: [(await app.bus.deadLetters.list({ limit: 1 }))[0]] }),
  });
  const page = await browser.context.newPage();
  const letter = (await app.bus.deadLetters.list({ limit: 1 }))[0]!;
  const shots: Array<[string, string]> = [
    ["overview", ""],
    ["dead-letters", "#/dead-letters?group=pinger"],
    ["dead-letter", `#/dead-letter?group=${letter.group}&id=${letter.messageId}`],
    ["sagas", "#/sagas?status=failed"],
    ["saga", "#/saga?id=order-1041"],
    ["pipelines", "#/pipelines"],
    ["webhooks", "#/webhooks"],
    ["audit", "#/audit"],
  ];
  for (const [name, hash] of shots) {
    await page.goto(url + hash);
    await page.locator("main h1").waitFor();
    await page.waitForLoadState("networkidle");
    await page.screenshot({ path: `${OUT}${name}.png`, fullPage: true });
    process.stdout.write(`docs/console/${name}.png\n`);
  }
  // The Queues screen with a paused group (after the audit shot, which it would add a row to).
  await fetch(`${url}api/queues/pause`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-patchbay-console": "1" },
    body: JSON.stringify({ group: "pinger" }),
  });
  await app.bus.transport.bind("billing", ["order.*"]);
  await page.goto(`${url}#/queues`);
  await page.locator("main h1").waitFor();
  await page.waitForLoadState("networkidle");
  await page.screenshot({ path: `${OUT}queues.png`, fullPage: true });
  process.stdout.write("docs/console/queues.png\n");
  // The breakers screen, on a console given one open breaker (the other shots stay without it).
  const payments = circuitBreaker({ strategy: consecutive({ threshold: 1 }), halfOpenAfter: "1h" });
  await payments.execute(() => Promise.reject(new Error("payment provider down"))).catch(() => undefined);
  const withBreaker = await app.serve({ breakers: { payments } });
  await page.goto(`${withBreaker.url}#/breakers`);
  await page.locator("main h1").waitFor();
  await page.waitForLoadState("networkidle");
  await page.screenshot({ path: `${OUT}breakers.png`, fullPage: true });
  process.stdout.write("docs/console/breakers.png\n");
  await page.setViewportSize({ width: 390, height: 800 });
  await page.goto(url);
  await page.locator("main h1").waitFor();
  await page.screenshot({ path: `${OUT}overview-narrow.png`, fullPage: true });
  process.stdout.write("docs/console/overview-narrow.png\n");
} finally {
  await browser.close();
  await app.stop();
  await db.cleanup();
}
