/**
 * promtool (Debian's `prometheus` package) for the tests that validate metrics and rules with the
 * real tool. Missing locally: those tests skip, saying so once. Missing under CI=true: they fail.
 */
import { spawnSync } from "node:child_process";

const found = spawnSync("promtool", ["--version"], { encoding: "utf8" });
/** Whether promtool runs here. */
export const hasPromtool = found.status === 0;
/** Under CI a missing promtool is a failure, not a skip. */
export const promtoolRequired = process.env.CI === "true";

let said = false;
/** Prints, once per file, why the promtool tests skip. */
export function sayPromtoolMissing(): void {
  if (hasPromtool || promtoolRequired || said) return;
  said = true;
  console.warn("promtool not found: skipping promtool checks (apt-get install -y prometheus)");
}

/** Runs promtool with `args` (and `input` on stdin); resolves its exit code and output. */
export function promtool(args: string[], input?: string): { status: number | null; output: string } {
  const r = spawnSync("promtool", args, { encoding: "utf8", input, timeout: 60_000 });
  if (r.error) throw r.error;
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}
