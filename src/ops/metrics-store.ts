/**
 * Gauges read from the store when Prometheus scrapes: the truth across every process sharing the
 * store, and right after a restart (counters only know this process since it started).
 */
import { Counter, Gauge, type Registry } from "prom-client";
import type { Transport } from "../bus/transport.js";
import { readChangeSlots } from "../cdc/slot-report.js";
import type { SqlStore } from "../store/sql-store.js";

const num = (v: unknown) => (v === null || v === undefined ? Number.NaN : Number(v));

/** Registers the scrape-time gauges of `store` on `registry`. */
export function storeGauges(registry: Registry, store: SqlStore, transport: Transport | undefined): void {
  const registers = [registry];
  const t = (name: string) => store.dialect.table(name);
  const errors = new Counter({
    name: "patchbay_metrics_store_errors_total",
    help: "Scrape-time store reads that failed (store down, or not opened yet)",
    labelNames: ["metric"],
    registers,
  });
  /** A gauge whose series are replaced, at each scrape, by the rows of `read`. */
  const fromStore = <L extends string>(
    name: string,
    help: string,
    labelNames: readonly L[],
    read: () => Promise<Array<[Record<L, string>, number]>>,
  ) =>
    new Gauge<L>({
      name,
      help,
      labelNames,
      registers,
      async collect() {
        let series: Array<[Record<L, string>, number]>;
        try {
          series = await read();
        } catch {
          errors.inc({ metric: name });
          return; // the last values stay; the error counter says they are stale
        }
        this.reset();
        for (const [labels, value] of series) if (Number.isFinite(value)) this.set(labels, value);
      },
    });
  const rows = async <R>(text: string) => (await store.query<R>(text)).rows;
  /** The consumer groups bound on the local transport: each has a series, 0 while it has nothing. */
  const bound = async () =>
    (await rows<{ grp: string }>(`SELECT DISTINCT grp FROM ${t("bus_bindings")}`)).map((r) => r.grp);
  /** `counted`'s groups, and every bound group with `zero`. */
  const withBound = async <R extends { grp: string }>(
    counted: R[],
    zero: (grp: string) => R,
  ): Promise<R[]> => {
    const seen = new Set(counted.map((r) => r.grp));
    return [...counted, ...(await bound()).filter((g) => !seen.has(g)).map(zero)];
  };

  // Queue depth lives in the store only for the local transport; a broker keeps its own.
  if (transport === undefined || transport.capabilities.sharesStore) {
    let queue: Promise<Array<{ grp: string; depth: unknown; oldest: unknown }>> | undefined;
    // Both gauges come from one query per scrape.
    const readQueues = () =>
      (queue ??= rows<{ grp: string; depth: unknown; oldest: unknown }>(
        `SELECT grp, COUNT(*) AS depth, MIN(created_at) AS oldest FROM ${t("bus_jobs")} GROUP BY grp`,
      )
        .then((counted) => withBound(counted, (grp) => ({ grp, depth: 0, oldest: null })))
        .finally(() => setTimeout(() => (queue = undefined), 0)));
    fromStore(
      "patchbay_bus_queue_depth",
      "Messages waiting in a consumer group's queue (due, delayed for retry, or in flight)",
      ["messaging_consumer_group_name"],
      async () => (await readQueues()).map((r) => [{ messaging_consumer_group_name: r.grp }, num(r.depth)]),
    );
    fromStore(
      "patchbay_bus_queue_oldest_age_seconds",
      "Age of the oldest message in a consumer group's queue",
      ["messaging_consumer_group_name"],
      async () => {
        const now = Date.now();
        return (await readQueues()).map((r) => [
          { messaging_consumer_group_name: r.grp },
          r.oldest === null ? 0 : Math.max(0, (now - num(r.oldest)) / 1000),
        ]);
      },
    );
  }
  // Every bound group of the local transport (0 or 1), and every paused group whatever the transport.
  fromStore(
    "patchbay_bus_group_paused",
    "1 while a consumer group is paused by hand (bus.pause, the console, patchbay bus pause): its messages wait",
    ["messaging_consumer_group_name"],
    async () => {
      const [bound, pausedRows] = await Promise.all([
        rows<{ grp: string }>(`SELECT DISTINCT grp FROM ${t("bus_bindings")}`),
        rows<{ grp: string }>(`SELECT grp FROM ${t("bus_paused_groups")}`),
      ]);
      const series = new Map<string, number>(bound.map((r) => [r.grp, 0]));
      for (const r of pausedRows) series.set(r.grp, 1);
      return [...series].map(([grp, v]) => [{ messaging_consumer_group_name: grp }, v]);
    },
  );
  fromStore(
    "patchbay_bus_dead_letters",
    "Dead letters in the store, waiting to be replayed or purged",
    ["messaging_consumer_group_name"],
    async () =>
      (
        await withBound(
          await rows<{ grp: string; n: unknown }>(
            `SELECT grp, COUNT(*) AS n FROM ${t("bus_dead_letters")} GROUP BY grp`,
          ),
          (grp) => ({ grp, n: 0 }),
        )
      ).map((r) => [{ messaging_consumer_group_name: r.grp }, num(r.n)]),
  );
  fromStore(
    "patchbay_saga_instances",
    "Saga instances in the store, by status (failed ones need a person)",
    ["saga", "status"],
    async () =>
      (
        await rows<{ name: string; status: string; n: unknown }>(
          `SELECT name, status, COUNT(*) AS n FROM ${t("saga_instances")} GROUP BY name, status`,
        )
      ).map((r) => [{ saga: r.name, status: r.status }, num(r.n)]),
  );
  fromStore(
    "patchbay_saga_instances_retrying",
    "Saga instances whose last step attempt failed and that wait for (or run) a retry",
    ["saga"],
    async () =>
      (
        await rows<{ name: string; n: unknown }>(
          `SELECT name, COUNT(*) AS n FROM ${t("saga_instances")}
           WHERE status IN ('running', 'compensating') AND last_delay IS NOT NULL GROUP BY name`,
        )
      ).map((r) => [{ saga: r.name }, num(r.n)]),
  );
  fromStore(
    "patchbay_pipeline_last_success_timestamp_seconds",
    "When a pipeline's last successful run finished (Unix time)",
    ["pipeline"],
    async () =>
      (
        await rows<{ pipeline: string; at: unknown }>(
          `SELECT pipeline, MAX(finished_at) AS at FROM ${t("sync_runs")} WHERE status = 'succeeded' GROUP BY pipeline`,
        )
      ).map((r) => [{ pipeline: r.pipeline }, num(r.at) / 1000]),
  );
  fromStore(
    "patchbay_webhook_endpoints",
    "Webhook endpoints by status; disabled ones by reason (manual, gone, failing)",
    ["status", "reason"],
    async () =>
      (
        await rows<{ status: string; reason: string | null; n: unknown }>(
          `SELECT status, disabled_reason AS reason, COUNT(*) AS n FROM ${t("webhook_endpoints")} GROUP BY status, disabled_reason`,
        )
      ).map((r) => [{ status: r.status, reason: r.reason ?? "" }, num(r.n)]),
  );
  // Every logical slot of the store's database (PostgreSQL; none elsewhere): WAL held back.
  fromStore(
    "patchbay_cdc_slot_lag_bytes",
    "Bytes of WAL a logical replication slot (CDC) holds back: the server's WAL end minus the confirmed position",
    ["slot"],
    async () => (await readChangeSlots(store)).map((x) => [{ slot: x.slot }, x.lagBytes]),
  );
  fromStore(
    "patchbay_cdc_slot_lag_seconds",
    "Seconds between PostgreSQL writing WAL and the capture reading a logical slot confirming it (flush_lag; 0 when caught up; no series while nothing reads the slot)",
    ["slot"],
    async () =>
      (await readChangeSlots(store)).flatMap((x) =>
        x.lagSeconds === null ? [] : [[{ slot: x.slot }, x.lagSeconds] as const],
      ),
  );
}
