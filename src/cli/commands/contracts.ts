import { readFileSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { InvalidArgumentError } from "../../core/errors.js";
import { exportAsyncApi, type AsyncApiDocument } from "../../contracts/asyncapi.js";
import type { Catalogue } from "../../contracts/catalogue.js";
import { checkContracts, type CompatibilityMode } from "../../contracts/check.js";
import type { CliCommand, FlagValues } from "../command.js";
import { loadConfig } from "../config.js";

const USAGE = `Usage: patchbay contracts <export|check> [options]

  export [--out <file>]                              the catalogue as an AsyncAPI 3.1 document (JSON)
  check  --against <file> [--mode backward|forward|full] [--next <file>]
                                                     compare with a published document; exit 1 on a breaking change

The catalogue comes from --config (patchbay.config.js exporting \`catalogue\`, made by
defineCatalogue); \`check --next <file>\` compares two exported documents instead. Modes mirror
schema registries: backward (default: new consumers read old data), forward (old consumers read
new data), full (both). The rules are in docs/contracts.md.`;

const MODES = ["backward", "forward", "full"] as const;

async function catalogueFromConfig(configPath: string | undefined): Promise<Catalogue> {
  const config = await loadConfig(configPath);
  const catalogue = config?.catalogue as Catalogue | undefined;
  if (typeof catalogue !== "object" || catalogue === null || !Array.isArray(catalogue.events)) {
    throw new InvalidArgumentError(
      "no catalogue: the config (--config or patchbay.config.js) must export `catalogue` made by defineCatalogue",
      "--config",
    );
  }
  return catalogue;
}

function readDocument(values: FlagValues, flag: string): AsyncApiDocument {
  const path = values[flag];
  if (typeof path !== "string") throw new InvalidArgumentError(`--${flag} <file> is required`, `--${flag}`);
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(resolve(path), "utf8"));
  } catch (cause) {
    throw new InvalidArgumentError(
      `--${flag} ${path}: cannot read it as JSON: ${(cause as Error).message}`,
      `--${flag}`,
    );
  }
  if (typeof doc !== "object" || doc === null || typeof (doc as AsyncApiDocument).asyncapi !== "string") {
    throw new InvalidArgumentError(`--${flag} ${path} is not an AsyncAPI document`, `--${flag}`);
  }
  return doc as AsyncApiDocument;
}

/** `patchbay contracts export|check`: the AsyncAPI document, and the breaking-change gate for CI. */
export const contractsCommand: CliCommand = {
  name: "contracts",
  summary: "export the event catalogue as AsyncAPI; check it against a published one (CI gate)",
  usage: USAGE,
  options: {
    out: { type: "string" },
    against: { type: "string" },
    next: { type: "string" },
    mode: { type: "string" },
  },
  maxArgs: 1,
  async run(ctx) {
    const [sub] = ctx.args;
    if (sub === "export") {
      const doc = exportAsyncApi(await catalogueFromConfig(ctx.flags.config));
      const text = `${JSON.stringify(doc, null, 2)}\n`;
      if (typeof ctx.values.out === "string") {
        writeFileSync(resolve(ctx.values.out), text);
        ctx.err(`wrote ${ctx.values.out}`);
      } else ctx.out(text.trimEnd());
      return 0;
    }
    if (sub === "check") {
      const mode = (ctx.values.mode ?? "backward") as CompatibilityMode;
      if (!MODES.includes(mode)) {
        throw new InvalidArgumentError(
          `--mode must be one of ${MODES.join(", ")}, got ${JSON.stringify(mode)}`,
          "--mode",
        );
      }
      const previous = readDocument(ctx.values, "against");
      const next =
        typeof ctx.values.next === "string"
          ? readDocument(ctx.values, "next")
          : await catalogueFromConfig(ctx.flags.config);
      const report = checkContracts(previous, next, { mode });
      if (ctx.flags.json) ctx.out(JSON.stringify(report, null, 2));
      else {
        for (const c of report.changes) ctx.out(`${c.breaking ? "BREAKING  " : "ok        "}${c.message}`);
        const breaking = report.changes.filter((c) => c.breaking).length;
        ctx.out(
          breaking > 0
            ? `${breaking} breaking change${breaking === 1 ? "" : "s"} (mode ${mode})`
            : `no breaking change (mode ${mode}, ${report.changes.length} change${report.changes.length === 1 ? "" : "s"})`,
        );
      }
      return report.breaking ? 1 : 0;
    }
    throw new InvalidArgumentError(
      `patchbay contracts needs export or check, got ${JSON.stringify(sub ?? "")}`,
      "command",
    );
  },
};
