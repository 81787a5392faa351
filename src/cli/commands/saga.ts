import { isSagaDefinition } from "../../saga/definition.js";
import {
  SAGA_STATUSES,
  type SagaDetails,
  type SagaFault,
  type SagaInstance,
  type SagaStatus,
} from "../../saga/records.js";
import { createSagaRunner, type SagaRunner } from "../../saga/runner.js";
import type { SqlStore } from "../../store/sql-store.js";
import type { SagaBulkAction, SagaBulkResult } from "../../saga/bulk.js";
import { positiveInt, str, timeFlag, type CliCommand, type CommandContext } from "../command.js";
import { loadConfig } from "../config.js";
import { table, timestamp } from "../table.js";

const USAGE = `Usage: patchbay saga <list|show|retry|skip|resolve> [options]

  list    [--status s[,s]] [--name n] [--since t] [--limit n]   instances, newest first
  show    <id>                                      one instance and its step timeline
  retry   <id>                                      run the current step (or compensation) again now
  skip    <id> [--result <json>] [--note <text>]    skip the current step (or compensation: done by hand)
  resolve <id> [--note <text>]                      mark a stuck saga resolved (settled by hand)

In bulk: retry, skip or resolve every saga a filter matches, instead of one <id>:
  retry|skip|resolve --status s[,s] [--name n] [--since t] [--dry-run] [--batch n]
                     [--result <json>] [--note <text>]
  --status is required. The matching sagas are read once when the command begins; each is then
  changed in its own transaction only if it is still as it was (one that changed meanwhile is
  skipped and counted). Prints matched, acted and skipped; progress goes to stderr after each
  batch (--batch, default 100) when more than one batch matched. Running it twice is safe.
  --dry-run only counts them and lists a sample of 10.

--since t: only sagas last updated (for a failed saga: that failed) at or after t, a duration
back from now (30m, 1h, 2d) or an ISO date with an offset (2026-01-31T12:00:00Z).
Statuses: ${SAGA_STATUSES.join(", ")}. The store and the saga definitions come from --config
(patchbay.config.js exporting \`store\` and \`sagas\`), else the store from --sqlite / --pg.`;

function bulkReport(r: SagaBulkResult, filterText: string): string {
  if (r.dryRun) {
    const head = `dry run: ${r.matched} saga${r.matched === 1 ? "" : "s"} match ${filterText}; \`${r.action}\` would act on ${r.matched === 1 ? "it" : "them"}`;
    if (r.matched === 0) return head;
    const more = r.matched - r.sample.length;
    return [`${head}. Sample:`, listing(r.sample), ...(more > 0 ? [`… ${more} more`] : [])].join("\n");
  }
  const lines = [`saga ${r.action}: matched ${r.matched}, acted ${r.acted}, skipped ${r.skipped}`];
  for (const skip of r.skips) lines.push(`  skipped ${skip.id}: ${skip.reason}: ${skip.message}`);
  if (r.skipped > r.skips.length) lines.push(`  … ${r.skipped - r.skips.length} more skipped`);
  return lines.join("\n");
}

const json = (v: unknown) => (v === undefined ? "" : JSON.stringify(v));
const faultText = (f: SagaFault | undefined) =>
  f ? `${f.phase} ${f.step ?? "(no step)"}: ${f.error.code ?? f.error.name}: ${f.error.message}` : "";

/** The app's sagas (definitions or a runner) and store from the config, else the flags' store. */
async function sagasFor(ctx: CommandContext): Promise<{ runner: SagaRunner; close(): Promise<void> }> {
  const config = await loadConfig(ctx.flags.config);
  // A store named on the line wins over the config's.
  const configStore = ctx.flags.explicitStore ? undefined : (config?.store as SqlStore | undefined);
  const store: SqlStore = configStore ?? (await ctx.store());
  const sagas = config?.sagas;
  const isRunner = (v: unknown): v is SagaRunner =>
    typeof v === "object" && v !== null && typeof (v as SagaRunner).retry === "function";
  const runner =
    isRunner(sagas) && configStore !== undefined
      ? sagas
      : createSagaRunner({ store, sagas: Array.isArray(sagas) ? sagas.filter(isSagaDefinition) : [] });
  return { runner, close: () => store.close() };
}

function listing(instances: SagaInstance[]): string {
  return table(
    ["ID", "SAGA", "STATUS", "STEP", "ATTEMPT", "UPDATED (UTC)", "WHY"],
    instances.map((i) => [
      i.id,
      `${i.name} v${i.version}`,
      i.status,
      i.step < 0 ? "-" : String(i.step),
      String(i.attempt),
      timestamp(i.updatedAt),
      faultText(i.failure ?? i.reason),
    ]),
  );
}

function details(d: SagaDetails): string {
  const stepName = d.steps.find((s) => s.index === d.step)?.name;
  const lines = [
    `saga ${d.id}  ${d.name} v${d.version}  ${d.status.toUpperCase()}`,
    `  created   ${timestamp(d.createdAt)}   updated ${timestamp(d.updatedAt)}`,
    `  step      ${d.step < 0 ? "none (every step compensated)" : `${d.step}${stepName ? ` (${stepName})` : ""}`}, attempt ${d.attempt}${d.owner ? `, held by ${d.owner} until ${timestamp(d.runAt)}` : d.status === "running" || d.status === "compensating" ? `, next run ${timestamp(d.runAt)}` : ""}`,
  ];
  if (d.deadline !== undefined) lines.push(`  deadline  ${timestamp(d.deadline)}`);
  if (d.reason) lines.push(`  reason    ${faultText(d.reason)}`);
  if (d.failure) lines.push(`  FAILURE   ${faultText(d.failure)}`);
  if (d.note) lines.push(`  note      ${d.note}`);
  lines.push(`  input     ${json(d.input)}`, "");
  lines.push(
    d.steps.length === 0
      ? "no step has run yet"
      : table(
          ["STARTED (UTC)", "PHASE", "STEP", "STATUS", "ATTEMPTS", "RESULT / ERROR"],
          d.steps.map((s) => [
            timestamp(s.startedAt),
            s.phase,
            s.name,
            s.status,
            String(s.attempts),
            s.error
              ? `${s.error.code ?? s.error.name}: ${s.error.message}`
              : s.note
                ? `${json(s.result)} (${s.note})`
                : json(s.result),
          ]),
          80,
        ),
  );
  if (d.status === "failed") {
    lines.push("", `next: patchbay saga retry ${d.id}  |  skip ${d.id}  |  resolve ${d.id} --note "..."`);
  }
  return lines.join("\n");
}

/** `patchbay saga list|show|retry|skip|resolve`: inspect saga instances and act on stuck ones. */
export const sagaCommand: CliCommand = {
  name: "saga",
  summary: "saga instances: list, show (timeline), retry, skip, resolve (one, or all a filter matches)",
  usage: USAGE,
  options: {
    status: { type: "string" },
    name: { type: "string" },
    limit: { type: "string" },
    since: { type: "string" },
    "dry-run": { type: "boolean", default: false },
    batch: { type: "string" },
    result: { type: "string" },
    note: { type: "string" },
  },
  maxArgs: 2,
  async run(ctx) {
    const { values } = ctx;
    const [action, id] = ctx.args;
    if (!action || !["list", "show", "retry", "skip", "resolve"].includes(action)) {
      ctx.err(action ? `patchbay saga: unknown action ${JSON.stringify(action)}\n\n${USAGE}` : USAGE);
      return 2;
    }
    const limit = positiveInt(values, "limit", 50);
    const batchSize = positiveInt(values, "batch", 100);
    const since = timeFlag(values, "since", Date.now());
    const filtered = values.status !== undefined || values.name !== undefined || since !== undefined;
    const bulk = ["retry", "skip", "resolve"].includes(action) && !id;
    const bulkOnly = values["dry-run"] === true || values.batch !== undefined;
    if (bulk && values.status === undefined) {
      ctx.err(
        `patchbay saga ${action}: give an <id>, or --status (with --name, --since) to ${action} every saga that matches\n\n${USAGE}`,
      );
      return 2;
    }
    if (action === "show" && !id) {
      ctx.err(`patchbay saga show <id>\n\n${USAGE}`);
      return 2;
    }
    if (id && action !== "list" && (filtered || bulkOnly)) {
      ctx.err(
        `patchbay saga ${action}: --status, --name, --since, --dry-run and --batch select sagas in bulk; give them or an <id>, not both`,
      );
      return 2;
    }
    const misplaced =
      values.result !== undefined && action !== "skip"
        ? "--result"
        : values.note !== undefined && action !== "skip" && action !== "resolve"
          ? "--note"
          : undefined;
    if (misplaced) {
      ctx.err(
        `patchbay saga ${action}: ${misplaced} is for ${misplaced === "--result" ? "skip" : "skip and resolve"}, not ${action}`,
      );
      return 2;
    }
    if (action === "list" && bulkOnly) {
      ctx.err(`patchbay saga list: --dry-run and --batch are for bulk retry, skip and resolve`);
      return 2;
    }
    const statuses = str(values.status)
      ?.split(",")
      .map((s) => s.trim());
    const unknownStatus = statuses?.find((s) => !(SAGA_STATUSES as readonly string[]).includes(s));
    if (unknownStatus !== undefined) {
      ctx.err(
        `patchbay saga: unknown status ${JSON.stringify(unknownStatus)} (one of ${SAGA_STATUSES.join(", ")})`,
      );
      return 2;
    }
    let result: unknown;
    if (str(values.result) !== undefined) {
      try {
        result = JSON.parse(str(values.result)!);
      } catch {
        ctx.err(`patchbay saga skip: --result must be JSON, e.g. --result '{"refund":"re_123"}'`);
        return 2;
      }
    }
    const note = str(values.note);
    const handle = await sagasFor(ctx);
    const { runner } = handle;
    const done = (instance: SagaInstance, what: string) =>
      ctx.out(
        ctx.flags.json ? JSON.stringify(instance) : `saga ${instance.id}: ${what}; now ${instance.status}`,
      );
    const filter = {
      ...(statuses ? { status: statuses as SagaStatus[] } : {}),
      ...(str(values.name) ? { name: str(values.name)! } : {}),
      ...(since === undefined ? {} : { since }),
    };
    try {
      if (bulk) {
        const filterText = [
          `status ${statuses!.join(",")}`,
          ...(filter.name ? [`name ${filter.name}`] : []),
          ...(since === undefined ? [] : [`updated since ${timestamp(since)} UTC`]),
        ].join(", ");
        const report = await runner.bulk(
          action as SagaBulkAction,
          { ...filter, status: statuses as SagaStatus[] },
          {
            dryRun: values["dry-run"] === true,
            batchSize,
            ...(action === "skip" && result !== undefined ? { result } : {}),
            ...(action !== "retry" && note ? { note } : {}),
            onProgress: (p) => {
              if (p.matched > batchSize) {
                ctx.err(`saga ${action}: ${p.done}/${p.matched} (acted ${p.acted}, skipped ${p.skipped})`);
              }
            },
          },
        );
        ctx.out(ctx.flags.json ? JSON.stringify(report) : bulkReport(report, `(${filterText})`));
        return 0;
      }
      switch (action) {
        case "list": {
          const list = await runner.list({ ...filter, limit });
          if (ctx.flags.json) ctx.out(JSON.stringify(list));
          else if (list.length === 0) ctx.out("no saga instances");
          else {
            ctx.out(listing(list));
            const total = await runner.count(filter);
            if (total > list.length) ctx.out(`… ${total - list.length} more (--limit)`);
          }
          return 0;
        }
        case "show": {
          const found = await runner.get(id!);
          if (!found) {
            ctx.err(`no saga instance ${id}`);
            return 1;
          }
          ctx.out(ctx.flags.json ? JSON.stringify(found) : details(found));
          return 0;
        }
        case "retry":
          done(await runner.retry(id!), "retrying");
          return 0;
        case "skip":
          done(
            await runner.skip(id!, {
              ...(result === undefined ? {} : { result }),
              ...(note ? { note } : {}),
            }),
            "step skipped",
          );
          return 0;
        case "resolve":
          done(await runner.resolve(id!, note ? { note } : {}), "marked resolved");
          return 0;
        default:
          ctx.err(`patchbay saga: unknown action ${JSON.stringify(action)}\n\n${USAGE}`);
          return 2;
      }
    } finally {
      await handle.close();
    }
  },
};
