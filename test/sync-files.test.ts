/**
 * File sources (NDJSON, CSV) and the NDJSON destination, with real files and a real SQLite
 * database: incremental reads of appended data, quarantined bad lines, crash recovery of the
 * destination file, atomic replace.
 */
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { sqlite, sqliteDestination } from "../src/adapters/sqlite/index.js";
import { isPatchbayError } from "../src/core/errors.js";
import type { SqlStore } from "../src/store/sql-store.js";
import type { SyncDestination, SyncSource } from "../src/sync/contracts.js";
import { csvSource, ndjsonSource } from "../src/sync/files.js";
import { ndjsonDestination } from "../src/sync/ndjson-destination.js";
import { pipeline, type Pipeline, type PipelineOptions } from "../src/sync/pipeline.js";

const line = (i: number) =>
  JSON.stringify({
    id: i,
    name: `row ${i}`,
    tags: [i % 3],
    at: `2026-01-01T00:00:${String(i % 60).padStart(2, "0")}Z`,
  });
const readNdjson = (path: string) =>
  readFileSync(path, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe("Sync: files", () => {
  let dir: string;
  let store: SqlStore;
  const pipelines: Pipeline[] = [];
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "patchbay-files-"));
    store = sqlite({ file: join(dir, "store.db") });
  });
  afterEach(async () => {
    await Promise.allSettled(pipelines.splice(0).map((p) => p.close()));
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const make = (source: SyncSource, destination: SyncDestination, o: Partial<PipelineOptions> = {}) => {
    const p = pipeline("files", { store, source, destination, mode: "incremental", batchSize: 40, ...o });
    pipelines.push(p);
    return p;
  };

  it("NDJSON → SQLite: reads appended lines incrementally, quarantines bad lines, waits for a half-written line", async () => {
    const src = join(dir, "orders.ndjson");
    writeFileSync(
      src,
      [1, 2, 3].map(line).join("\n") +
        "\nnot json\n[1, 2]\n\n" +
        Array.from({ length: 97 }, (_, i) => line(i + 4)).join("\n") +
        "\n",
    );
    const db = join(dir, "dst.db");
    const p = make(ndjsonSource({ path: src }), sqliteDestination({ file: db, table: "orders", key: "id" }), {
      drift: "evolve",
    });
    const first = await p.run();
    expect(first).toMatchObject({ status: "succeeded", rowsRead: 100, rowsQuarantined: 2, rowsWritten: 100 });
    appendFileSync(
      src,
      Array.from({ length: 20 }, (_, i) => line(i + 101)).join("\n") + "\n" + line(121).slice(0, 10),
    );
    expect(await p.run()).toMatchObject({ rowsRead: 20 });
    appendFileSync(src, line(121).slice(10) + "\n");
    expect(await p.run()).toMatchObject({ rowsRead: 1 });
    const check = sqlite({ file: db });
    try {
      const { rows } = await check.query<{ id: number; name: string }>(
        "SELECT id, name FROM orders ORDER BY id",
      );
      expect(rows.map((r) => r.id)).toEqual(Array.from({ length: 121 }, (_, i) => i + 1));
      const { rows: q } = await check.query<{ reason: string; row_data: string }>(
        "SELECT reason, row_data FROM patchbay_sync_quarantine ORDER BY id",
      );
      expect(q).toEqual([
        { reason: "parse", row_data: '"not json"' },
        { reason: "parse", row_data: '"[1, 2]"' },
      ]);
    } finally {
      await check.close();
    }
  });

  it("refuses to go on with SYNC_SOURCE_CHANGED when the file was truncated or replaced", async () => {
    const src = join(dir, "log.ndjson");
    writeFileSync(src, [1, 2, 3].map(line).join("\n") + "\n");
    const p = make(ndjsonSource({ path: src }), ndjsonDestination({ path: join(dir, "out.ndjson") }));
    await p.run();
    writeFileSync(src, line(9) + "\n");
    const error = await p.run().catch((e: unknown) => e);
    expect(isPatchbayError(error, "SYNC_SOURCE_CHANGED")).toBe(true);
  });

  it("CSV (quoted commas, quotes, newlines, NULLs) → NDJSON, each row exactly once", async () => {
    const src = join(dir, "orders.csv");
    writeFileSync(
      src,
      'id,name,note\r\n1,"Smith, J","said ""hi"""\r\n2,plain,\r\n3,"two\nlines",x\r\n4,"bad",\r\n5,five\r\n',
    );
    const out = join(dir, "orders.ndjson");
    const p = make(csvSource({ path: src, nullValue: "" }), ndjsonDestination({ path: out }), {
      batchSize: 2,
    });
    const report = await p.run();
    expect(report).toMatchObject({ rowsRead: 4, rowsQuarantined: 1, rowsWritten: 4 });
    expect(readNdjson(out)).toEqual([
      { id: "1", name: "Smith, J", note: 'said "hi"' },
      { id: "2", name: "plain", note: null },
      { id: "3", name: "two\nlines", note: "x" },
      { id: "4", name: "bad", note: null },
    ]);
    expect(readNdjson(`${out}.quarantine.ndjson`)).toMatchObject([
      { reason: "parse", error: { message: "record has 2 fields, the header 3" } },
    ]);
    appendFileSync(src, "6,six,6\r\n");
    await p.run();
    expect(readNdjson(out).map((r) => r.id)).toEqual(["1", "2", "3", "4", "6"]);
  });

  it("NDJSON destination: a batch appended but not checkpointed (a crash) is cut off by the next run", async () => {
    const src = join(dir, "in.ndjson");
    const out = join(dir, "out.ndjson");
    writeFileSync(src, Array.from({ length: 50 }, (_, i) => line(i + 1)).join("\n") + "\n");
    const p = make(ndjsonSource({ path: src }), ndjsonDestination({ path: out }));
    await p.run();
    appendFileSync(out, line(51) + "\n" + line(52).slice(0, 7)); // what a killed run left behind
    appendFileSync(src, Array.from({ length: 5 }, (_, i) => line(i + 51)).join("\n") + "\n");
    await p.run();
    expect(readNdjson(out).map((r) => r.id)).toEqual(Array.from({ length: 55 }, (_, i) => i + 1));
  });

  it("NDJSON destination in replace mode: the file becomes the source, swapped in by a rename", async () => {
    const src = join(dir, "in.ndjson");
    const out = join(dir, "out.ndjson");
    writeFileSync(src, Array.from({ length: 30 }, (_, i) => line(i + 1)).join("\n") + "\n");
    const p = make(ndjsonSource({ path: src }), ndjsonDestination({ path: out, write: "replace" }), {
      mode: "full",
    });
    await p.run();
    writeFileSync(src, Array.from({ length: 10 }, (_, i) => line(i + 100)).join("\n") + "\n");
    await p.run();
    expect(readNdjson(out).map((r) => r.id)).toEqual(Array.from({ length: 10 }, (_, i) => i + 100));
  });
});
