/**
 * An application with things for the console to show and fix: a bus whose `pinger` group
 * dead-letters `ping.sent` events while `pings.fail` is set, and an `order` saga whose last step
 * fails for good and whose `charge` compensation fails while `refunds.fail` is set (so the saga
 * ends `failed` until someone retries it with refunds working). Used by the API tests, the
 * browser test and the screenshot script.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { z } from "zod";
import { createEventBus, type EventBus } from "../../src/bus/bus.js";
import { defineEvent } from "../../src/core/events.js";
import { NonRetryableError } from "../../src/core/errors.js";
import { createConsole, type ConsoleHandler, type ConsoleOptions } from "../../src/ops/console.js";
import { defineSaga } from "../../src/saga/definition.js";
import { createSagaRunner, type SagaRunner } from "../../src/saga/runner.js";
import type { SqlStore } from "../../src/store/sql-store.js";

export const Ping = defineEvent("ping.sent", { version: 1, schema: z.object({ n: z.number() }) });

export interface ConsoleApp {
  store: SqlStore;
  bus: EventBus;
  runner: SagaRunner;
  /** Pings the `pinger` group handled (after a replay). */
  handled: number[];
  pings: { fail: boolean };
  refunds: { fail: boolean };
  /** Refunds made by the `charge` compensation. */
  refunded: string[];
  /** Publishes pings `from`..`to - 1` and waits until each is a dead letter. */
  deadLetter(from: number, to: number): Promise<void>;
  /** Starts `order` sagas with these ids and waits until each is `failed`. */
  failSagas(ids: string[]): Promise<void>;
  /** Serves a console over this app on 127.0.0.1 (a free port). */
  serve(
    options?: Partial<ConsoleOptions>,
  ): Promise<{ url: string; handler: ConsoleHandler; close(): Promise<void> }>;
  stop(): Promise<void>;
}

async function until(predicate: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export async function consoleApp(store: SqlStore): Promise<ConsoleApp> {
  const handled: number[] = [];
  const pings = { fail: true };
  const refunds = { fail: true };
  const refunded: string[] = [];
  const bus = createEventBus({ store, events: [Ping] });
  bus.subscribe(Ping, { group: "pinger" }, (event) => {
    if (pings.fail) throw new NonRetryableError(`ping ${event.data.n} refused`);
    handled.push(event.data.n);
  });
  const order = defineSaga("order", {
    version: 1,
    compensateRetry: { maxAttempts: 1 },
    steps: [
      { name: "reserve", run: () => "R", compensate: () => undefined },
      {
        name: "charge",
        run: () => ({ charge: "C" }),
        compensate: (_r, ctx) => {
          if (refunds.fail) throw new Error("refund API down");
          refunded.push(ctx.sagaId);
        },
      },
      { name: "ship", run: () => Promise.reject(new NonRetryableError("no courier")) },
    ],
  });
  const runner = createSagaRunner({ store, bus, sagas: [order], pollInterval: 50 });
  await store.open();
  await bus.start();
  await runner.start();
  const servers: Server[] = [];
  const handlers: ConsoleHandler[] = [];
  return {
    store,
    bus,
    runner,
    handled,
    pings,
    refunds,
    refunded,
    async deadLetter(from, to) {
      const before = await bus.deadLetters.count();
      for (let n = from; n < to; n++) await bus.publish(Ping, { n });
      await until(
        async () => (await bus.deadLetters.count()) === before + (to - from),
        20_000,
        "dead letters",
      );
    },
    async failSagas(ids) {
      for (const id of ids) await runner.saga(order).start({ orderId: id }, { id });
      for (const id of ids) {
        await until(async () => (await runner.get(id))?.status === "failed", 20_000, `saga ${id} failed`);
      }
    },
    async serve(options = {}) {
      const handler = createConsole({ store, bus, sagas: runner, ...options });
      const server = createServer(handler);
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      servers.push(server);
      handlers.push(handler);
      const { port } = server.address() as AddressInfo;
      return {
        url: `http://127.0.0.1:${port}/`,
        handler,
        close: async () => {
          server.closeAllConnections();
          await new Promise((r) => server.close(r));
          await handler.close();
        },
      };
    },
    async stop() {
      for (const s of servers) {
        s.closeAllConnections();
        await new Promise((r) => s.close(r));
      }
      for (const h of handlers) await h.close();
      await runner.stop();
      await bus.stop();
      await store.close();
    },
  };
}
