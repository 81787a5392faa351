/**
 * The shipped alert rules and Grafana dashboard: valid for promtool (check rules, unit tests of
 * every alert), and every expression refers only to metrics Patchbay exports.
 */
import { readFileSync } from "node:fs";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { sqlite } from "../src/adapters/sqlite/index.js";
import { createMetrics } from "../src/ops/metrics.js";
import { hasPromtool, promtool, promtoolRequired, sayPromtoolMissing } from "./support/promtool.js";

const RULES = "alerts/patchbay.rules.yml";
const RULE_TESTS = "alerts/patchbay.rules.test.yml";
const DASHBOARD = "alerts/grafana-dashboard.json";
/** Named by the rules before the part that exports it exists (none left). */
const PLACEHOLDERS = new Set<string>();

/** The names of every series a Patchbay registry can export (histograms with their suffixes). */
async function exportedNames(): Promise<Set<string>> {
  const dir = mkdtempSync(join(tmpdir(), "patchbay-ops-names-"));
  const metrics = createMetrics({ store: sqlite({ file: join(dir, "x.db") }) });
  try {
    const names = new Set<string>();
    for (const m of await metrics.registry.getMetricsAsJSON()) {
      names.add(m.name);
      if (String(m.type) === "histogram")
        for (const s of ["_bucket", "_sum", "_count"]) names.add(m.name + s);
    }
    return names;
  } finally {
    metrics.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Metric names in a PromQL expression: identifiers that are not functions, keywords or label names. */
function metricNames(expr: string): string[] {
  const withoutStrings = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, "{}")
    .replace(/\[[^\]]*\]/g, "[]");
  const withoutGrouping = withoutStrings.replace(
    /\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g,
    "",
  );
  const names = withoutGrouping.match(/\b[a-zA-Z_:][a-zA-Z0-9_:]*\b(?!\s*\()/g) ?? [];
  const keywords = new Set(["and", "or", "unless", "bool", "offset", "inf", "nan", "le"]);
  return names.filter((n) => !keywords.has(n.toLowerCase()) && /_/.test(n) && !n.startsWith("$__"));
}

/** The `expr:` values of the rules file (folded `>-` blocks included). */
function ruleExpressions(yaml: string): string[] {
  const out: string[] = [];
  const lines = yaml.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const m = /^(\s*)expr:\s*(.*)$/.exec(lines[i] ?? "");
    if (!m) continue;
    if (m[2] !== ">-" && m[2] !== "|") {
      out.push(m[2] ?? "");
      continue;
    }
    const block: string[] = [];
    while (i + 1 < lines.length && (lines[i + 1] ?? "").startsWith(`${m[1] ?? ""}  `))
      block.push((lines[++i] ?? "").trim());
    out.push(block.join(" "));
  }
  return out;
}

describe("alert rules and dashboard", () => {
  it("every rule and dashboard expression names only metrics Patchbay exports", async () => {
    const exported = await exportedNames();
    const rules = ruleExpressions(readFileSync(RULES, "utf8"));
    expect(rules.length).toBe(9);
    const dashboard = JSON.parse(readFileSync(DASHBOARD, "utf8")) as {
      panels: Array<{ title: string; targets?: Array<{ expr: string }> }>;
    };
    const panelExprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr));
    expect(panelExprs.length).toBeGreaterThan(20);
    const unknown = [...rules, ...panelExprs]
      .flatMap((e) => metricNames(e).map((n) => ({ n, e })))
      .filter(({ n }) => !exported.has(n) && !PLACEHOLDERS.has(n));
    expect(unknown).toEqual([]);
    // Every Patchbay metric appears somewhere on the dashboard.
    const used = new Set(panelExprs.flatMap(metricNames));
    const unused = [...exported].filter(
      (n) =>
        n.startsWith("patchbay_") &&
        !used.has(n) &&
        !used.has(`${n}_bucket`) &&
        !/_(sum|count|bucket)$/.test(n),
    );
    expect(unused).toEqual(["patchbay_metrics_store_errors_total"]);
  });

  it.skipIf(!hasPromtool && !promtoolRequired)("promtool check rules accepts the rules", () => {
    const r = promtool(["check", "rules", RULES]);
    expect(r.output).toContain("SUCCESS: 9 rules found");
    expect(r.status).toBe(0);
  });

  it.skipIf(!hasPromtool && !promtoolRequired)(
    "promtool test rules: every alert fires when it should, and only then",
    () => {
      const r = promtool(["test", "rules", RULE_TESTS]);
      expect(r.output).toContain("SUCCESS");
      expect(r.status).toBe(0);
    },
  );
});

sayPromtoolMissing();
