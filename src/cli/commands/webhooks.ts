import type { SqlStore } from "../../store/sql-store.js";
import { createWebhooks, type Webhooks } from "../../webhooks/webhooks.js";
import { positiveInt, positiveNumber, timeFlag, type CliCommand, type CommandContext } from "../command.js";
import { loadConfig } from "../config.js";
import { table, timestamp } from "../table.js";

const USAGE = `Usage: patchbay webhooks <endpoints|deliveries|replay|recover> [options]

  endpoints [list] [--status enabled|disabled]           the endpoints and their health
  endpoints create --url <url> [--events a.*,b.c] [--description text] [--concurrency n] [--rate-limit n]
                                                          prints the new endpoint's secret
  endpoints enable|disable|delete <endpoint-id>
  endpoints rotate <endpoint-id> [--grace 24h]            new secret; the old one is still signed with until then
  deliveries [--endpoint id] [--status pending|sending|delivered|failed] [--message id] [--limit n]
  deliveries show <endpoint-id> <message-id>              one delivery and its attempt log
  replay <message-id> [--endpoint id]                     send one message again (same webhook-id)
  recover <endpoint-id> --since <ISO time | 2d>           send the endpoint's failed messages since then again

Works on the store from the flags, or the app's webhooks from --config (patchbay.config.js, export
"webhooks"), whose SSRF settings then apply. Replayed messages are sent by the running app.`;

const str = (v: unknown) => (typeof v === "string" ? v : undefined);
const opt = (v: number | undefined) => (v === undefined ? "" : timestamp(v));

async function webhooksFor(ctx: CommandContext): Promise<{ webhooks: Webhooks; close(): Promise<void> }> {
  const config = await loadConfig(ctx.flags.config);
  const configured = config?.webhooks as Webhooks | undefined;
  // A store named on the line wins over the config's (and the config's webhooks, built on it).
  if (configured && !ctx.flags.explicitStore) {
    const store = config?.store as SqlStore | undefined;
    return { webhooks: configured, close: async () => void (await store?.close()) };
  }
  const configStore = ctx.flags.explicitStore ? undefined : (config?.store as SqlStore | undefined);
  const store: SqlStore = configStore ?? (await ctx.store());
  return { webhooks: createWebhooks({ store }), close: () => store.close() };
}

async function endpoints(
  ctx: CommandContext,
  webhooks: Webhooks,
  args: string[],
  values: Record<string, unknown>,
) {
  const [action = "list", id] = args;
  const out = (value: unknown, text: string) => ctx.out(ctx.flags.json ? JSON.stringify(value) : text);
  switch (action) {
    case "list": {
      const status = str(values.status) as "enabled" | "disabled" | undefined;
      const list = await webhooks.endpoints.list(status ? { status } : {});
      if (ctx.flags.json) ctx.out(JSON.stringify(list));
      else if (list.length === 0) ctx.out("no webhook endpoints");
      else {
        ctx.out(
          table(
            ["ID", "URL", "EVENTS", "STATUS", "FAILING SINCE (UTC)", "LAST SUCCESS (UTC)"],
            list.map((e) => [
              e.id,
              e.url,
              e.events.join(","),
              e.status === "disabled" ? `disabled (${e.disabledReason ?? "?"})` : "enabled",
              opt(e.failingSince),
              opt(e.lastSuccessAt),
            ]),
          ),
        );
      }
      return 0;
    }
    case "create": {
      const url = str(values.url);
      if (!url) {
        ctx.err("patchbay webhooks endpoints create --url <url> [--events a.*,b.c]");
        return 2;
      }
      const events = str(values.events)
        ?.split(",")
        .map((e) => e.trim())
        .filter(Boolean);
      const concurrency = str(values.concurrency);
      const rateLimit = str(values["rate-limit"]);
      const created = await webhooks.endpoints.create({
        url,
        ...(events ? { events } : {}),
        ...(str(values.description) ? { description: str(values.description)! } : {}),
        ...(concurrency ? { concurrency: Number(concurrency) } : {}),
        ...(rateLimit ? { rateLimit: Number(rateLimit) } : {}),
      });
      out(created, `created endpoint ${created.id}\nsecret: ${created.secret}`);
      return 0;
    }
    case "enable":
    case "disable":
    case "delete":
    case "rotate": {
      if (!id) {
        ctx.err(`patchbay webhooks endpoints ${action} <endpoint-id>`);
        return 2;
      }
      if (action === "delete") {
        const deleted = await webhooks.endpoints.delete(id);
        out({ deleted }, deleted ? `deleted endpoint ${id}` : `no endpoint ${id}`);
        return deleted ? 0 : 1;
      }
      if (action === "rotate") {
        const grace = str(values.grace);
        const secrets = await webhooks.endpoints.rotateSecret(id, grace ? { grace } : {});
        out(
          secrets,
          `new secret: ${secrets.current}\nthe old secret is signed with too until ${opt(secrets.previousUntil)} UTC`,
        );
        return 0;
      }
      const endpoint = await (action === "enable"
        ? webhooks.endpoints.enable(id)
        : webhooks.endpoints.disable(id));
      out(endpoint, `${action}d endpoint ${id}`);
      return 0;
    }
    default:
      ctx.err(`patchbay webhooks endpoints: unknown action ${JSON.stringify(action)}\n\n${USAGE}`);
      return 2;
  }
}

async function deliveries(
  ctx: CommandContext,
  webhooks: Webhooks,
  args: string[],
  values: Record<string, unknown>,
) {
  if (args[0] === "show") {
    const [, endpointId, messageId] = args;
    if (!endpointId || !messageId) {
      ctx.err("patchbay webhooks deliveries show <endpoint-id> <message-id>");
      return 2;
    }
    const delivery = await webhooks.deliveries.get(endpointId, messageId);
    if (!delivery) {
      ctx.err(`no delivery of ${messageId} to ${endpointId}`);
      return 1;
    }
    const attempts = await webhooks.deliveries.attempts(endpointId, messageId);
    if (ctx.flags.json) ctx.out(JSON.stringify({ ...delivery, attempts }));
    else {
      ctx.out(JSON.stringify(delivery, null, 2));
      ctx.out(
        table(
          ["#", "AT (UTC)", "STATUS", "MS", "OUTCOME", "ERROR", "RESPONSE"],
          attempts.map((a) => [
            String(a.attempt),
            timestamp(a.at),
            a.status === undefined ? "" : String(a.status),
            a.latencyMs === undefined ? "" : String(a.latencyMs),
            a.outcome,
            a.error ? `${String(a.error.code ?? a.error.name)}: ${String(a.error.message)}` : "",
            (a.responseExcerpt ?? "").replace(/\s+/g, " "),
          ]),
        ),
      );
    }
    return 0;
  }
  const limit = Number(str(values.limit) ?? 50);
  const list = await webhooks.deliveries.list({
    limit,
    ...(str(values.endpoint) ? { endpointId: str(values.endpoint)! } : {}),
    ...(str(values.message) ? { messageId: str(values.message)! } : {}),
    ...(str(values.status) ? { status: str(values.status) as "failed" } : {}),
  });
  if (ctx.flags.json) ctx.out(JSON.stringify(list));
  else if (list.length === 0) ctx.out("no deliveries");
  else {
    ctx.out(
      table(
        ["ENDPOINT", "MESSAGE ID", "TYPE", "STATUS", "ATTEMPTS", "NEXT (UTC)", "LAST ERROR"],
        list.map((d) => [
          d.endpointId,
          d.messageId,
          d.eventType,
          d.status,
          String(d.attempts),
          opt(d.nextAttemptAt),
          d.lastError
            ? `${String(d.lastError.code ?? d.lastError.name)}: ${String(d.lastError.message)}`
            : "",
        ]),
      ),
    );
  }
  return 0;
}

/** `patchbay webhooks`: endpoints, deliveries and their attempts, replay and recover. */
export const webhooksCommand: CliCommand = {
  name: "webhooks",
  summary: "outbound webhooks: endpoints, deliveries, replay, recover",
  usage: USAGE,
  maxArgs: 4,
  options: {
    status: { type: "string" },
    endpoint: { type: "string" },
    message: { type: "string" },
    limit: { type: "string" },
    since: { type: "string" },
    url: { type: "string" },
    events: { type: "string" },
    description: { type: "string" },
    concurrency: { type: "string" },
    "rate-limit": { type: "string" },
    grace: { type: "string" },
  },
  async run(ctx) {
    const { values } = ctx;
    const [action, ...rest] = ctx.args;
    if (!action) {
      ctx.err(USAGE);
      return 2;
    }
    for (const flag of ["limit", "concurrency"]) positiveInt(values, flag, 1);
    positiveNumber(values, "rate-limit", 1);
    if (!["endpoints", "deliveries", "replay", "recover"].includes(action)) {
      ctx.err(`patchbay webhooks: unknown action ${JSON.stringify(action)}\n\n${USAGE}`);
      return 2;
    }
    let since: number | undefined;
    if (action === "replay" && !rest[0]) {
      ctx.err("patchbay webhooks replay <message-id> [--endpoint id]");
      return 2;
    }
    if (action === "recover") {
      since = timeFlag(values, "since", Date.now());
      if (!rest[0] || since === undefined) {
        ctx.err("patchbay webhooks recover <endpoint-id> --since <ISO time | duration such as 2d>");
        return 2;
      }
    }
    const handle = await webhooksFor(ctx);
    try {
      const { webhooks } = handle;
      switch (action) {
        case "endpoints":
          return await endpoints(ctx, webhooks, rest, values);
        case "deliveries":
          return await deliveries(ctx, webhooks, rest, values);
        case "replay": {
          const endpointId = str(values.endpoint);
          const n = await webhooks.replay(rest[0]!, endpointId ? { endpointId } : {});
          ctx.out(
            ctx.flags.json
              ? JSON.stringify({ scheduled: n })
              : `scheduled ${n} deliver${n === 1 ? "y" : "ies"}`,
          );
          return 0;
        }
        default: {
          const n = await webhooks.recover(rest[0]!, since!);
          ctx.out(
            ctx.flags.json
              ? JSON.stringify({ scheduled: n })
              : `scheduled ${n} failed deliver${n === 1 ? "y" : "ies"} again`,
          );
          return 0;
        }
      }
    } finally {
      await handle.close();
    }
  },
};
