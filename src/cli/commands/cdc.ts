import { hostname } from "node:os";
import type { ChangeCapture } from "../../cdc/change-capture.js";
import type { ChangeEvents } from "../../cdc/change-events.js";
import type { CliCommand, CommandContext } from "../command.js";
import { loadConfig } from "../config.js";
import { table, timestamp } from "../table.js";

const USAGE = `Usage: patchbay cdc <start|status|stop|drop-slot> [name] [options]

  start     <name>  run the change capture here until Ctrl-C / SIGTERM (stops after the batch in flight)
  status    [name]  stored position, slot lag and retained WAL, lock and recent runs
  stop      <name>  ask the process running it on this host to stop (SIGTERM to the lock holder)
  drop-slot <name>  drop its replication slot (the server stops retaining WAL; the next start copies afresh after a reset)

Captures come from --config (default patchbay.config.js/.ts in the working directory), a module
exporting \`captures\`: an array (or a record) of changeCapture(...) objects, into a destination,
and changeEvents(...) objects, onto the bus. A changeEvents publisher holds no lock: \`stop\` is
for captures (send SIGTERM to the process publishing).`;

function isCapture(value: unknown): value is ChangeCapture {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as ChangeCapture).start === "function" &&
    typeof (value as ChangeCapture).dropSlot === "function"
  );
}

function isEvents(value: unknown): value is ChangeEvents {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as ChangeEvents).position === "function" &&
    typeof (value as ChangeEvents).dropSlot === "function" &&
    typeof (value as ChangeEvents).run === "function"
  );
}

type Runnable = ChangeCapture | ChangeEvents;
const isCaptureOf = (r: Runnable): r is ChangeCapture => "pipeline" in r;

async function capturesOf(ctx: CommandContext): Promise<Map<string, Runnable>> {
  const exported = (await loadConfig(ctx.flags.config))?.captures;
  const found = new Map<string, Runnable>();
  const list = Array.isArray(exported)
    ? exported
    : typeof exported === "object" && exported !== null
      ? Object.values(exported)
      : [];
  for (const c of list) if (isCapture(c) || isEvents(c)) found.set(c.name, c);
  return found;
}

const bytes = (n: number | undefined) =>
  n === undefined
    ? ""
    : n < 1024 * 1024
      ? `${Math.round(n / 1024)} kB`
      : `${(n / 1024 / 1024).toFixed(1)} MB`;

async function start(ctx: CommandContext, capture: Runnable): Promise<number> {
  const controller = new AbortController();
  const stop = () => controller.abort();
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  ctx.err(`patchbay cdc: ${capture.name} running (Ctrl-C stops after the batch in flight)`);
  try {
    if (!isCaptureOf(capture)) {
      await capture.run({ signal: controller.signal });
      ctx.out(
        ctx.flags.json
          ? JSON.stringify({ events: capture.name, status: "stopped" })
          : `${capture.name}: stopped`,
      );
      return 0;
    }
    const report = await capture.run({ signal: controller.signal });
    ctx.out(
      ctx.flags.json
        ? JSON.stringify(report)
        : `${capture.name}: ${report.status}, ${report.rowsRead} changes`,
    );
    return 0;
  } finally {
    process.off("SIGINT", stop);
    process.off("SIGTERM", stop);
  }
}

/** `patchbay cdc`: change data capture from PostgreSQL logical replication. */
export const cdcCommand: CliCommand = {
  name: "cdc",
  summary: "change data capture: start, status (slot lag), stop, drop-slot",
  usage: USAGE,
  options: {},
  maxArgs: 2,
  async run(ctx) {
    const [action, name] = ctx.args;
    if (!action || !["start", "status", "stop", "drop-slot"].includes(action)) {
      ctx.err(action ? `patchbay cdc: unknown action ${JSON.stringify(action)}\n\n${USAGE}` : USAGE);
      return 2;
    }
    const captures = await capturesOf(ctx);
    const all = [...captures.values()];
    try {
      if (all.length === 0) {
        ctx.err("patchbay cdc: no captures found: give --config <file> exporting `captures`");
        return 2;
      }
      const chosen = name === undefined ? undefined : captures.get(name);
      if (name !== undefined && !chosen) {
        ctx.err(
          `patchbay cdc: no capture ${JSON.stringify(name)}; known: ${all.map((c) => c.name).join(", ")}`,
        );
        return 2;
      }
      if (action !== "status" && !chosen) {
        ctx.err(`patchbay cdc ${action}: give a capture name (${all.map((c) => c.name).join(", ")})`);
        return 2;
      }
      if (action === "start") return await start(ctx, chosen as Runnable);
      if (action === "drop-slot") {
        const dropped = await (chosen as Runnable).dropSlot();
        ctx.out(
          ctx.flags.json
            ? JSON.stringify({ capture: name, dropped })
            : `${name}: ${dropped ? "slot dropped" : "no slot"}`,
        );
        return 0;
      }
      if (action === "stop") {
        if (!isCaptureOf(chosen as Runnable)) {
          ctx.err(
            `patchbay cdc stop: ${name} publishes events without a lock; send SIGTERM to the process publishing them`,
          );
          return 1;
        }
        const { lock, running } = await (chosen as ChangeCapture).status();
        if (!running || !lock) {
          ctx.out(`${name}: not running`);
          return 0;
        }
        if (lock.host !== hostname()) {
          ctx.err(`patchbay cdc stop: ${name} runs on ${lock.host} (pid ${lock.pid}); stop it there`);
          return 1;
        }
        process.kill(lock.pid, "SIGTERM");
        ctx.out(`${name}: asked pid ${lock.pid} to stop`);
        return 0;
      }
      const statuses = await Promise.all((chosen ? [chosen] : all).map((c) => c.status()));
      if (ctx.flags.json) {
        ctx.out(JSON.stringify(chosen ? statuses[0] : statuses));
        return 0;
      }
      const lsnOf = (position: unknown) => (position as { lsn?: string } | undefined)?.lsn ?? "none";
      ctx.out(
        table(
          [
            "CAPTURE",
            "STATE",
            "SLOT",
            "CONFIRMED LSN",
            "LAG",
            "RETAINED WAL",
            "LAST RUN (UTC)",
            "LAST STATUS",
          ],
          statuses.map((s) => [
            s.name,
            "runs" in s ? (s.running ? "running" : "idle") : `events, stored ${lsnOf(s.position)}`,
            s.slot ? `${s.slot.slot}${s.slot.active ? " (active)" : ""}` : "none",
            s.slot?.confirmedLsn ?? "",
            bytes(s.slot?.lagBytes),
            bytes(s.slot?.retainedBytes),
            "runs" in s ? (s.runs[0] ? timestamp(s.runs[0].startedAt) : "never") : "",
            "runs" in s ? (s.runs[0]?.status ?? "") : "",
          ]),
        ),
      );
      return 0;
    } finally {
      await Promise.allSettled(all.map((c) => c.close()));
      await Promise.allSettled(
        [...new Set(all.filter(isCaptureOf).map((c) => c.pipeline.store))].map((s) => s.close()),
      );
    }
  },
};
