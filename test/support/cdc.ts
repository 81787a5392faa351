/**
 * Isolation for the change data capture suites on the shared PostgreSQL: a source schema, a
 * destination schema, a store schema, a slot and a publication of their own per test, all dropped
 * by `cleanup` (a leaked slot would make the server keep WAL for everyone).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { postgres, postgresChanges, postgresDestination } from "../../src/adapters/postgres/index.js";
import { changeCapture, type ChangeCapture } from "../../src/cdc/change-capture.js";
import type { SqlStore } from "../../src/store/sql-store.js";
import type { ServiceStatus } from "../services.js";

/** `undefined` when the server can do logical replication, else why not (one line). */
export async function logicalReplicationProblem(url: string): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: url });
  try {
    await client.connect();
    const { rows } = await client.query<{ wal_level: string }>("SHOW wal_level");
    const level = rows[0]?.wal_level;
    return level === "logical" ? undefined : `wal_level is ${level}, not logical`;
  } catch (e) {
    return (e as Error).message;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Why the CDC suites cannot run against this PostgreSQL (they skip with it as one line), or
 * `undefined`. Under `CI=true` a problem fails the suite instead.
 */
export async function cdcSuiteProblem(service: ServiceStatus): Promise<string | undefined> {
  const problem = service.reachable
    ? await logicalReplicationProblem(service.url)
    : `PostgreSQL unreachable at ${service.where}`;
  if (problem && process.env.CI === "true") throw new Error(`CI=true and no logical replication: ${problem}`);
  return problem;
}

/** A child process a crash test SIGKILLs: its output so far (stdout and stderr) and its exit. */
export interface CrashChild {
  proc: ChildProcess;
  exited: Promise<void>;
  output(): string;
}

/**
 * Starts `test/fixtures/<script>` (through tsx) with its arguments as one JSON argument, as many
 * times as a crash test needs; `killAll()` (in `afterEach`) kills those still running.
 */
export function crashChildren(script: string): { start(args: unknown): CrashChild; killAll(): void } {
  const path = fileURLToPath(new URL(`../fixtures/${script}`, import.meta.url));
  const running: ChildProcess[] = [];
  return {
    start(args) {
      const proc = spawn(process.execPath, ["--import", "tsx", path, JSON.stringify(args)], {
        stdio: ["ignore", "pipe", "pipe"],
      });
      running.push(proc);
      let out = "";
      proc.stdout?.on("data", (d: Buffer) => (out += d.toString()));
      proc.stderr?.on("data", (d: Buffer) => (out += d.toString()));
      const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
      return { proc, exited, output: () => out };
    },
    killAll() {
      for (const c of running.splice(0)) if (c.exitCode === null) c.kill("SIGKILL");
    },
  };
}

export interface CdcFixture {
  url: string;
  id: string;
  /** Schemas: `src` (captured tables), `dst` (destination tables), `meta` (the pipeline store). */
  src: string;
  dst: string;
  meta: string;
  slot: string;
  publication: string;
  db: pg.Pool;
  sql(text: string, params?: unknown[]): Promise<Record<string, unknown>[]>;
  store(): SqlStore;
  /** `md5` of every row of a table, in key order. */
  checksum(table: string): Promise<string>;
  /**
   * A capture of `src.<table>` into `dst.<table>` (merge by `id`) on the fixture's slot and
   * publication, heartbeat 1 s, restarting after 200 ms; closed by `cleanup`.
   */
  capture(table: string): ChangeCapture;
  cleanup(): Promise<void>;
}

export async function cdcFixture(url: string): Promise<CdcFixture> {
  const id = randomBytes(5).toString("hex");
  const f = {
    url,
    id,
    src: `pb_cdc_src_${id}`,
    dst: `pb_cdc_dst_${id}`,
    meta: `pb_cdc_meta_${id}`,
    slot: `pb_cdc_${id}`,
    publication: `pb_cdc_${id}`,
  };
  const db = new pg.Pool({ connectionString: url, max: 4 });
  db.on("error", () => undefined);
  const sql = async (text: string, params: unknown[] = []) =>
    (await db.query<Record<string, unknown>>(text, params)).rows;
  await sql(`CREATE SCHEMA ${f.src}`);
  await sql(`CREATE SCHEMA ${f.dst}`);
  const stores: SqlStore[] = [];
  const captures: ChangeCapture[] = [];
  const store = () => {
    const s = postgres({ url, schema: f.meta });
    stores.push(s);
    return s;
  };
  return {
    ...f,
    db,
    sql,
    store,
    capture(table) {
      const cdc = changeCapture({
        name: `cdc_${table}_${id}`,
        store: store(),
        source: postgresChanges({
          url,
          slot: f.slot,
          publication: f.publication,
          tables: [`${f.src}.${table}`],
          heartbeat: "1s",
        }),
        destination: postgresDestination({ url, table: `${f.dst}.${table}`, key: "id" }),
        restartDelay: "200ms",
      });
      captures.push(cdc);
      return cdc;
    },
    async checksum(table) {
      const rows = await sql(
        `SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY id), '')) AS h FROM ${table} t`,
      );
      return String(rows[0]?.h);
    },
    async cleanup() {
      for (const c of captures) await c.close().catch(() => undefined);
      for (const s of stores) await s.close().catch(() => undefined);
      // A consumer killed mid-stream may still hold the slot for a moment.
      await sql(
        "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1 AND active_pid IS NOT NULL",
        [f.slot],
      ).catch(() => undefined);
      for (let i = 0; i < 50; i++) {
        try {
          await sql(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1",
            [f.slot],
          );
          break;
        } catch {
          await new Promise((r) => setTimeout(r, 200));
        }
      }
      await sql(`DROP PUBLICATION IF EXISTS ${f.publication}`).catch(() => undefined);
      for (const s of [f.src, f.dst, f.meta])
        await sql(`DROP SCHEMA IF EXISTS ${s} CASCADE`).catch(() => undefined);
      await db.end();
    },
  };
}

/** Drops replication slots (a consumer killed mid-stream may hold one for a moment). */
export async function dropSlots(url: string, slots: readonly string[]): Promise<void> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    for (const slot of slots) {
      await c
        .query(
          "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1 AND active_pid IS NOT NULL",
          [slot],
        )
        .catch(() => undefined);
      for (let i = 0; i < 50; i++) {
        try {
          await c.query(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1",
            [slot],
          );
          break;
        } catch {
          await new Promise((r) => setTimeout(r, 200));
        }
      }
    }
  } finally {
    await c.end();
  }
}

/** Polls `check` until it returns true (or throws after `timeoutMs`). */
export async function eventually(
  check: () => Promise<boolean>,
  timeoutMs = 60_000,
  what = "condition",
): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
