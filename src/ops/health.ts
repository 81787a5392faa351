/**
 * Liveness and readiness: `/healthz` says the process answers, `/readyz` that it can do its work
 * (store reachable and migrated, transport connected, workers running) — with the JSON detail of
 * each check so an operator sees which one failed.
 */
import type { Transport } from "../bus/transport.js";
import type { StoreHealth } from "../store/contracts.js";
import type { SqlStore } from "../store/sql-store.js";

/** One check of {@link ReadinessReport}. */
export interface HealthCheck {
  ok: boolean;
  /** Why it is not ok, or what could not be verified. */
  detail?: string;
}

/** What `/readyz` answers. */
export interface ReadinessReport {
  status: "ready" | "not ready";
  checks: {
    store: HealthCheck & Partial<StoreHealth>;
    transport: HealthCheck & { name: string };
    workers: HealthCheck & { state: WorkersState };
  };
}

/** What `/healthz` answers. */
export interface LivenessReport {
  status: "ok";
  pid: number;
  uptimeSeconds: number;
}

/** The lifecycle of a Patchbay's workers. */
export type WorkersState = "new" | "starting" | "started" | "stopping" | "stopped";

/** Options of {@link checkReadiness}. */
export interface ReadinessOptions {
  store: SqlStore;
  transport: Transport;
  /** The workers' lifecycle state (a Patchbay's `start()` / `stop()`). */
  workers: () => WorkersState;
}

/** The liveness answer: the process runs its event loop. */
export const checkLiveness = (): LivenessReport => ({
  status: "ok",
  pid: process.pid,
  uptimeSeconds: Math.round(process.uptime() * 10) / 10,
});

/**
 * Checks readiness: the store answers and its schema is the one this code knows, the transport
 * is connected (a store-backed transport is the store; a broker's when it reports it), and the
 * workers were started and not stopped.
 */
export async function checkReadiness(options: ReadinessOptions): Promise<ReadinessReport> {
  const state = options.workers();
  const health = await options.store.health();
  const migrated = health.ok && health.schemaVersion === health.knownSchemaVersion;
  const store = {
    ...health,
    ok: migrated,
    ...(health.ok && !migrated
      ? { detail: `schema version ${health.schemaVersion}, this code needs ${health.knownSchemaVersion}` }
      : health.ok
        ? {}
        : { detail: `store unreachable: ${health.error ?? "unknown error"}` }),
  };
  const transport = await checkTransport(options.transport, store.ok);
  const workers = {
    ok: state === "started",
    state,
    ...(state === "started" ? {} : { detail: `workers are ${state}` }),
  };
  const ready = store.ok && transport.ok && workers.ok;
  return { status: ready ? "ready" : "not ready", checks: { store, transport, workers } };
}

async function checkTransport(
  transport: Transport,
  storeOk: boolean,
): Promise<ReadinessReport["checks"]["transport"]> {
  const name = transport.name;
  if (transport.capabilities.sharesStore) {
    return storeOk
      ? { ok: true, name }
      : { ok: false, name, detail: "the queue lives in the store, which is not ready" };
  }
  if (transport.health === undefined) {
    return { ok: true, name, detail: "the transport does not report its connection; assumed connected" };
  }
  try {
    const h = await transport.health();
    return h.ok ? { ok: true, name } : { ok: false, name, detail: h.error ?? "not connected" };
  } catch (e) {
    return { ok: false, name, detail: e instanceof Error ? e.message : String(e) };
  }
}
