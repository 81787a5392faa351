/**
 * The shop's contract as its CI would use it: the published document (examples/shop/asyncapi.json,
 * committed) is what the shop's events are checked against, so an incompatible edit of
 * examples/shop/events.ts fails this file. The catalogue exports to AsyncAPI that the official
 * parser accepts, and an incompatible edit of an event schema fails the check, both through the
 * API and through `patchbay contracts check` (exit 1).
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Parser } from "@asyncapi/parser";
import { afterAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { catalogue } from "../examples/shop/catalogue.js";
import { OrderCreated } from "../examples/shop/events.js";
import { checkContracts, defineCatalogue, defineEvent, exportAsyncApi } from "../src/index.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
/** The shop's published contract, as its repository keeps it. */
const PUBLISHED = join(ROOT, "examples/shop/asyncapi.json");
const dir = mkdtempSync(join(tmpdir(), "patchbay-contracts-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function cli(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((done) => {
    const proc = spawn(
      process.execPath,
      ["--import", import.meta.resolve("tsx"), join(ROOT, "src/cli/main.ts"), ...args],
      {
        cwd: ROOT,
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let out = "";
    let err = "";
    proc.stdout.on("data", (d: Buffer) => (out += d.toString()));
    proc.stderr.on("data", (d: Buffer) => (err += d.toString()));
    proc.once("exit", (code) => done({ code, out, err }));
  });
}

/** The shop's catalogue with order.created replaced by `schema` (same version: an edit in place). */
const edited = (schema: z.ZodType) =>
  defineCatalogue({
    ...catalogue,
    events: catalogue.events.map((e) =>
      e.type === "order.created"
        ? defineEvent("order.created", { version: OrderCreated.version, source: "/shop", schema })
        : e,
    ),
  });
const Item = z.object({
  sku: z.string().min(1),
  qty: z.number().int().positive(),
  price: z.number().int().nonnegative(),
});
const base = {
  orderId: z.string(),
  userId: z.string(),
  items: z.array(Item).min(1),
  total: z.number().int().nonnegative(),
  card: z.string(),
};

describe("the shop's contract", () => {
  const published = JSON.parse(readFileSync(PUBLISHED, "utf8")) as ReturnType<typeof exportAsyncApi>;

  it("the shop's events keep every promise of the published contract (examples/shop/asyncapi.json)", () => {
    const report = checkContracts(published, catalogue, { mode: "full" });
    // A compatible change passes; publish it by regenerating the file (`patchbay contracts export
    // --config examples/shop/patchbay.config.ts --out examples/shop/asyncapi.json`) and committing it.
    expect(report.changes.filter((c) => c.breaking)).toEqual([]);
  });

  it("an incompatible edit of the shop's events fails that check: order.created without userId", () => {
    const { userId: _dropped, ...rest } = base;
    const report = checkContracts(published, edited(z.object({ ...rest, currency: z.string().length(3) })), {
      mode: "full",
    });
    expect(report.breaking).toBe(true);
    expect(report.changes.filter((c) => c.breaking).map((c) => [c.eventType, c.rule, c.path])).toEqual([
      ["order.created", expect.stringMatching(/required/), "userId"],
    ]);
  });

  it("exports to an AsyncAPI document the official parser validates with no error or warning", async () => {
    const { diagnostics, document } = await new Parser().parse(JSON.stringify(published));
    expect(diagnostics.map((d) => `${d.code}: ${d.message} at ${d.path.join(".")}`)).toEqual([]);
    expect(
      document
        ?.messages()
        .all()
        .map((m) => m.name())
        .sort(),
    ).toEqual(
      expect.arrayContaining([
        "order.cancelled",
        "order.confirmed",
        "order.created",
        "order.paid",
        "user.registered",
      ]),
    );
    expect(
      document
        ?.operations()
        .filterByReceive()
        .map((o) => o.id()),
    ).toContain("rabbitmq.order-saga.order.created");
  });

  it("fails the check when a test narrows order.created's currency to an enum, and passes a compatible edit", () => {
    const narrowed = edited(z.object({ ...base, currency: z.enum(["EUR"]) }));
    const report = checkContracts(published, narrowed, { mode: "backward" });
    expect(report.breaking).toBe(true);
    expect(report.changes.filter((c) => c.breaking).map((c) => [c.eventType, c.rule, c.path])).toEqual([
      ["order.created", "type-narrowed", "currency"],
    ]);
    const compatible = edited(
      z.object({ ...base, currency: z.string().length(3), note: z.string().optional() }),
    );
    expect(checkContracts(published, compatible, { mode: "full" }).breaking).toBe(false);
  });

  it("`patchbay contracts check` exits 1 on a breaking edit and 0 on the published contract", async () => {
    const against = join(dir, "asyncapi.json");
    const exported = await cli([
      "contracts",
      "export",
      "--config",
      "examples/shop/patchbay.config.ts",
      "--out",
      against,
    ]);
    expect(exported.code, exported.err).toBe(0);
    const same = await cli([
      "contracts",
      "check",
      "--against",
      against,
      "--config",
      "examples/shop/patchbay.config.ts",
      "--mode",
      "full",
    ]);
    expect([same.code, same.out.trim().split("\n").at(-1)]).toEqual([
      0,
      "no breaking change (mode full, 0 changes)",
    ]);

    const next = join(dir, "next.json");
    writeFileSync(
      next,
      JSON.stringify(
        exportAsyncApi(edited(z.object({ ...base, currency: z.string().length(3), coupon: z.string() }))),
      ),
    );
    const broken = await cli(["contracts", "check", "--against", PUBLISHED, "--next", next]);
    expect(broken.code).toBe(1);
    expect(broken.out).toContain("BREAKING  order.created v1: required field added: coupon");
    expect(broken.out.trim().split("\n").at(-1)).toBe("1 breaking change (mode backward)");
  });
});
