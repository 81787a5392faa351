/**
 * Debian's Chromium driven by playwright-core (no browser download): the path, whether it is
 * here, and a launch with a fresh profile and nothing that phones home.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type BrowserContext } from "playwright-core";

export const CHROMIUM = process.env.PATCHBAY_CHROMIUM ?? "/usr/bin/chromium";

export const chromiumPresent = (): boolean => existsSync(CHROMIUM);

/**
 * Launches headless Chromium with a fresh profile directory (Playwright's persistent context is
 * its way of passing `--user-data-dir`); `close()` removes it.
 */
export async function launchChromium(): Promise<{ context: BrowserContext; close(): Promise<void> }> {
  const profile = mkdtempSync(join(tmpdir(), "patchbay-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1100, height: 760 },
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  return {
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
