import type { EventBus } from "../../bus/bus.js";
import { createDeadLetters, type DeadLetterFilter, type DeadLetters } from "../../bus/dead-letters.js";
import { localTransport } from "../../bus/local-transport.js";
import type { SqlStore } from "../../store/sql-store.js";
import { parseCommandArgs, type CliCommand, type CommandContext } from "../command.js";
import { loadConfig } from "../config.js";
import { table, timestamp } from "../table.js";

const USAGE = `Usage: patchbay dlq <list|show|replay|purge> [options]

  list   [--group g] [--type t] [--limit n]       dead letters, oldest first
  show   <group> <message-id>                     one dead letter: error, attempts, the message
  replay [--group g] [--type t] [--id m] | --all  send them back to their group's queue
  purge  [--group g] [--type t] [--id m] [--before ISO-time] | --all   delete them

Dead letters live in the store. Replay uses the app's bus from --config (patchbay.config.js)
when there is one, else the store's local transport.`;

const text = (v: unknown) => (typeof v === "string" ? v : v === undefined ? "" : JSON.stringify(v));

async function deadLettersFor(
  ctx: CommandContext,
): Promise<{ letters: DeadLetters; close(): Promise<void> }> {
  const config = await loadConfig(ctx.flags.config);
  const bus = config?.bus as EventBus | undefined;
  const store: SqlStore = (config?.store as SqlStore | undefined) ?? (await ctx.store());
  return {
    letters: bus?.deadLetters ?? createDeadLetters(store, localTransport(store)),
    async close() {
      await bus?.stop();
      await store.close();
    },
  };
}

export const dlqCommand: CliCommand = {
  name: "dlq",
  summary: "dead letters of the event bus: list, show, replay, purge",
  async run(ctx) {
    const { values, positionals } = parseCommandArgs(ctx.argv, {
      group: { type: "string" },
      type: { type: "string" },
      id: { type: "string" },
      before: { type: "string" },
      limit: { type: "string" },
      all: { type: "boolean", default: false },
    });
    const [action, ...rest] = positionals;
    if (values.help === true || !action) {
      ctx.out(USAGE);
      return values.help === true ? 0 : 2;
    }
    const str = (v: unknown) => (typeof v === "string" ? v : undefined);
    const filter: DeadLetterFilter = {};
    if (str(values.group)) filter.group = str(values.group);
    if (str(values.type)) filter.type = str(values.type);
    if (str(values.id)) filter.messageId = str(values.id);
    if (str(values.before)) {
      const before = Date.parse(str(values.before)!);
      if (Number.isNaN(before)) {
        ctx.err(`patchbay dlq: --before ${str(values.before)} is not a date`);
        return 2;
      }
      filter.before = before;
    }
    if (
      (action === "replay" || action === "purge") &&
      Object.keys(filter).length === 0 &&
      values.all !== true
    ) {
      ctx.err(`patchbay dlq ${action}: say which (--group, --type, --id, --before) or --all`);
      return 2;
    }
    const handle = await deadLettersFor(ctx);
    const letters = handle.letters;
    try {
      switch (action) {
        case "list": {
          const limit = Number(str(values.limit) ?? 50);
          const list = await letters.list({ ...filter, limit });
          if (ctx.flags.json) ctx.out(JSON.stringify(list.map(({ event: _event, ...l }) => l)));
          else if (list.length === 0) ctx.out("no dead letters");
          else {
            ctx.out(
              table(
                ["GROUP", "MESSAGE ID", "TYPE", "ATTEMPTS", "LAST FAILED (UTC)", "ERROR"],
                list.map((l) => [
                  l.group,
                  l.messageId,
                  l.type,
                  String(l.attempts),
                  timestamp(l.lastFailedAt),
                  `${text(l.error.code ?? l.error.name)}: ${text(l.error.message)}`,
                ]),
              ),
            );
            const total = await letters.count(filter);
            if (total > list.length) ctx.out(`… ${total - list.length} more (--limit)`);
          }
          return 0;
        }
        case "show": {
          const [group, id] = rest;
          if (!group || !id) {
            ctx.err("patchbay dlq show <group> <message-id>");
            return 2;
          }
          const letter = await letters.get(group, id);
          if (!letter) {
            ctx.err(`no dead letter ${id} in group ${group}`);
            return 1;
          }
          ctx.out(
            JSON.stringify(
              ctx.flags.json ? letter : { ...letter, body: undefined },
              null,
              ctx.flags.json ? 0 : 2,
            ),
          );
          return 0;
        }
        case "replay": {
          const n = await letters.replay(filter);
          ctx.out(
            ctx.flags.json
              ? JSON.stringify({ replayed: n })
              : `replayed ${n} dead letter${n === 1 ? "" : "s"}`,
          );
          return 0;
        }
        case "purge": {
          const n = await letters.purge(filter);
          ctx.out(
            ctx.flags.json ? JSON.stringify({ purged: n }) : `purged ${n} dead letter${n === 1 ? "" : "s"}`,
          );
          return 0;
        }
        default:
          ctx.err(`patchbay dlq: unknown action ${JSON.stringify(action)}\n\n${USAGE}`);
          return 2;
      }
    } finally {
      await handle.close();
    }
  },
};
