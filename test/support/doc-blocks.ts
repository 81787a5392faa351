/**
 * The TypeScript blocks of the README and docs/, as modules the compiler can check and Node can
 * run. A block may be preceded by one HTML comment (invisible on GitHub) that gives it what a
 * reader infers from the page around it:
 *
 *   <!-- context: import { sqlite } from "patchbay/sqlite"; declare const id: string; -->
 *       code placed before the block (free variables, imports the prose already showed)
 *   <!-- continue -->
 *       the block goes on from the block before it on the same page: one module for both
 *   <!-- run -->
 *       the block is a complete program: the test runs it on the embedded store
 *
 * Words combine: `<!-- continue, run -->`, `<!-- run; context: ... -->` (`context:` comes last and
 * takes the rest of the comment, over several lines if needed). Any other comment right before a
 * block is an error, so a misspelt directive cannot make a block go unchecked.
 */
import { readFileSync, readdirSync } from "node:fs";
import { join, relative } from "node:path";
import ts from "typescript";

export interface DocBlock {
  /** Path of the Markdown file, relative to the repository. */
  readonly file: string;
  /** 1-based line of the opening fence. */
  readonly line: number;
  readonly code: string;
  /** Code to put before the block, from a `context:` directive. */
  readonly context: string;
  /** 1-based line of the Markdown file where `context` starts. */
  readonly contextLine: number;
  readonly continues: boolean;
  readonly run: boolean;
  /** What is wrong with the block's directive comment, if anything. */
  readonly directiveError?: string;
}

/** One source of lines in a generated module, mapped back to its Markdown file. */
interface Segment {
  readonly block: DocBlock;
  /** 0-based line in the module where the segment starts. */
  readonly start: number;
  readonly length: number;
  /** 1-based Markdown line of the segment's first line. */
  readonly mdLine: number;
  readonly kind: "context" | "block";
}

/** A generated module: one block, or a chain of `continue`d blocks. */
export interface DocModule {
  /** Virtual file name, under `<root>/.docs-check/`. */
  readonly path: string;
  readonly blocks: readonly DocBlock[];
  readonly segments: readonly Segment[];
  readonly text: string;
}

const FENCE = /^(\s*)(`{3,}|~{3,})\s*([\w+-]*)/;
const DIRECTIVE_WORDS = new Set(["continue", "run"]);

/** The Markdown files whose blocks are checked: README.md and docs/*.md. */
export function docFiles(root: string): string[] {
  const docs = readdirSync(join(root, "docs"))
    .filter((f) => f.endsWith(".md"))
    .sort()
    .map((f) => join(root, "docs", f));
  return [join(root, "README.md"), ...docs];
}

/** Every ```ts block of `file` with its directives. */
export function extractBlocks(root: string, file: string): DocBlock[] {
  const lines = readFileSync(file, "utf8").split("\n");
  const rel = relative(root, file);
  const blocks: DocBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = FENCE.exec(lines[i]!);
    if (!open) continue;
    const [, indent = "", fence = "", lang = ""] = open;
    let end = i + 1;
    while (end < lines.length && !lines[end]!.trim().startsWith(fence)) end++;
    if (lang === "ts" || lang === "typescript") {
      const code = lines
        .slice(i + 1, end)
        .map((l) => (l.startsWith(indent) ? l.slice(indent.length) : l.trimStart()))
        .join("\n");
      const d = directives(lines, i);
      const orphan = d.continues && blocks.length === 0 && !d.directiveError;
      blocks.push({
        file: rel,
        line: i + 1,
        code,
        ...d,
        ...(orphan
          ? { directiveError: "`continue` on the first block of the page: there is nothing to continue" }
          : {}),
      });
    }
    i = end;
  }
  return blocks;
}

/** Reads the HTML comment that ends right above line index `fence` (blank lines allowed between). */
function directives(lines: string[], fence: number): Omit<DocBlock, "file" | "line" | "code"> {
  const none = { context: "", contextLine: 0, continues: false, run: false };
  let last = fence - 1;
  while (last >= 0 && lines[last]!.trim() === "") last--;
  if (last < 0 || !lines[last]!.trim().endsWith("-->")) return none;
  let first = last;
  while (first >= 0 && !lines[first]!.includes("<!--")) first--;
  if (first < 0) return none;
  const text = lines.slice(first, last + 1).join("\n");
  const body = text.slice(text.indexOf("<!--") + 4, text.lastIndexOf("-->"));
  if (body.trim() === "prettier-ignore") return none;
  const contextAt = body.indexOf("context:");
  const head = contextAt === -1 ? body : body.slice(0, contextAt);
  const words = head.split(/[\s,;]+/).filter(Boolean);
  const unknown = words.filter((w) => !DIRECTIVE_WORDS.has(w));
  const context = contextAt === -1 ? "" : body.slice(contextAt + "context:".length);
  // The Markdown line where the context's text starts.
  const before = text.slice(0, text.indexOf("<!--") + 4 + Math.max(contextAt, 0) + "context:".length);
  return {
    context,
    contextLine: first + 1 + (before.split("\n").length - 1),
    continues: words.includes("continue"),
    run: words.includes("run"),
    ...(unknown.length > 0
      ? {
          directiveError: `unknown directive ${unknown.map((w) => JSON.stringify(w)).join(", ")} in the comment above the block (known: continue, run, context: <code>)`,
        }
      : {}),
  };
}

/** Groups blocks into modules: a `continue` block joins the module of the block before it. */
export function toModules(root: string, blocks: readonly DocBlock[]): DocModule[] {
  const chains: DocBlock[][] = [];
  for (const b of blocks) {
    const previous = chains.at(-1);
    if (b.continues && previous && previous[0]!.file === b.file) previous.push(b);
    else chains.push([b]);
  }
  return chains.map((chain) => moduleOf(root, chain));
}

/** The module made of `chain`, up to and including its block `upTo` (default: all). */
export function moduleOf(root: string, chain: readonly DocBlock[], upTo = chain.length - 1): DocModule {
  const out: string[] = [];
  const segments: Segment[] = [];
  const add = (block: DocBlock, text: string, mdLine: number, kind: Segment["kind"]) => {
    const lines = text.split("\n");
    segments.push({ block, start: out.length, length: lines.length, mdLine, kind });
    out.push(...lines);
  };
  for (const b of chain.slice(0, upTo + 1)) {
    if (b.context.trim() !== "") add(b, b.context, b.contextLine, "context");
    add(b, b.code, b.line + 1, "block");
  }
  out.push("export {};"); // a module, never a script: top-level await, no global clashes
  const first = chain[0]!;
  const slug = `${first.file.replace(/[^\w]+/g, "_")}_${first.line}_${upTo}`;
  return {
    path: join(root, ".docs-check", `${slug}.ts`),
    blocks: chain.slice(0, upTo + 1),
    segments,
    text: out.join("\n"),
  };
}

/** A compiler diagnostic, placed in its Markdown file. */
export interface DocDiagnostic {
  readonly block: DocBlock;
  /** `README.md:57` */
  readonly where: string;
  readonly message: string;
}

/**
 * Typechecks every module in one program, with the project's tsconfig (so `patchbay`,
 * `patchbay/sqlite`, ... resolve to src/ through `paths`). The modules are virtual files: nothing
 * is written.
 */
export function typecheck(root: string, modules: readonly DocModule[]): DocDiagnostic[] {
  const configPath = join(root, "tsconfig.json");
  const config = ts.readConfigFile(configPath, (p) => ts.sys.readFile(p));
  const parsed = ts.parseJsonConfigFileContent(config.config, ts.sys, root, { noEmit: true }, configPath);
  const options: ts.CompilerOptions = {
    ...parsed.options,
    noEmit: true,
    declaration: false,
    sourceMap: false,
  };
  const byPath = new Map(modules.map((m) => [m.path, m]));
  const host = ts.createCompilerHost(options, true);
  const disk = {
    getSourceFile: host.getSourceFile.bind(host),
    fileExists: host.fileExists.bind(host),
    readFile: host.readFile.bind(host),
  };
  host.fileExists = (p) => byPath.has(p) || disk.fileExists(p);
  host.readFile = (p) => byPath.get(p)?.text ?? disk.readFile(p);
  host.getSourceFile = (p, language, onError, create) => {
    const m = byPath.get(p);
    return m
      ? ts.createSourceFile(p, m.text, language, true, ts.ScriptKind.TS)
      : disk.getSourceFile(p, language, onError, create);
  };
  const program = ts.createProgram({ rootNames: [...byPath.keys()], options, host });
  const found: DocDiagnostic[] = [];
  for (const m of modules) {
    const sf = program.getSourceFile(m.path);
    if (!sf) throw new Error(`the compiler did not load ${m.path}`);
    const diagnostics = [...program.getSyntacticDiagnostics(sf), ...program.getSemanticDiagnostics(sf)];
    for (const d of diagnostics) found.push(place(m, sf, d));
  }
  return found;
}

function place(m: DocModule, sf: ts.SourceFile, d: ts.Diagnostic): DocDiagnostic {
  const message = `TS${d.code}: ${ts.flattenDiagnosticMessageText(d.messageText, "\n")}`;
  const line =
    d.start === undefined ? m.segments.at(-1)!.start : sf.getLineAndCharacterOfPosition(d.start).line;
  const segment = m.segments.find((s) => line >= s.start && line < s.start + s.length) ?? m.segments.at(-1)!;
  const mdLine = segment.mdLine + (line - segment.start);
  const where = `${segment.block.file}:${mdLine}`;
  return {
    block: segment.block,
    where,
    message: segment.kind === "context" ? `${message} (in the context comment)` : message,
  };
}
