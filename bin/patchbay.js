#!/usr/bin/env node
/**
 * The `patchbay` command. Installed from npm, it runs the built CLI (dist/). In a checkout of the
 * repository (src/ beside this file) it runs the sources through tsx, a dev dependency: no build
 * needed after `npm install`, and never a stale dist/ left by an earlier build. A checkout
 * installed without dev dependencies falls back to dist/.
 */
import { existsSync } from "node:fs";
import process from "node:process";
import { URL } from "node:url";

const source = new URL("../src/cli/main.ts", import.meta.url);
const built = new URL("../dist/cli/main.js", import.meta.url);
const tsx = existsSync(source) ? await import("tsx/esm/api").catch(() => undefined) : undefined;

if (tsx) {
  tsx.register();
  await import(source.href);
} else if (existsSync(built)) {
  await import(built.href);
} else {
  process.stderr.write("patchbay: no dist/ to run (npm run build), nor tsx to run src/ (npm install)\n");
  process.exitCode = 1;
}
