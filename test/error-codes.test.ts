/**
 * One page lists every error code: each code src/ can raise or record (see
 * test/support/error-codes.ts for how they are found) has a row in docs/errors.md, and every row
 * there names a code that still exists.
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { errorCodesInPage, errorCodesInSource } from "./support/error-codes.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const PAGE = join(ROOT, "docs", "errors.md");

describe("docs/errors.md", () => {
  const inSource = errorCodesInSource(ROOT);
  const inPage = errorCodesInPage(PAGE);

  it("finds the codes of every module in src/ (the scan itself works)", () => {
    for (const code of [
      "INVALID_ARGUMENT",
      "QUERY_FAILED",
      "STOPPED",
      "SAGA_DEADLINE",
      "WEBHOOK_LEASE_EXPIRED",
    ]) {
      expect(inSource.has(code), code).toBe(true);
    }
  });

  it("documents every error code the code can raise or record", () => {
    const missing = [...inSource]
      .filter(([code]) => !inPage.has(code))
      .map(([code, where]) => `${code} (${where})`);
    expect(missing, "codes in src/ with no row in docs/errors.md").toEqual([]);
  });

  it("lists no code that no longer exists", () => {
    const stale = [...inPage]
      .filter(([code]) => !inSource.has(code))
      .map(([code, line]) => `${code} (docs/errors.md:${line})`);
    expect(stale, "rows in docs/errors.md for codes not in src/").toEqual([]);
  });
});
