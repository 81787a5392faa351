import type { EventBus } from "../../bus/bus.js";
import { createDeadLetters, type DeadLetterFilter, type DeadLetters } from "../../bus/dead-letters.js";
import { localTransport } from "../../bus/local-transport.js";
import type { Transport } from "../../bus/transport.js";
import { isPatchbayError } from "../../core/errors.js";
import type { SqlStore } from "../../store/sql-store.js";
import { positiveInt, str, timeFlag, type CliCommand, type CommandContext } from "../command.js";
import { loadConfig } from "../config.js";
import { table, timestamp } from "../table.js";

const USAGE = `Usage: patchbay dlq <list|show|replay|purge> [options]

  list   [--group g] [--type t] [--limit n]       dead letters, oldest first
  show   <group> <message-id>                     one dead letter: error, attempts, the message
  replay [--group g] [--type t] [--id m] | --all  send them back to their group's queue
  purge  [--group g] [--type t] [--id m] [--before t] | --all   delete them

--before t: dead-lettered at or before t, an ISO date with an offset (2026-01-31T12:00:00Z) or a
duration back from now (30m, 1h, 2d).

Dead letters live in the store. Replay sends exactly the letters matching when it starts, each
once, through the transport they came from: the app's bus from --config (patchbay.config.js)
when it exports \`bus\`; without it, only letters of the store's own local transport are replayed
(letters from RabbitMQ are refused, exit 1: give --config with your bus).`;

const text = (v: unknown) => (typeof v === "string" ? v : v === undefined ? "" : JSON.stringify(v));

/**
 * The dead letters and the transport a replay goes through: the config's bus's (a broker keeps
 * it whatever the store), else the store's local transport — which a replay only uses for letters
 * that came from it.
 */
async function deadLettersFor(ctx: CommandContext): Promise<{
  letters: DeadLetters;
  transport: Transport;
  fromConfig: boolean;
  close(): Promise<void>;
}> {
  const config = await loadConfig(ctx.flags.config);
  const bus = config?.bus as EventBus | undefined;
  const configStore = ctx.flags.explicitStore ? undefined : (config?.store as SqlStore | undefined);
  const store: SqlStore = configStore ?? (await ctx.store());
  const viaBus = bus !== undefined && (!ctx.flags.explicitStore || !bus.transport.capabilities.sharesStore);
  const transport = viaBus ? bus.transport : localTransport(store);
  return {
    letters: createDeadLetters(store, transport),
    transport,
    fromConfig: viaBus,
    async close() {
      if (viaBus) await bus.stop();
      await store.close();
    },
  };
}

export const dlqCommand: CliCommand = {
  name: "dlq",
  summary: "dead letters of the event bus: list, show, replay, purge",
  usage: USAGE,
  options: {
    group: { type: "string" },
    type: { type: "string" },
    id: { type: "string" },
    before: { type: "string" },
    limit: { type: "string" },
    all: { type: "boolean", default: false },
  },
  maxArgs: 3,
  async run(ctx) {
    const { values } = ctx;
    const [action, ...rest] = ctx.args;
    if (!action || !["list", "show", "replay", "purge"].includes(action)) {
      ctx.err(action ? `patchbay dlq: unknown action ${JSON.stringify(action)}\n\n${USAGE}` : USAGE);
      return 2;
    }
    const limit = positiveInt(values, "limit", 50);
    const filter: DeadLetterFilter = {};
    if (str(values.group)) filter.group = str(values.group);
    if (str(values.type)) filter.type = str(values.type);
    if (str(values.id)) filter.messageId = str(values.id);
    const before = timeFlag(values, "before", Date.now());
    if (before !== undefined) filter.before = before;
    if ((action === "replay" || action === "purge") && values.limit !== undefined) {
      // A limit here would be read as "only that many": the action takes every letter matched.
      ctx.err(
        `patchbay dlq ${action}: --limit is for list; ${action} acts on every letter matched (narrow it with --group, --type, --id, --before)`,
      );
      return 2;
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
    const { letters, transport } = handle;
    try {
      switch (action) {
        case "list": {
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
          if (!transport.capabilities.sharesStore) await transport.open();
          let n: number;
          try {
            n = await letters.replay(filter, {
              onlyFrom: transport.name,
              acceptUnrecorded: handle.fromConfig,
            });
          } catch (e) {
            if (isPatchbayError(e, "DEAD_LETTER_REPLAY_INTERRUPTED")) {
              // Say how far it got: those letters are back in their queues, the rest still here.
              if (ctx.flags.json) {
                ctx.out(JSON.stringify({ replayed: e.replayed, matched: e.matched, error: e.toJSON() }));
              }
              ctx.err(
                `patchbay dlq replay: replayed ${e.replayed} of ${e.matched} dead letters, then stopped: ${(e.cause as Error | undefined)?.message ?? e.message} [${isPatchbayError(e.cause) ? e.cause.code : e.code}]\n` +
                  "The rest are still dead letters: run the same replay again once the cause is fixed.",
              );
              return 1;
            }
            if (!isPatchbayError(e, "DEAD_LETTER_TRANSPORT_MISMATCH")) throw e;
            ctx.err(
              `patchbay dlq replay: ${e.message}.\n` +
                (handle.fromConfig
                  ? "Replay them with the bus whose consumers read those groups (its config)."
                  : "Replaying them into the store's local queue would reach no consumer: give --config <file> exporting your app's `bus` (patchbay.config.js), so the replay goes through its transport."),
            );
            return 1;
          }
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
          return 2;
      }
    } finally {
      await handle.close();
    }
  },
};
