/**
 * Every error code the code base can raise or record, found in src/ (tests excluded) by reading
 * the syntax trees:
 * - the keys of every `interface PatchbayErrorCodes` (the code → class map, merged per module);
 * - a string literal passed first to a constructor or `super(...)`: `new PatchbayError("X", ...)`,
 *   `new BusError("X", ...)`, `super("X", ...)`;
 * - a string literal in a `code:` property (`{ code: "WEBHOOK_LEASE_EXPIRED", message }`: errors
 *   recorded in attempt logs, run records and quarantine rows without an Error object).
 */
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import ts from "typescript";

const CODE = /^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*$/;

/** Where each code appears: code → `file:line` of its first sighting. */
export function errorCodesInSource(root: string): Map<string, string> {
  const found = new Map<string, string>();
  for (const file of sourceFiles(join(root, "src"))) {
    const sf = ts.createSourceFile(file, readFileSync(file, "utf8"), ts.ScriptTarget.Latest, true);
    const note = (code: string, node: ts.Node) => {
      if (!CODE.test(code) || found.has(code)) return;
      const line = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1;
      found.set(code, `${relative(root, file)}:${line}`);
    };
    const visit = (node: ts.Node): void => {
      if (ts.isInterfaceDeclaration(node) && node.name.text === "PatchbayErrorCodes") {
        for (const member of node.members) {
          if (member.name && (ts.isIdentifier(member.name) || ts.isStringLiteral(member.name))) {
            note(member.name.text, member);
          }
        }
      }
      const first =
        ts.isNewExpression(node) ||
        (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.SuperKeyword)
          ? node.arguments?.[0]
          : undefined;
      if (first && ts.isStringLiteralLike(first)) note(first.text, first);
      if (
        ts.isPropertyAssignment(node) &&
        ts.isIdentifier(node.name) &&
        node.name.text === "code" &&
        ts.isStringLiteralLike(node.initializer)
      ) {
        note(node.initializer.text, node.initializer);
      }
      ts.forEachChild(node, visit);
    };
    visit(sf);
  }
  return found;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith(".ts") && !entry.name.endsWith(".test.ts") ? [path] : [];
  });
}

/** The codes a Markdown page documents: the backticked code opening each row of its tables. */
export function errorCodesInPage(file: string): Map<string, number> {
  const found = new Map<string, number>();
  readFileSync(file, "utf8")
    .split("\n")
    .forEach((line, i) => {
      const m = /^\|\s*`([A-Z][A-Z0-9_]*)`\s*\|/.exec(line);
      if (m && CODE.test(m[1]!)) found.set(m[1]!, i + 1);
    });
  return found;
}
