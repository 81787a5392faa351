/**
 * The console in a real browser (Debian's Chromium through playwright-core): find a failed saga,
 * retry it and see it compensated; replay a dead letter and see it handled; pause a consumer
 * group and resume it; a read-only console
 * offers no action; an action without the token is refused, and works once the token is given;
 * a webhook endpoint's failed test event is recovered and its secret rotated; every failed saga
 * matching a filter is retried at once; an open circuit breaker is reset from the keyboard; the
 * Queues screen follows deliveries and pauses without a reload.
 * Skipped with one line when Chromium is missing, except under CI=true, where that fails.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chromiumPresent, CHROMIUM, launchChromium } from "./support/chromium.js";
import { consoleApp, Ping, type ConsoleApp } from "./support/console-fixture.js";
import { sqliteDatabase, type IsolatedDatabase } from "./support/stores.js";
import { circuitBreaker } from "../src/resilience/breaker.js";
import { consecutive } from "../src/resilience/consecutive.js";
import { createWebhooks, type Webhooks } from "../src/webhooks/webhooks.js";

const present = chromiumPresent();

if (!present && process.env.CI !== "true") {
  describe("console in Chromium", () => {
    it.skip(`skipped: no Chromium at ${CHROMIUM} (apt-get install -y chromium)`, () => {});
  });
} else {
  describe("console in Chromium", () => {
    let db: IsolatedDatabase;
    let app: ConsoleApp;
    let browser: { context: BrowserContext; close(): Promise<void> };
    let page: Page;
    /** What the page's prompts are answered with. */
    let answer = "fixed by hand";

    beforeAll(async () => {
      if (!present) throw new Error(`CI=true and no Chromium at ${CHROMIUM}: .ci/run installs it`);
      db = sqliteDatabase();
      app = await consoleApp(db.make());
      await app.failSagas(["order-17"]);
      await app.deadLetter(0, 1);
      browser = await launchChromium();
      page = await browser.context.newPage();
      page.on("dialog", (dialog) => void dialog.accept(dialog.type() === "prompt" ? answer : undefined));
    }, 60_000);
    afterAll(async () => {
      await browser?.close();
      await app?.stop();
      await db?.cleanup();
    });

    it("finds the failed saga, retries it, and shows it compensated", async () => {
      const { url } = await app.serve();
      await page.goto(url);
      await page.getByRole("link", { name: "1 failed sagas" }).click();
      await expect.poll(() => page.url()).toContain("#/sagas?status=failed");
      await page.getByRole("link", { name: "order-17" }).click();
      await page.locator("#saga-status", { hasText: "failed" }).waitFor();
      await expect
        .poll(() => page.locator("main").textContent(), { timeout: 10_000 })
        .toContain("refund API down");

      app.refunds.fail = false;
      await page.getByRole("button", { name: "Retry" }).click();
      await page.locator("#status", { hasText: "retry order-17: now compensating" }).waitFor();
      await expect
        .poll(
          async () => {
            await page.reload();
            return page.locator("#saga-status").textContent({ timeout: 5_000 });
          },
          { timeout: 20_000 },
        )
        .toBe("compensated");
      expect(app.refunded).toEqual(["order-17"]);
    });

    it("opens a dead letter, replays it, and the consumer handles it", async () => {
      const { url } = await app.serve();
      await page.goto(`${url}#/dead-letters?group=pinger`);
      await page.locator("#range", { hasText: "1–1 of 1" }).waitFor();
      expect(await page.locator("#f-group").inputValue()).toBe("pinger");
      await page.getByRole("link", { name: /^[0-9a-f-]{36}$/ }).click();
      await page.locator("#letter-error", { hasText: "ping 0 refused" }).waitFor();

      app.pings.fail = false;
      await page.getByRole("button", { name: "Replay" }).click();
      await page.locator("#status", { hasText: "replay: 1 dead letter(s)" }).waitFor();
      await page.locator("#range", { hasText: "0 matching" }).waitFor();
      await expect.poll(() => app.handled, { timeout: 20_000 }).toEqual([0]);

      await page.getByRole("link", { name: "Audit" }).click();
      await expect
        .poll(() => page.locator("main").textContent(), { timeout: 10_000 })
        .toContain("dead-letters.replay");
    });

    it("pauses a consumer group from the Queues screen: its messages wait until Resume", async () => {
      app.pings.fail = false;
      const before = app.handled.length;
      const { url } = await app.serve();
      await page.goto(`${url}#/queues`);
      const row = page.getByRole("row", { name: /^pinger / });
      await row.getByText("not paused").waitFor();
      await row.getByRole("button", { name: "Pause" }).click();
      await page.locator("#status", { hasText: "pause pinger: done" }).waitFor();
      await row.getByText("paused", { exact: true }).waitFor();
      await app.bus.publish(Ping, { n: 100 });
      await new Promise((r) => setTimeout(r, 1000));
      expect(app.handled).toHaveLength(before);
      await page.reload();
      await row.getByRole("cell", { name: "1", exact: true }).first().waitFor(); // queued
      await row.getByRole("button", { name: "Resume" }).click();
      await page.locator("#status", { hasText: "resume pinger: done" }).waitFor();
      await expect.poll(() => app.handled, { timeout: 20_000 }).toContain(100);
      await page.getByRole("link", { name: "Audit" }).click();
      await expect
        .poll(() => page.locator("main").textContent(), { timeout: 10_000 })
        .toContain("queues.resume");
    });

    it("keeps the Queues screen live: a delivery and a pause elsewhere show without a reload", async () => {
      app.pings.fail = false;
      const { url } = await app.serve();
      await page.goto(`${url}#/queues`);
      const row = page.getByRole("row", { name: /^pinger / });
      await row.getByText("not paused").waitFor();
      // A keyboard user on the Pause button keeps the focus there through the redraws.
      await row.getByRole("button", { name: "Pause" }).focus();
      await app.bus.publish(Ping, { n: 200 });
      await row.getByText("1 delivered: 1 done, 0 retried, 0 dead-lettered").waitFor({ timeout: 15_000 });
      expect(await page.locator(":focus").textContent()).toBe("Pause");
      await app.bus.pause("pinger", { by: "someone else" });
      try {
        await row.getByText("paused", { exact: true }).waitFor({ timeout: 15_000 });
        expect(await row.textContent()).toContain("by someone else");
        await page.keyboard.press("Enter"); // the focus moved to Resume, in the same place
        await page.locator("#status", { hasText: "resume pinger: done" }).waitFor();
      } finally {
        await app.bus.resume("pinger");
      }
      await page.getByRole("link", { name: "CDC" }).click();
      await page.locator("main", { hasText: "this store is sqlite" }).waitFor();
    });

    it("offers no action when read-only, and refuses one without the token", async () => {
      app.pings.fail = true;
      await app.deadLetter(1, 2);
      const readOnly = await app.serve({ readOnly: true });
      await page.goto(`${readOnly.url}#/dead-letters`);
      await page.locator("#mode", { hasText: "Read-only" }).waitFor();
      await page.locator("#range", { hasText: "of 1" }).waitFor();
      expect(await page.getByRole("button", { name: /Replay all/ }).isVisible()).toBe(false);

      const locked = await app.serve({ token: "browser-token-1" });
      await page.goto(`${locked.url}#/dead-letters`);
      await page.locator("#token-form").waitFor();
      await page.getByRole("button", { name: "Purge all 1 matching" }).click();
      await page.locator("#status", { hasText: "CONSOLE_UNAUTHORIZED" }).waitFor();
      expect(await app.bus.deadLetters.count()).toBe(1);

      await page.getByLabel("Token").fill("browser-token-1");
      await page.getByRole("button", { name: "Use" }).click();
      await page.getByRole("button", { name: "Purge all 1 matching" }).click();
      await page.locator("#status", { hasText: "purge: 1 of 1 dead letter(s)" }).waitFor();
      expect(await app.bus.deadLetters.count()).toBe(0);
    });

    it("recovers a webhook endpoint's failed test event, and shows a rotated secret once", async () => {
      const received: string[] = [];
      let up = false;
      const partner: Server = createServer((req, res) => {
        req.resume();
        req.on("end", () => {
          if (up) received.push(String(req.headers["webhook-id"]));
          res.statusCode = up ? 200 : 503;
          res.end();
        });
      });
      await new Promise<void>((r) => partner.listen(0, "127.0.0.1", r));
      // One attempt per round: the test event fails at once while the partner is down.
      const webhooks: Webhooks = createWebhooks({
        store: app.store,
        allow: ["127.0.0.1/32"],
        pollInterval: "50ms",
        retry: { delays: ["0s"] },
      });
      await webhooks.start();
      try {
        const endpoint = await webhooks.endpoints.create({
          id: "partner",
          url: `http://127.0.0.1:${(partner.address() as AddressInfo).port}/hooks`,
          events: ["order.*"],
        });
        const { url } = await app.serve({ webhooks });
        await page.goto(`${url}#/webhooks`);
        await page.getByRole("button", { name: "Send test" }).click();
        await page.locator("#status", { hasText: "queued for partner" }).waitFor();
        await expect.poll(() => page.url()).toContain("#/delivery?endpoint=partner");
        const messageId = new URLSearchParams(page.url().split("?")[1]).get("message")!;
        await expect
          .poll(async () => (await webhooks.deliveries.get("partner", messageId))?.status, {
            timeout: 20_000,
          })
          .toBe("failed");
        await page.reload();
        // The default poll gives up after 1 s: too short for a reload on a loaded machine.
        await expect.poll(() => page.locator("main").textContent(), { timeout: 10_000 }).toContain("503");

        up = true;
        answer = new Date(Date.now() - 3_600_000).toISOString();
        await page.getByRole("link", { name: "‹ Webhooks" }).click();
        await page.getByRole("button", { name: "Recover failed" }).click();
        await page.locator("#status", { hasText: "recover partner: 1" }).waitFor();
        await expect.poll(() => received, { timeout: 20_000 }).toEqual([messageId]);
        await expect
          .poll(async () => (await webhooks.deliveries.get("partner", messageId))?.status, {
            timeout: 20_000,
          })
          .toBe("delivered");

        answer = "1h";
        await page.getByRole("button", { name: "Rotate secret" }).click();
        const shown = await page.locator("#new-secret").textContent();
        expect(shown).toMatch(/^whsec_/);
        expect(shown).not.toBe(endpoint.secret);
        expect((await webhooks.endpoints.secrets("partner")).current).toBe(shown);
        await page.reload();
        expect(await page.locator("#new-secret").count()).toBe(0);
        await page.getByRole("link", { name: "Audit" }).click();
        await expect
          .poll(() => page.locator("main").textContent(), { timeout: 10_000 })
          .toContain("webhooks.rotate-secret");
        expect(await page.locator("main").textContent()).not.toContain(shown!);
      } finally {
        answer = "fixed by hand";
        await webhooks.stop({ timeout: "2s" });
        await new Promise((r) => partner.close(r));
      }
    });

    it("retries every failed saga matching a filter at once", async () => {
      app.refunds.fail = true;
      await app.failSagas(["order-21", "order-22"]);
      app.refunds.fail = false;
      const { url } = await app.serve();
      await page.goto(`${url}#/sagas`);
      await page.locator("#f-status").selectOption("failed");
      await page.locator("#f-name").fill("order");
      await page.getByRole("button", { name: "Filter" }).click();
      await expect.poll(() => page.url()).toContain("status=failed");
      await page.locator("#range", { hasText: "2 matching" }).waitFor();
      await page.getByRole("button", { name: "Retry all 2 matching" }).click();
      await page.locator("#status", { hasText: "retry: acted on 2 of 2 saga(s)" }).waitFor();
      await expect
        .poll(
          async () =>
            (await Promise.all(["order-21", "order-22"].map((id) => app.runner.get(id)))).map(
              (x) => x?.status,
            ),
          { timeout: 20_000 },
        )
        .toEqual(["compensated", "compensated"]);
      expect(app.refunded).toEqual(expect.arrayContaining(["order-21", "order-22"]));
    });

    it("resets an open circuit breaker from the keyboard", async () => {
      const breaker = circuitBreaker({ strategy: consecutive({ threshold: 1 }), halfOpenAfter: "1h" });
      await breaker.execute(() => Promise.reject(new Error("down"))).catch(() => undefined);
      const { url } = await app.serve({ breakers: { payments: breaker } });
      await page.goto(url);
      await page.getByRole("link", { name: "1 circuit breakers not closed" }).click();
      await page.locator("main", { hasText: "Circuit breakers" }).waitFor();
      const reset = page.getByRole("button", { name: "Reset" });
      await reset.focus();
      await page.keyboard.press("Enter");
      await page.locator("#status", { hasText: "reset payments: open → closed" }).waitFor();
      expect(breaker.state).toBe("closed");
      await expect.poll(() => page.locator("main").textContent(), { timeout: 10_000 }).toContain("closed");
    });
  });
}
