/**
 * The store bench's SQLite row without the fsync (`synchronous=OFF` on both sides): what the store
 * adds per committed `state.set` above the raw driver, in µs, interleaved rounds. Run with
 * `node --cpu-prof` to see where that goes. `BENCH_OPS`, `BENCH_ROUNDS`.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { sqlite } from "../src/adapters/sqlite/index.js";

const OPS = Number(process.env.BENCH_OPS ?? 20000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const value = { cursor: "2026-11-26T10:00:00.000Z", id: 123456, note: "x".repeat(100) };

const dir = mkdtempSync(join(tmpdir(), "patchbay-store-profile-"));
try {
  const db = new DatabaseSync(join(dir, "raw.db"));
  db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF");
  db.exec(
    "CREATE TABLE raw_state (key TEXT PRIMARY KEY, value TEXT NOT NULL, version INTEGER NOT NULL, updated_at INTEGER NOT NULL) WITHOUT ROWID",
  );
  const upsert = db.prepare(
    "INSERT INTO raw_state AS s (key, value, version, updated_at) VALUES (?, ?, 1, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value, version = s.version + 1, updated_at = excluded.updated_at RETURNING key, value, version, updated_at",
  );
  const begin = db.prepare("BEGIN IMMEDIATE");
  const commit = db.prepare("COMMIT");
  const raw = async () => {
    const t = performance.now();
    for (let i = 0; i < OPS; i++) {
      begin.run();
      upsert.all(`k/${i % 500}`, JSON.stringify(value), Date.now());
      commit.run();
      await Promise.resolve();
    }
    return ((performance.now() - t) * 1000) / OPS;
  };
  const store = sqlite({ file: join(dir, "ours.db"), synchronous: "normal" });
  await store.open();
  await store.query("PRAGMA synchronous = OFF");
  const ours = async () => {
    const t = performance.now();
    for (let i = 0; i < OPS; i++) {
      await store.transaction(async (tx) => void (await tx.state.set(`k/${i % 500}`, value)));
    }
    return ((performance.now() - t) * 1000) / OPS;
  };
  await raw();
  await ours();
  const rs: number[] = [];
  const os: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    rs.push(await raw());
    os.push(await ours());
  }
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  process.stdout.write(
    `load ${loadavg()
      .map((n) => n.toFixed(1))
      .join(
        " ",
      )}: µs per committed write, raw ${med(rs).toFixed(1)} (${rs.map((x) => x.toFixed(1)).join(" ")}), ours ${med(os).toFixed(1)} (${os.map((x) => x.toFixed(1)).join(" ")}); ours adds ${(med(os) - med(rs)).toFixed(1)} µs\n`,
  );
  await store.close();
  db.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
