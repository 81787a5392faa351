import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import type { EventBus } from "../../bus/bus.js";
import { InvalidArgumentError } from "../../core/errors.js";
import { createConsole } from "../../ops/console.js";
import { isSagaDefinition } from "../../saga/definition.js";
import { createSagaRunner, type SagaRunner } from "../../saga/runner.js";
import type { SqlStore } from "../../store/sql-store.js";
import type { Pipeline } from "../../sync/pipeline.js";
import type { Webhooks } from "../../webhooks/webhooks.js";
import { positiveInt, str, type CliCommand } from "../command.js";
import { loadConfig } from "../config.js";

const USAGE = `Usage: patchbay console [--port 9400] [--host 127.0.0.1] [--read-only] [--token <token>]

Serves the web console (dead letters, sagas, pipelines, webhooks, audit) until Ctrl-C, and prints
its URL. It listens on 127.0.0.1 unless --host says otherwise. Actions (replay, purge, retry, ...)
need the token whenever one is set (--token, or PATCHBAY_CONSOLE_TOKEN), given as a Bearer token or
the password of basic auth; beyond loopback every request needs it, and with no token actions are
refused there. --read-only shows everything and changes nothing. Every action is recorded in the
audit list.

The store, bus, sagas, webhooks and pipelines come from --config (patchbay.config.js exporting
them), else the store from --sqlite / --pg: then dead letters replay into the store's own queue and
saga retries are run by the app's workers.`;

const isRunner = (v: unknown): v is SagaRunner =>
  typeof v === "object" && v !== null && typeof (v as SagaRunner).retry === "function";
const isPipeline = (v: unknown): v is Pipeline =>
  typeof v === "object" && v !== null && typeof (v as Pipeline).run === "function";

/** `patchbay console`. */
export const consoleCommand: CliCommand = {
  name: "console",
  summary: "serve the web console: see and fix dead letters, sagas, pipelines, webhooks",
  usage: USAGE,
  options: {
    port: { type: "string" },
    host: { type: "string" },
    token: { type: "string" },
    "read-only": { type: "boolean", default: false },
  },
  maxArgs: 0,
  async run(ctx) {
    // --port 0: any free port (the URL printed says which).
    const port = ctx.values.port === "0" ? 0 : positiveInt(ctx.values, "port", 9400);
    if (port > 65_535) throw new InvalidArgumentError(`--port must be at most 65535, got ${port}`, "--port");
    const host = str(ctx.values.host) ?? "127.0.0.1";
    const token = str(ctx.values.token) ?? process.env.PATCHBAY_CONSOLE_TOKEN;
    const config = await loadConfig(ctx.flags.config);
    const configStore = ctx.flags.explicitStore ? undefined : (config?.store as SqlStore | undefined);
    const store: SqlStore = configStore ?? (await ctx.store());
    const fromConfig = configStore !== undefined;
    const bus = fromConfig ? (config?.bus as EventBus | undefined) : undefined;
    const sagas = config?.sagas;
    const exported = config?.pipelines;
    const pipelines = (
      Array.isArray(exported)
        ? exported
        : typeof exported === "object" && exported !== null
          ? Object.values(exported)
          : []
    ).filter(isPipeline);
    const handler = createConsole({
      store,
      ...(bus ? { bus } : {}),
      ...(fromConfig && isRunner(sagas)
        ? { sagas }
        : Array.isArray(sagas)
          ? { sagas: createSagaRunner({ store, sagas: sagas.filter(isSagaDefinition) }) }
          : {}),
      ...(fromConfig && config?.webhooks ? { webhooks: config.webhooks as Webhooks } : {}),
      pipelines,
      ...(token ? { token } : {}),
      readOnly: ctx.values["read-only"] === true,
    });
    const server = createServer(handler);
    try {
      await store.open();
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(port, host, resolve);
      });
    } catch (e) {
      // A port taken or a store refused: close what was opened, so the command exits at once
      // with the error instead of lingering until the store's pool goes idle.
      await handler.close();
      if (bus) await bus.stop();
      await store.close();
      throw e;
    }
    const address = server.address() as AddressInfo;
    const shown = address.family === "IPv6" ? `[${address.address}]` : address.address;
    ctx.out(`Patchbay console: http://${shown}:${address.port}/`);
    const loopback = host === "localhost" || host === "::1" || host.startsWith("127.");
    if (ctx.values["read-only"] === true) ctx.out("  read-only: actions are refused");
    else if (!loopback && !token) {
      ctx.err("  listening beyond loopback without a token: actions are refused (set --token)");
    } else if (token) ctx.out("  actions need the token (Bearer, or the password of basic auth)");
    await new Promise<void>((resolve) => {
      const stop = () => resolve();
      process.once("SIGINT", stop);
      process.once("SIGTERM", stop);
    });
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    await handler.close();
    if (bus) await bus.stop();
    await store.close();
    return 0;
  },
};
