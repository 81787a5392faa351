import { readChangeSlots } from "../../cdc/slot-report.js";
import { int } from "../../store/dialect.js";
import type { SqlStore } from "../../store/sql-store.js";
import type { EventBus } from "../../bus/bus.js";
import type { CliCommand } from "../command.js";
import { loadConfig } from "../config.js";
import { table, timestamp } from "../table.js";

/** A transport that reports the broker's own state (`patchbay/nats`: streams and consumers). */
interface BrokerInspector {
  inspect(): Promise<{
    streams: Array<{ name: string; messages: number; bytes: number; consumers: number }>;
    groups: Array<{
      group: string;
      stream: string;
      pending: number;
      ackPending: number;
      redelivered: number;
      patterns: string[];
    }>;
  }>;
}

interface Section {
  title: string;
  /** Printed instead of the table when it has no rows. */
  note?: string;
  headers: string[];
  rows: string[][];
}

/** Runs a query, or resolves `undefined` when the table is not there (the module's migration is absent). */
async function maybe<T>(store: SqlStore, text: string): Promise<T[] | undefined> {
  try {
    return (await store.query<T>(text)).rows;
  } catch {
    return undefined;
  }
}

const age = (ms: number) =>
  ms < 1000
    ? `${ms}ms`
    : ms < 120_000
      ? `${Math.round(ms / 1000)}s`
      : ms < 7_200_000
        ? `${Math.round(ms / 60_000)}m`
        : `${Math.round(ms / 3_600_000)}h`;

/** Everything at a glance: store, queues, dead letters, sagas, pipelines, webhook endpoints, breakers. */
export const statusCommand: CliCommand = {
  name: "status",
  summary:
    "store, queues (depth, oldest), dead letters, sagas, pipelines, CDC slots, webhook endpoints, breakers",
  usage: `Usage: patchbay status [--sqlite <file> | --pg <url> | --store <url>] [--config <file>] [--json]

  Everything at a glance; changes nothing and creates no file. Queues are the local transport's
  (in the store); when the config's \`bus\` runs on a broker, its queues live there: on NATS
  JetStream status shows its streams and consumers (pending, ack pending, redelivered), on
  RabbitMQ it says where to look. On PostgreSQL, the database's logical replication slots (CDC):
  active, lag and retained WAL in bytes. Exit code 1 when the store is unhealthy.`,
  options: {},
  maxArgs: 0,
  async run(ctx) {
    const config = await loadConfig(ctx.flags.config);
    const bus = config?.bus as EventBus | undefined;
    const broker = bus?.transport.capabilities.sharesStore === false ? bus.transport.name : undefined;
    const store = await ctx.store({ migrate: false });
    try {
      const t = (name: string) => store.dialect.table(name);
      const now = Date.now();
      const health = await store.health();
      const report: Record<string, unknown> = { store: health };
      const sections: Section[] = [];

      const queues = await maybe<{ grp: string; depth: unknown; due: unknown; oldest: unknown }>(
        store,
        `SELECT grp, COUNT(*) AS depth, SUM(CASE WHEN run_at <= ${now} THEN 1 ELSE 0 END) AS due, MIN(created_at) AS oldest
         FROM ${t("bus_jobs")} GROUP BY grp ORDER BY grp`,
      );
      const groups = await maybe<{ grp: string }>(
        store,
        `SELECT DISTINCT grp FROM ${t("bus_bindings")} ORDER BY grp`,
      );
      const dead = await maybe<{ grp: string; n: unknown }>(
        store,
        `SELECT grp, COUNT(*) AS n FROM ${t("bus_dead_letters")} GROUP BY grp`,
      );
      const inspect = (bus?.transport as Partial<BrokerInspector> | undefined)?.inspect;
      if (broker !== undefined && typeof inspect === "function") {
        // A broker that reports its own state (NATS JetStream): streams and group consumers.
        const seen = await inspect.call(bus!.transport).catch((e: unknown) => e as Error);
        if (seen instanceof Error) {
          report.queues = { transport: broker, inStore: false, error: seen.message };
          sections.push({
            title: `Queues (${broker})`,
            headers: [],
            rows: [],
            note: `cannot read the broker's state: ${seen.message}`,
          });
        } else {
          report.queues = { transport: broker, inStore: false, streams: seen.streams, groups: seen.groups };
          sections.push({
            title: `Streams (${broker})`,
            note: "no stream yet (made when the bus first starts)",
            headers: ["STREAM", "MESSAGES", "BYTES", "CONSUMERS"],
            rows: seen.streams.map((x) => [x.name, String(x.messages), String(x.bytes), String(x.consumers)]),
          });
          sections.push({
            title: "Consumers",
            note: "no consumer yet",
            headers: ["GROUP", "STREAM", "PENDING", "ACK PENDING", "REDELIVERED", "PATTERNS"],
            rows: seen.groups.map((g) => [
              g.group,
              g.stream,
              String(g.pending),
              String(g.ackPending),
              String(g.redelivered),
              g.patterns.join(" ") || "-",
            ]),
          });
        }
        report.deadLetters = (dead ?? []).map((x) => ({ group: x.grp, count: int(x.n) }));
        sections.push({
          title: "Dead letters",
          headers: ["GROUP", "DEAD LETTERS"],
          rows: (dead ?? []).map((x) => [x.grp, String(int(x.n))]),
        });
      } else if (broker !== undefined) {
        report.queues = { transport: broker, inStore: false };
        sections.push({
          title: `Queues (${broker})`,
          headers: [],
          rows: [],
          note: "queues live in the broker, not in the store: see their depths with `rabbitmqctl list_queues name messages` (or the management UI)",
        });
        report.deadLetters = (dead ?? []).map((x) => ({ group: x.grp, count: int(x.n) }));
        sections.push({
          title: "Dead letters",
          headers: ["GROUP", "DEAD LETTERS"],
          rows: (dead ?? []).map((x) => [x.grp, String(int(x.n))]),
        });
      } else if (groups) {
        const byGroup = new Map((queues ?? []).map((q) => [q.grp, q]));
        const deadBy = new Map((dead ?? []).map((d) => [d.grp, int(d.n)]));
        report.queues = groups.map(({ grp }) => {
          const q = byGroup.get(grp);
          return {
            group: grp,
            depth: q ? int(q.depth) : 0,
            due: q ? int(q.due) : 0,
            oldestAgeMs: q?.oldest == null ? null : now - int(q.oldest),
            deadLetters: deadBy.get(grp) ?? 0,
          };
        });
        sections.push({
          title: "Queues (local transport)",
          headers: ["GROUP", "DEPTH", "DUE", "OLDEST", "DEAD LETTERS"],
          note: "none bound to the local transport; on a broker (RabbitMQ) queues live there: give --config exporting your bus",
          rows: (report.queues as Array<Record<string, number | string | null>>).map((q) => [
            String(q.group),
            String(q.depth),
            String(q.due),
            q.oldestAgeMs === null ? "-" : age(Number(q.oldestAgeMs)),
            String(q.deadLetters),
          ]),
        });
      }

      const paused = await maybe<{ grp: string; paused_at: unknown; paused_by: string | null }>(
        store,
        `SELECT grp, paused_at, paused_by FROM ${t("bus_paused_groups")} ORDER BY grp`,
      );
      if (paused) {
        report.pausedGroups = paused.map((p) => ({
          group: p.grp,
          pausedAt: int(p.paused_at),
          by: p.paused_by ?? undefined,
        }));
        sections.push({
          title: "Paused consumer groups",
          note: "none (patchbay bus pause <group> pauses one)",
          headers: ["GROUP", "PAUSED SINCE (UTC)", "BY"],
          rows: paused.map((p) => [p.grp, timestamp(int(p.paused_at)), p.paused_by ?? "-"]),
        });
      }

      const sagas = await maybe<{ name: string; status: string; n: unknown }>(
        store,
        `SELECT name, status, COUNT(*) AS n FROM ${t("saga_instances")} GROUP BY name, status ORDER BY name, status`,
      );
      if (sagas) {
        report.sagas = sagas.map((s) => ({ name: s.name, status: s.status, count: int(s.n) }));
        sections.push({
          title: "Sagas",
          headers: ["SAGA", "STATUS", "COUNT"],
          rows: sagas.map((s) => [s.name, s.status, String(int(s.n))]),
        });
      }

      const runs = await maybe<{
        pipeline: string;
        status: string;
        started_at: unknown;
        rows_written: unknown;
        error: string | null;
      }>(
        store,
        `SELECT r.pipeline, r.status, r.started_at, r.rows_written, r.error FROM ${t("sync_runs")} r
         WHERE r.started_at = (SELECT MAX(started_at) FROM ${t("sync_runs")} x WHERE x.pipeline = r.pipeline) ORDER BY r.pipeline`,
      );
      if (runs) {
        report.pipelines = runs.map((r) => ({
          pipeline: r.pipeline,
          lastRun: {
            status: r.status,
            startedAt: int(r.started_at),
            rowsWritten: int(r.rows_written),
            error: r.error,
          },
        }));
        sections.push({
          title: "Pipelines (last run)",
          headers: ["PIPELINE", "STATUS", "STARTED (UTC)", "ROWS WRITTEN", "ERROR"],
          rows: runs.map((r) => [
            r.pipeline,
            r.status,
            timestamp(int(r.started_at)),
            String(int(r.rows_written)),
            r.error ?? "",
          ]),
        });
      }

      const endpoints = await maybe<{
        id: string;
        url: string;
        status: string;
        last_success_at: unknown;
        failing_since: unknown;
        pending: unknown;
        failed: unknown;
      }>(
        store,
        `SELECT e.id, e.url, e.status, e.last_success_at, e.failing_since,
           (SELECT COUNT(*) FROM ${t("webhook_deliveries")} d WHERE d.endpoint_id = e.id AND d.status IN ('pending', 'sending')) AS pending,
           (SELECT COUNT(*) FROM ${t("webhook_deliveries")} d WHERE d.endpoint_id = e.id AND d.status = 'failed') AS failed
         FROM ${t("webhook_endpoints")} e ORDER BY e.created_at`,
      );
      if (endpoints) {
        report.webhookEndpoints = endpoints.map((e) => ({
          id: e.id,
          url: e.url,
          status: e.status,
          pending: int(e.pending),
          failed: int(e.failed),
          lastSuccessAt: e.last_success_at == null ? null : int(e.last_success_at),
          failingSince: e.failing_since == null ? null : int(e.failing_since),
        }));
        sections.push({
          title: "Webhook endpoints",
          headers: ["ENDPOINT", "URL", "STATUS", "PENDING", "FAILED", "HEALTH"],
          rows: endpoints.map((e) => [
            e.id,
            e.url,
            e.status,
            String(int(e.pending)),
            String(int(e.failed)),
            e.failing_since == null ? "ok" : `failing for ${age(now - int(e.failing_since))}`,
          ]),
        });
      }

      // Logical replication slots of the store's database (PostgreSQL only): each keeps WAL.
      const slots = health.ok ? await readChangeSlots(store).catch(() => undefined) : undefined;
      if (slots && slots.length > 0) {
        report.cdcSlots = slots;
        sections.push({
          title: "CDC slots",
          headers: ["SLOT", "ACTIVE", "LAG (BYTES)", "RETAINED WAL (BYTES)", "WAL STATUS"],
          rows: slots.map((x) => [
            x.slot,
            x.active ? "yes" : "no",
            String(x.lagBytes),
            String(x.retainedBytes),
            x.walStatus ?? "-",
          ]),
        });
      }

      // Circuit breakers whose state an app saves in the state table under breaker/<name> (toJSON()).
      const breakers = health.ok
        ? await store.state.list<{ state?: string; openUntil?: number }>("breaker/")
        : [];
      if (breakers.length > 0) {
        report.breakers = breakers.map((b) => ({
          name: b.key.slice(8),
          state: b.value.state,
          updatedAt: b.updatedAt,
        }));
        sections.push({
          title: "Circuit breakers",
          headers: ["BREAKER", "STATE", "SINCE (UTC)"],
          rows: breakers.map((b) => [b.key.slice(8), String(b.value.state ?? "?"), timestamp(b.updatedAt)]),
        });
      }

      if (ctx.flags.json) {
        ctx.out(JSON.stringify(report));
      } else {
        const color = process.stdout.isTTY && !process.env.NO_COLOR;
        const bold = (s: string) => (color ? `\u001b[1m${s}\u001b[0m` : s);
        ctx.out(
          `${bold("Store")}  ${health.dialect}  ${health.location}  schema ${health.schemaVersion}/${health.knownSchemaVersion}  ${
            health.ok ? "ok" : `FAILING: ${health.error}`
          }`,
        );
        for (const s of sections) {
          ctx.out(`\n${bold(s.title)}`);
          ctx.out(
            s.rows.length === 0 ? `  (${s.note ?? "none"})` : table(s.headers, s.rows).replace(/^/gm, "  "),
          );
        }
      }
      return health.ok ? 0 : 1;
    } finally {
      await store.close();
    }
  },
};
