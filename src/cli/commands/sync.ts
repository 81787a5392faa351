import type { Pipeline, PipelineStatus } from "../../sync/pipeline.js";
import type { SyncProgress, SyncRunReport } from "../../sync/run.js";
import type { CliCommand, CommandContext } from "../command.js";
import { loadConfig } from "../config.js";
import { table, timestamp } from "../table.js";

const USAGE = `Usage: patchbay sync <run|status|reset> [name] [options]

  run    <name>     run the pipeline once now, with live progress (Ctrl-C stops after the batch in flight)
  status [name]     checkpoint, lock and recent runs of one pipeline, or a summary of all
  reset  <name>     forget the checkpoint: the next run reads from the start (refused while it runs)

Pipelines come from --config (default patchbay.config.js/.ts in the working directory), a module
exporting \`pipelines\`: an array of pipeline(...) objects or a record of them.`;

function isPipeline(value: unknown): value is Pipeline {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as Pipeline).run === "function" &&
    typeof (value as Pipeline).name === "string"
  );
}

async function pipelinesOf(ctx: CommandContext): Promise<Map<string, Pipeline>> {
  const config = await loadConfig(ctx.flags.config);
  const exported = config?.pipelines;
  const found = new Map<string, Pipeline>();
  const entries = Array.isArray(exported)
    ? exported.map((p) => [undefined, p] as const)
    : typeof exported === "object" && exported !== null
      ? Object.entries(exported)
      : [];
  for (const [alias, p] of entries) {
    if (!isPipeline(p)) continue;
    found.set(p.name, p);
    if (alias !== undefined && alias !== p.name) found.set(alias, p);
  }
  return found;
}

const int = (n: number) => Math.round(n).toLocaleString("en-US");

function duration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h > 0
    ? `${h}:${String(m).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}`
    : `${m}:${String(s % 60).padStart(2, "0")}`;
}

/** `orders  12,345 / 50,000 rows  [#####.....]  24%  4,321 rows/s  ETA 0:08`. */
export function progressLine(name: string, p: SyncProgress): string {
  const parts = [name];
  if (p.total !== undefined && p.total > 0) {
    const done = Math.min(1, p.rowsRead / p.total);
    const width = 20;
    const bar = "#".repeat(Math.round(done * width)).padEnd(width, ".");
    parts.push(
      `${int(p.rowsRead)} / ${int(p.total)} rows`,
      `[${bar}] ${String(Math.floor(done * 100)).padStart(3)}%`,
    );
  } else {
    parts.push(`${int(p.rowsRead)} rows`);
  }
  parts.push(`${int(p.rowsPerSecond)} rows/s`);
  if (p.total !== undefined && p.rowsPerSecond > 0 && p.rowsRead < p.total) {
    parts.push(`ETA ${duration(((p.total - p.rowsRead) / p.rowsPerSecond) * 1000)}`);
  }
  if (p.rowsQuarantined > 0) parts.push(`${int(p.rowsQuarantined)} quarantined`);
  return parts.join("  ");
}

function summary(r: SyncRunReport): string {
  return (
    `${r.pipeline}: ${r.status} in ${duration(r.durationMs ?? 0)}  read ${int(r.rowsRead)}, written ${int(r.rowsWritten)}, ` +
    `deleted ${int(r.rowsDeleted)}, quarantined ${int(r.rowsQuarantined)} (${r.batches} batches, run ${r.id})`
  );
}

async function run(ctx: CommandContext, pipeline: Pipeline): Promise<number> {
  const live = process.stdout.isTTY === true && !ctx.flags.json;
  const stop = new AbortController();
  let interrupted = 0;
  const onSigint = () => {
    interrupted++;
    if (interrupted > 1) process.exit(130);
    ctx.err(`\npatchbay: stopping ${pipeline.name} after the batch in flight (Ctrl-C again to quit now)`);
    stop.abort();
  };
  process.on("SIGINT", onSigint);
  let lastPlain = 0;
  try {
    const report = await pipeline.run({
      signal: stop.signal,
      onProgress: (p) => {
        if (ctx.flags.json) return;
        if (live) {
          process.stdout.write(`\r\x1b[2K${progressLine(pipeline.name, p)}`);
        } else if (p.elapsedMs - lastPlain >= 1000) {
          lastPlain = p.elapsedMs;
          ctx.out(progressLine(pipeline.name, p));
        }
      },
    });
    if (live) process.stdout.write("\r\x1b[2K");
    ctx.out(ctx.flags.json ? JSON.stringify(report) : summary(report));
    return report.status === "succeeded" ? 0 : 130;
  } catch (e) {
    if (live) process.stdout.write("\n");
    throw e;
  } finally {
    process.off("SIGINT", onSigint);
  }
}

function statusText(s: PipelineStatus): string {
  const lines = [
    `pipeline ${s.name}  (${s.mode})  ${s.running ? `RUNNING on ${s.lock?.host}:${s.lock?.pid}` : "idle"}`,
    `  source       ${s.source}`,
    `  destination  ${s.destination}`,
    `  schedule     ${s.schedule ?? "(none)"}${s.nextRunAt ? `, next ${timestamp(s.nextRunAt.getTime())}` : ""}`,
    `  checkpoint   ${s.checkpoint === undefined ? "(none: the next run reads from the start)" : JSON.stringify(s.checkpoint)}`,
    "",
  ];
  lines.push(
    s.runs.length === 0
      ? "no runs yet"
      : table(
          ["STARTED (UTC)", "STATUS", "READ", "WRITTEN", "DELETED", "QUARANTINED", "DURATION", "ERROR"],
          s.runs.map((r) => [
            timestamp(r.startedAt),
            r.status,
            int(r.rowsRead),
            int(r.rowsWritten),
            int(r.rowsDeleted),
            int(r.rowsQuarantined),
            r.durationMs === undefined ? "" : duration(r.durationMs),
            r.error ? `${r.error.code ?? ""} ${r.error.message}`.trim() : "",
          ]),
          80,
        ),
  );
  return lines.join("\n");
}

/** `patchbay sync run|status|reset`. */
export const syncCommand: CliCommand = {
  name: "sync",
  summary: "data sync pipelines: run one now, show status, reset a checkpoint",
  usage: USAGE,
  options: {},
  maxArgs: 2,
  async run(ctx) {
    const [action, name] = ctx.args;
    if (!action) {
      ctx.err(USAGE);
      return 2;
    }
    if (!["run", "status", "reset"].includes(action)) {
      ctx.err(`patchbay sync: unknown action ${JSON.stringify(action)}\n\n${USAGE}`);
      return 2;
    }
    const pipelines = await pipelinesOf(ctx);
    const all = [...new Set(pipelines.values())];
    try {
      if (all.length === 0) {
        ctx.err(
          "patchbay sync: no pipelines found: give --config <file> exporting `pipelines` (or add patchbay.config.js)",
        );
        return 2;
      }
      const chosen = name === undefined ? undefined : pipelines.get(name);
      if (name !== undefined && !chosen) {
        ctx.err(
          `patchbay sync: no pipeline ${JSON.stringify(name)}; known: ${all.map((p) => p.name).join(", ")}`,
        );
        return 2;
      }
      if (action !== "status" && !chosen) {
        ctx.err(`patchbay sync ${action}: give a pipeline name (${all.map((p) => p.name).join(", ")})`);
        return 2;
      }
      if (action === "run") return await run(ctx, chosen as Pipeline);
      if (action === "reset") {
        await (chosen as Pipeline).reset();
        ctx.out(
          ctx.flags.json
            ? JSON.stringify({ pipeline: name, reset: true })
            : `${name}: checkpoint reset; the next run reads from the start`,
        );
        return 0;
      }
      if (chosen) {
        const status = await chosen.status();
        ctx.out(ctx.flags.json ? JSON.stringify(status) : statusText(status));
        return 0;
      }
      const statuses = await Promise.all(all.map((p) => p.status({ runs: 1 })));
      if (ctx.flags.json) {
        ctx.out(JSON.stringify(statuses));
        return 0;
      }
      ctx.out(
        table(
          ["PIPELINE", "MODE", "STATE", "LAST RUN (UTC)", "LAST STATUS", "READ", "WRITTEN", "QUARANTINED"],
          statuses.map((s) => {
            const r = s.runs[0];
            return [
              s.name,
              s.mode,
              s.running ? "running" : "idle",
              r ? timestamp(r.startedAt) : "never",
              r?.status ?? "",
              r ? int(r.rowsRead) : "",
              r ? int(r.rowsWritten) : "",
              r ? int(r.rowsQuarantined) : "",
            ];
          }),
        ),
      );
      return 0;
    } finally {
      await Promise.allSettled(all.map((p) => p.close()));
      await Promise.allSettled([...new Set(all.map((p) => p.store))].map((s) => s.close()));
    }
  },
};
