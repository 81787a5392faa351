import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { InvalidArgumentError, PatchbayError } from "../core/errors.js";

const DEFAULT_NAMES = [
  "patchbay.config.js",
  "patchbay.config.mjs",
  "patchbay.config.ts",
  "patchbay.config.mts",
];

/**
 * The application's Patchbay objects, exported by a config module (`patchbay.config.js` in the
 * working directory, or `--config <file>`), so the CLI acts on what the app defines: its `store`,
 * its `bus` (for dead letters on a broker), its `pipelines`, `sagas`, `webhooks`.
 */
export type PatchbayConfig = Record<string, unknown>;

/**
 * Loads the config module: its named exports merged over its default export. Resolves
 * `undefined` when no path is given and no default file exists. A `.ts` config needs a loader
 * (`node --import tsx`).
 */
export async function loadConfig(path?: string): Promise<PatchbayConfig | undefined> {
  const file = path
    ? resolve(path)
    : DEFAULT_NAMES.map((n) => resolve(n)).find((candidate) => existsSync(candidate));
  if (!file) return undefined;
  if (!existsSync(file)) throw new InvalidArgumentError(`config file ${file} does not exist`, "--config");
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (cause) {
    const hint = /\.m?ts$/.test(file)
      ? " (a TypeScript config needs a loader: run with node --import tsx)"
      : "";
    throw new PatchbayError(
      "CONFIG_INVALID",
      `cannot load config ${file}: ${(cause as Error).message}${hint}`,
      {
        cause,
      },
    );
  }
  const fallback = mod.default;
  const base = typeof fallback === "object" && fallback !== null ? (fallback as Record<string, unknown>) : {};
  const { default: _default, ...named } = mod;
  return { ...base, ...named };
}

declare module "../core/errors.js" {
  interface PatchbayErrorCodes {
    CONFIG_INVALID: PatchbayError;
  }
}
