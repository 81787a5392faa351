/**
 * The docs are true: every ```ts block of README.md and docs/*.md typechecks against the project
 * as its own module (with the context its page gives it, see test/support/doc-blocks.ts), and the
 * blocks marked `<!-- run -->` run to exit 0 on the embedded store, in a directory of their own.
 */
import { spawn } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import {
  docFiles,
  extractBlocks,
  moduleOf,
  toModules,
  typecheck,
  type DocBlock,
  type DocDiagnostic,
} from "./support/doc-blocks.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const TSX_LOADER = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;

const blocks = docFiles(ROOT).flatMap((file) => extractBlocks(ROOT, file));
const modules = toModules(ROOT, blocks);
// Blocks that must fail, checked in the same program to prove the checks bite.
const broken = extractBlocks(ROOT, join(ROOT, "test", "fixtures", "docs-broken.md"));
const name = (b: DocBlock) => `${b.file}:${b.line}`;

describe("the docs' TypeScript blocks", () => {
  let diagnostics: DocDiagnostic[] = [];
  beforeAll(() => {
    diagnostics = typecheck(ROOT, [...modules, ...toModules(ROOT, broken)]);
  }, 120_000);

  it("fail where they are wrong, at their line in the page (a fixture of broken blocks)", () => {
    const found = (b: DocBlock) =>
      diagnostics.filter((d) => d.block === b).map((d) => `${d.where} ${d.message}`);
    const [option, directive, type, context] = broken;
    expect(found(option!).join("\n")).toMatch(/^test\/fixtures\/docs-broken\.md:8 TS\d+: .*'fiel'/);
    expect(directive!.directiveError).toMatch(/unknown directive "contnue"/);
    expect(found(type!).join("\n")).toMatch(
      /^test\/fixtures\/docs-broken\.md:20 TS\d+: Type 'number' is not assignable to type 'string'/,
    );
    expect(found(context!).join("\n")).toMatch(
      /^test\/fixtures\/docs-broken\.md:23 TS\d+: .*\(in the context comment\)$/,
    );
  });

  it("are found in README.md and every page of docs/", () => {
    expect(blocks.length).toBeGreaterThan(40);
    expect(new Set(blocks.map((b) => b.file))).toContain("README.md");
  });

  it.each(blocks.map((b) => [name(b), b] as const))("%s typechecks", (_, block) => {
    expect(block.directiveError ?? "").toBe("");
    const mine = diagnostics.filter((d) => d.block === block).map((d) => `${d.where} ${d.message}`);
    expect(mine.join("\n")).toBe("");
  });
});

describe("the docs' runnable blocks", () => {
  const runnable = modules.flatMap((m) =>
    m.blocks.flatMap((b, i) => (b.run ? [[name(b), moduleOf(ROOT, m.blocks, i)] as const] : [])),
  );

  it("include the README quick start", () => {
    expect(runnable.map(([n]) => n).some((n) => n.startsWith("README.md:"))).toBe(true);
  });

  it.each(runnable)(
    "%s runs to exit 0 on the embedded store",
    async (_, module) => {
      // Under the repository, so `patchbay` (tsconfig paths) and `zod` (node_modules) resolve.
      const dir = join(ROOT, ".docs-check", `run-${process.pid}-${Math.random().toString(36).slice(2)}`);
      mkdirSync(dir, { recursive: true });
      try {
        const file = join(dir, "main.ts");
        writeFileSync(file, module.text);
        const { code, output } = await runNode(file, dir);
        expect(code, output).toBe(0);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
    60_000,
  );
});

function runNode(file: string, cwd: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ["--import", TSX_LOADER, file], {
      cwd,
      env: {
        ...process.env,
        PATCHBAY_PG_URL: undefined,
        PATCHBAY_AMQP_URL: undefined,
        TSX_TSCONFIG_PATH: join(ROOT, "tsconfig.json"),
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    proc.stdout.on("data", (d: Buffer) => (output += d.toString()));
    proc.stderr.on("data", (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => proc.kill("SIGKILL"), 50_000);
    proc.once("error", reject);
    proc.once("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}
