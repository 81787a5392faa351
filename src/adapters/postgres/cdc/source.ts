/**
 * `postgresChanges()`: a streaming {@link SyncSource} over PostgreSQL logical replication. The
 * first read creates a durable slot, copies the tables under the snapshot the slot exported, then
 * streams every committed change from the slot's consistent point: no gap, no overlap. Batches
 * hold whole transactions, in commit order; each batch's cursor is the end of its last commit,
 * stored by the destination with the rows, and only then confirmed to the server (`committed`).
 */
import { randomBytes } from "node:crypto";
import type { Duration } from "../../../core/duration.js";
import { toMs } from "../../../core/duration.js";
import { InvalidArgumentError } from "../../../core/errors.js";
import type { CapturedChange } from "../../../cdc/change-events.js";
import type {
  EncodedRows,
  JsonValue,
  ReadRequest,
  Row,
  SourceBatch,
  SyncSource,
} from "../../../sync/contracts.js";
import { SyncCursorError } from "../../../sync/errors.js";
import { copyValue } from "../copy.js";
import { lazyPool, setLocal, UTC_OUTPUT_SETTINGS } from "../lazy-pool.js";
import { loadedPg, type PgPoolClient, type PgTypeParsers } from "../load.js";
import { CdcLagExceededError, CdcSlotMissingError } from "./errors.js";
import { copiedAlready, copyPages, type CopyPosition, type CopySegment } from "./initial-copy.js";
import { formatLsn, parseLsn } from "./lsn.js";
import { PgOutputDecoder, type Relation, type Tuple } from "./pgoutput.js";
import { ReplicationConnection, type ReplicationFrame, type ReplicationStream } from "./replication.js";
import {
  checkWalLevel,
  describeTables,
  dropSlot,
  ensurePublication,
  slotInfo,
  type CapturedTable,
  type SlotInfo,
} from "./slots.js";
import { setField } from "../../../core/fields.js";

/** Options of {@link postgresChanges}. */
export interface PostgresChangesOptions {
  /** Connection string (a role with REPLICATION). Default `PATCHBAY_PG_URL`, then libpq's `PG*` variables. */
  url?: string;
  /** The durable replication slot: `[a-z0-9_]`, at most 63 characters. Created on the first read. */
  slot: string;
  /** The publication listing the tables (created, or extended, on the first read). */
  publication: string;
  /** The tables to capture: `"orders"`, `"public.orders"`. */
  tables: string | readonly string[];
  /** Copy the existing rows first (under the slot's snapshot). Default `true`. */
  snapshot?: boolean;
  /**
   * Stop with `CDC_LAG_EXCEEDED` when the slot's confirmed position is more than this many bytes
   * behind the server's WAL (checked every `heartbeat`). Default: no limit.
   */
  maxLagBytes?: number;
  /**
   * How often an idle capture writes a heartbeat (a logical message, stored and confirmed like a
   * change) so the slot advances while the captured tables do not change. Default `"30s"`; `0` off.
   */
  heartbeat?: Duration;
}

/** The cursor stored with each batch. */
interface ChangeCursor {
  slot: string;
  /** Streaming resumes here: the end of the last stored commit (or the slot's consistent point). */
  lsn: string;
  /** Set while the initial copy runs: the table being copied and the key of its last copied row. */
  snapshot?: CopyPosition | undefined;
  /** The parts of the copy read after a crash, kept until streaming passes the newest one's `lsn`. */
  segments?: CopySegment[] | undefined;
}

const SLOT_NAME = /^[a-z0-9_]{1,63}$/;
/** Received replication data waiting to be decoded before the socket is paused (back-pressure). */
const MAX_QUEUED_BYTES = 16 << 20;
const MAX_QUEUED_FRAMES = 100_000;

// Values as the sync source gives them: dates, times, json as PostgreSQL's text; the rest by pg's parsers.
const TEXT_OIDS = new Set([
  1082, 1083, 1114, 1184, 1266, 1186, 1182, 1183, 1115, 1185, 1270, 1187, 114, 3802,
]);
const parserOf = (oid: number): ((value: string) => unknown) =>
  TEXT_OIDS.has(oid)
    ? (v: string) => v
    : (loadedPg().types.getTypeParser(oid, "text") as (value: string) => unknown);
const types: PgTypeParsers = { getTypeParser: (oid: number) => parserOf(oid) };

function parseTables(tables: string | readonly string[]): Array<{ schema: string; table: string }> {
  const list = typeof tables === "string" ? [tables] : [...tables];
  if (list.length === 0) throw new InvalidArgumentError("tables must name at least one table", "tables");
  return list.map((name) => {
    const parts = String(name).split(".");
    if (parts.length > 2 || parts.some((p) => p.length === 0))
      throw new InvalidArgumentError(`not a table name: ${JSON.stringify(name)}`, "tables");
    return parts.length === 2
      ? { schema: parts[0] as string, table: parts[1] as string }
      : { schema: "public", table: parts[0] as string };
  });
}

function parseCursor(value: unknown, slot: string): ChangeCursor | undefined {
  if (value === undefined || value === null) return undefined;
  const c = value as Partial<ChangeCursor>;
  if (typeof value !== "object" || c.slot !== slot || typeof c.lsn !== "string") {
    throw new SyncCursorError(
      `the stored position is not one of replication slot ${JSON.stringify(slot)}; reset the capture`,
    );
  }
  parseLsn(c.lsn);
  const segments = Array.isArray(c.segments) && c.segments.length > 0 ? c.segments : undefined;
  for (const segment of segments ?? []) parseLsn(segment.lsn);
  return { slot, lsn: c.lsn, snapshot: c.snapshot ?? undefined, segments };
}

/** One decoded change, with its row values parsed. */
interface Change {
  relation: Relation;
  op: "upsert" | "delete";
  /**
   * The whole row (upsert; unchanged TOAST columns absent) or its key (delete). When the batch is
   * passed through as COPY text, an upsert's row holds only its key and `text` the whole row.
   */
  row: Row;
  /** An upsert's values as the server sent them (text; unchanged TOAST columns absent). */
  text?: Tuple | undefined;
  /** What the source did: a key-changing update is also a delete of the old key. */
  kind: CapturedChange["op"];
}

// Each relation's value parsers, looked up once (a Relation message makes a new relation object).
const parsersOf = new WeakMap<Relation, Array<(value: string) => unknown>>();

function parseTuple(relation: Relation, tuple: Tuple, only?: readonly string[]): Row {
  let parsers = parsersOf.get(relation);
  if (!parsers) {
    parsers = relation.columns.map((column) => parserOf(column.typeOid));
    parsersOf.set(relation, parsers);
  }
  const row: Row = {};
  const columns = relation.columns;
  for (let i = 0; i < columns.length; i++) {
    const name = (columns[i] as Relation["columns"][number]).name;
    if (only && !only.includes(name)) continue;
    if (!Object.hasOwn(tuple, name)) continue; // unchanged TOAST: not sent, not NULL
    const text = tuple[name];
    setField(
      row,
      name,
      text === null || text === undefined ? null : (parsers[i] as (value: string) => unknown)(text),
    );
  }
  return row;
}

/**
 * An update's new tuple with the columns it lacks (unchanged TOASTed values, not sent) taken from
 * its old tuple where that has them: with `REPLICA IDENTITY FULL` the old tuple is the whole old
 * row, its TOASTed values included, so the new row is complete and its key compares unchanged
 * (a key of every column would otherwise always look changed, and the row be deleted).
 */
function withUnchanged(next: Tuple, old: Tuple): Tuple {
  let out = next;
  for (const name of Object.keys(old)) {
    if (Object.hasOwn(next, name)) continue;
    if (out === next) out = { ...next };
    setField(out, name, old[name] ?? null);
  }
  return out;
}

/** A row's identity within a run of changes: its relation and key values (types kept apart: 1 is not "1"). */
function identity(relationId: number, key: readonly string[], row: Row): string {
  if (key.length === 1) {
    const value = row[key[0] as string];
    if (typeof value === "string") return `${relationId}:s${value}`;
    if (typeof value === "number") return `${relationId}:n${value}`;
  }
  return `${relationId}:${JSON.stringify(key.map((k) => row[k]))}`;
}

/**
 * The net effect of a run of changes: per row, its last operation (an update's unchanged TOAST
 * columns taken from an earlier change of the same row in the run, else left to the destination).
 * Each key lands in `rows` or in `deletes`, never both, so the order a destination applies them in
 * does not matter.
 */
export function netEffect(changes: readonly Change[], keyOf: (r: Relation) => readonly string[]) {
  const { upserts, deletes } = netChanges(changes, keyOf);
  return { rows: upserts.map((c) => c.row), deletes };
}

function netChanges(changes: readonly Change[], keyOf: (r: Relation) => readonly string[]) {
  const last = new Map<string, Change>();
  for (const change of changes) {
    const id = identity(change.relation.id, keyOf(change.relation), change.row);
    const before = last.get(id);
    last.delete(id);
    if (change.op === "upsert" && before?.op === "upsert") {
      last.set(id, {
        ...change,
        row: { ...before.row, ...change.row },
        text: change.text && before.text ? { ...before.text, ...change.text } : change.text,
      });
    } else {
      last.set(id, change);
    }
  }
  const upserts: Change[] = [];
  const deletes: Row[] = [];
  for (const c of last.values()) {
    if (c.op === "upsert") upserts.push(c);
    else deletes.push(c.row);
  }
  return { upserts, deletes };
}

/** An upsert's whole row, parsed. */
const wholeRow = (c: Change): Row => (c.text ? parseTuple(c.relation, c.text) : c.row);

/**
 * The net upserts of a batch as COPY text, the server's text values passed through (escaped,
 * never parsed): the rows of the batch's one table that carry every column. A row lacking an
 * unchanged TOAST value is parsed and given apart, so the destination keeps its stored value; so
 * is every row of a batch that spans tables (their columns differ).
 */
function encodeUpserts(upserts: readonly Change[]): { rows: Row[]; encoded: EncodedRows | undefined } {
  const relation = upserts[0]?.relation;
  if (!relation || upserts.some((c) => c.relation.id !== relation.id || !c.text)) {
    return { rows: upserts.map(wholeRow), encoded: undefined };
  }
  const rows: Row[] = [];
  let text = "";
  let count = 0;
  let columns: readonly string[] | undefined;
  for (const c of upserts) {
    const names = c.relation.columns.map((column) => column.name);
    columns ??= names;
    const tuple = c.text as Tuple;
    if (
      names.length !== columns.length ||
      names.some((name, i) => name !== columns?.[i] || !Object.hasOwn(tuple, name))
    ) {
      rows.push(wholeRow(c));
      continue;
    }
    let line = "";
    for (let i = 0; i < names.length; i++) {
      if (i > 0) line += "\t";
      line += copyValue(tuple[names[i] as string], false);
    }
    text += line + "\n";
    count++;
  }
  const encoded =
    count > 0 && columns
      ? { encoding: "postgres-copy-text" as const, columns, chunks: [Buffer.from(text)], count }
      : undefined;
  return { rows, encoded };
}

/**
 * A batch of whole transactions. Its `changes` (each change as it happened, for destinations that
 * take them one by one: the bus) are only built when read: a table destination needs the net rows.
 */
function capturedBatch(
  rows: Row[],
  encoded: EncodedRows | undefined,
  deletes: Row[],
  cursor: ChangeCursor,
  ready: readonly Change[],
  lsns: readonly string[],
  indexes: readonly number[],
  keyOf: (r: Relation) => readonly string[],
): SourceBatch {
  let changes: CapturedChange[] | undefined;
  return {
    rows,
    ...(encoded ? { encoded } : {}),
    deletes,
    cursor: cursor as unknown as JsonValue,
    get changes(): CapturedChange[] {
      changes ??= ready.map((c, i) => ({
        schema: c.relation.schema,
        table: c.relation.table,
        op: c.kind,
        row: wholeRow(c),
        snapshot: false,
        key: Object.fromEntries(keyOf(c.relation).map((k) => [k, c.row[k]])),
        position: `${lsns[i] as string}:${indexes[i] as number}`,
      }));
      return changes;
    },
  };
}

/**
 * Captures every insert, update and delete of the tables from PostgreSQL logical replication.
 *
 * @example
 * postgresChanges({ url, slot: "patchbay_orders", publication: "patchbay_orders", tables: ["public.orders"] })
 */
export function postgresChanges(options: PostgresChangesOptions): SyncSource & {
  /** The slot's position and lag (or `undefined` when it does not exist). */
  slotStatus(): Promise<SlotInfo | undefined>;
  /** Drops the slot (the server stops retaining WAL for it). The stored position becomes unusable. */
  dropSlot(): Promise<boolean>;
} {
  const slot = options.slot;
  if (typeof slot !== "string" || !SLOT_NAME.test(slot))
    throw new InvalidArgumentError("slot must be 1-63 characters of a-z, 0-9 and _", "slot");
  const publication = options.publication;
  if (typeof publication !== "string" || !SLOT_NAME.test(publication))
    throw new InvalidArgumentError("publication must be 1-63 characters of a-z, 0-9 and _", "publication");
  const names = parseTables(options.tables);
  const heartbeatMs = toMs(options.heartbeat ?? "30s", "heartbeat");
  const maxLag = options.maxLagBytes;
  if (maxLag !== undefined && (!Number.isFinite(maxLag) || maxLag <= 0))
    throw new InvalidArgumentError("maxLagBytes must be a positive number", "maxLagBytes");
  const pool = lazyPool(options, 3, UTC_OUTPUT_SETTINGS);
  let repl: ReplicationConnection | undefined;
  let stream: ReplicationStream | undefined;
  let inSnapshot = true;

  const withClient = async <T>(fn: (db: PgPoolClient) => Promise<T>): Promise<T> => {
    const db = await (await pool.get()).connect();
    try {
      return await fn(db);
    } finally {
      db.release();
    }
  };

  /**
   * Copies the tables from `from` on in the exported snapshot `snapshot`, each page with its
   * watermark in its cursor. The transaction is read-only: a copy cut short just drops its
   * connection.
   */
  async function* copy(
    tables: CapturedTable[],
    base: ChangeCursor,
    snapshot: string,
    from: CopyPosition,
    request: ReadRequest,
  ): AsyncGenerator<SourceBatch> {
    const db = await (await pool.get()).connect();
    let done = false;
    try {
      await db.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
      await db.query(`SET TRANSACTION SNAPSHOT '${snapshot}'`);
      // The copy writes values as the stream does, whatever the database's defaults.
      await db.query(setLocal(UTC_OUTPUT_SETTINGS));
      yield* copyPages(
        db,
        tables,
        from,
        request,
        types,
        (at) => ({ ...base, snapshot: at }) as unknown as JsonValue,
      );
      await db.query("COMMIT");
      done = true;
    } finally {
      db.release(done ? undefined : true);
    }
  }

  async function* read(request: ReadRequest): AsyncGenerator<SourceBatch> {
    let cursor = parseCursor(request.cursor, slot);
    const tables = await withClient(async (db) => {
      await checkWalLevel(db);
      const described = await describeTables(db, names);
      await ensurePublication(db, publication, described);
      return described;
    });
    const existing = await withClient((db) => slotInfo(db, slot));
    repl = await ReplicationConnection.open(options.url);
    try {
      if (!cursor) {
        // Nothing stored: a slot left by a first copy that never committed a batch starts over.
        if (existing) await withClient((db) => dropSlot(db, slot));
        const created = await repl.createSlot(slot);
        cursor = { slot, lsn: formatLsn(created.consistentPoint) };
        if (options.snapshot !== false) {
          // The snapshot is the database just before the slot's consistent point, where streaming
          // starts: each change is in the copy or in the stream, never both.
          yield* copy(tables, cursor, created.snapshot, { table: 0, after: null }, request);
          if (request.signal.aborted) return;
        }
        // The copy is complete (or skipped): store that, with the position streaming starts from.
        yield { rows: [], cursor: cursor as unknown as JsonValue };
      } else {
        if (!existing) throw new CdcSlotMissingError(slot);
        if (cursor.snapshot) {
          // The first snapshot died with the crashed process. The rest of the copy reads a new one
          // whose consistent point a temporary slot gives exactly: the segment's watermark, stored
          // with its pages, tells the stream which changes that copy holds already.
          const temp = await ReplicationConnection.open(options.url);
          try {
            const taken = await temp.createSlot(`pb_copy_${randomBytes(8).toString("hex")}`, {
              temporary: true,
            });
            const segments = [
              ...(cursor.segments ?? []),
              { ...cursor.snapshot, lsn: formatLsn(taken.consistentPoint) },
            ];
            const base: ChangeCursor = { slot, lsn: cursor.lsn, segments };
            yield* copy(tables, base, taken.snapshot, cursor.snapshot, request);
            if (request.signal.aborted) return;
            cursor = base;
          } finally {
            await temp.end();
          }
          yield { rows: [], cursor: cursor as unknown as JsonValue };
        }
      }
      inSnapshot = false;
      yield* streamChanges(request, cursor, tables);
    } finally {
      await stream?.stop();
      stream = undefined;
      await repl.end();
      repl = undefined;
    }
  }

  async function* streamChanges(
    request: ReadRequest,
    start: ChangeCursor,
    tables: readonly CapturedTable[],
  ): AsyncGenerator<SourceBatch> {
    const index = new Map(tables.map((t, i) => [`${t.schema}.${t.table}`, i]));
    const keys = new WeakMap<Relation, readonly string[]>();
    const keyOf = (r: Relation): readonly string[] => {
      let key = keys.get(r);
      if (!key) {
        key = tables[index.get(`${r.schema}.${r.table}`) ?? -1]?.key ?? [];
        keys.set(r, key);
      }
      return key;
    };
    let from = parseLsn(start.lsn);
    // Changes a resumed copy may hold already are checked until the stream passes its snapshots.
    let segments = start.segments;
    const newest = (segments ?? []).reduce((a, g) => (parseLsn(g.lsn) > a ? parseLsn(g.lsn) : a), 0n);
    const decoder = new PgOutputDecoder();
    // A destination that takes COPY text gets the server's text values as they came (see encodeUpserts).
    const encode = request.encoding === "postgres-copy-text";
    // Frames received and not decoded yet, from `head` on. The socket is paused only when this much
    // waits: meanwhile the server goes on decoding its WAL while the destination writes a batch.
    let queue: ReplicationFrame[] = [];
    let head = 0;
    let queuedBytes = 0;
    const waiting = () => queue.length - head;
    let wake: (() => void) | undefined;
    const notify = () => {
      const w = wake;
      wake = undefined;
      w?.();
    };
    const s = (stream = (repl as ReplicationConnection).start(slot, publication, from, (frame) => {
      queue.push(frame);
      if (frame.kind === "xlog") queuedBytes += frame.data.length;
      if (queuedBytes > MAX_QUEUED_BYTES || waiting() > MAX_QUEUED_FRAMES) s.pause();
      notify();
    }));
    let failure: unknown;
    s.done.then(notify, (e: unknown) => {
      failure = e;
      notify();
    });
    request.signal.addEventListener("abort", notify, { once: true });
    let lastActivity = Date.now();
    let lastCheck = 0;
    // The transaction being received, and complete ones not yet handed out.
    let current: { commitSkip: boolean; finalLsn: bigint; changes: Change[] } | undefined;
    let ready: Change[] = [];
    // The commit position of each ready change (while segments are checked).
    let readyAt: bigint[] = [];
    // The commit end and index in its transaction of each ready change: the bus's event positions.
    let readyLsn: string[] = [];
    let readyIndex: number[] = [];
    let readyEnd: bigint | undefined;
    try {
      for (;;) {
        if (request.signal.aborted) return;
        if (failure !== undefined) throw failure as Error;
        const now = Date.now();
        const every = heartbeatMs > 0 ? Math.min(heartbeatMs, 5000) : 5000;
        if (now - lastCheck >= every) {
          lastCheck = now;
          const idle = waiting() === 0 && heartbeatMs > 0 && now - lastActivity >= heartbeatMs;
          await guard(idle);
          if (idle) lastActivity = now;
        }
        if (waiting() === 0) {
          queue = [];
          head = 0;
          // Drained: read on (a transaction larger than the queue is only complete further on).
          s.resume();
          await new Promise<void>((resolve) => {
            wake = resolve;
            setTimeout(resolve, every).unref();
          });
          wake = undefined;
          continue;
        }
        s.resume();
        // Drain what arrived, at transaction boundaries, up to about a batch.
        while (waiting() > 0) {
          const frame = queue[head] as ReplicationFrame;
          queue[head++] = undefined as unknown as ReplicationFrame;
          if (frame.kind === "xlog") queuedBytes -= frame.data.length;
          if (frame.kind === "keepalive") {
            if (frame.replyRequested) s.reply();
            continue;
          }
          const msg = decoder.decode(frame.data);
          switch (msg.tag) {
            case "begin":
              // A transaction that committed before the stored position is stored already.
              current = { commitSkip: msg.finalLsn < from, finalLsn: msg.finalLsn, changes: [] };
              break;
            case "insert":
              current?.changes.push({
                relation: msg.relation,
                op: "upsert",
                kind: "insert",
                row: encode
                  ? parseTuple(msg.relation, msg.new, keyOf(msg.relation))
                  : parseTuple(msg.relation, msg.new),
                text: encode ? msg.new : undefined,
              });
              break;
            case "update": {
              const key = keyOf(msg.relation);
              const tuple = msg.old ? withUnchanged(msg.new, msg.old) : msg.new;
              const row = encode ? parseTuple(msg.relation, tuple, key) : parseTuple(msg.relation, tuple);
              if (msg.old) {
                const oldKey = parseTuple(msg.relation, msg.old, key);
                // The key changed: the old row is gone.
                if (key.some((k) => JSON.stringify(oldKey[k]) !== JSON.stringify(row[k])))
                  current?.changes.push({
                    relation: msg.relation,
                    op: "delete",
                    kind: "delete",
                    row: oldKey,
                  });
              }
              current?.changes.push({
                relation: msg.relation,
                op: "upsert",
                kind: "update",
                row,
                text: encode ? tuple : undefined,
              });
              break;
            }
            case "delete":
              current?.changes.push({
                relation: msg.relation,
                op: "delete",
                kind: "delete",
                row: parseTuple(msg.relation, msg.old, keyOf(msg.relation)),
              });
              break;
            case "commit":
              if (current && !current.commitSkip) {
                const lsn = formatLsn(msg.endLsn);
                const at = current.finalLsn;
                current.changes.forEach((c, index) => {
                  ready.push(c);
                  if (segments) readyAt.push(at);
                  readyLsn.push(lsn);
                  readyIndex.push(index);
                });
                readyEnd = msg.endLsn;
              }
              current = undefined;
              break;
            default:
              break; // relation, type, origin, heartbeat message, truncate (not applied: see docs)
          }
          if (current === undefined && ready.length >= request.batchSize) break;
        }
        if (head > 10_000 && head * 2 > queue.length) {
          queue = queue.slice(head);
          head = 0;
        }
        if (current === undefined && readyEnd !== undefined) {
          if (segments) {
            const copied = await withClient((db) =>
              copiedAlready(
                db,
                tables,
                segments as CopySegment[],
                ready.map((c, i) => ({
                  table: index.get(`${c.relation.schema}.${c.relation.table}`) ?? -1,
                  key: c.row,
                  commitLsn: readyAt[i] as bigint,
                })),
              ),
            );
            ready = ready.filter((_, i) => !copied[i]);
            readyLsn = readyLsn.filter((_, i) => !copied[i]);
            readyIndex = readyIndex.filter((_, i) => !copied[i]);
          }
          const { upserts, deletes } = netChanges(ready, keyOf);
          const { rows, encoded } = encode
            ? encodeUpserts(upserts)
            : { rows: upserts.map((c) => c.row), encoded: undefined };
          const cursor: ChangeCursor = {
            slot,
            lsn: formatLsn(readyEnd),
            ...(segments && readyEnd < newest ? { segments } : {}),
          };
          if (readyEnd >= newest) segments = undefined;
          const batch = capturedBatch(rows, encoded, deletes, cursor, ready, readyLsn, readyIndex, keyOf);
          from = readyEnd;
          ready = [];
          readyAt = [];
          readyLsn = [];
          readyIndex = [];
          readyEnd = undefined;
          lastActivity = Date.now();
          yield batch;
        }
      }
    } finally {
      request.signal.removeEventListener("abort", notify);
    }
  }

  /** The lag limit, and the heartbeat of an idle capture. */
  async function guard(beat: boolean): Promise<void> {
    await withClient(async (db) => {
      if (maxLag !== undefined) {
        const info = await slotInfo(db, slot);
        if (info && info.lagBytes > maxLag) throw new CdcLagExceededError(slot, info.lagBytes, maxLag);
      }
      if (beat) await db.query("SELECT pg_logical_emit_message(true, 'patchbay.cdc.heartbeat', '')");
    });
  }

  return {
    description: `postgres changes slot ${JSON.stringify(slot)} (${names.map((n) => `${n.schema}.${n.table}`).join(", ")})`,
    // The initial copy passes COPY text through to a PostgreSQL destination (the stream gives rows).
    capabilities: { modes: ["incremental"], streaming: true, encodings: ["postgres-copy-text"] },
    read,
    committed(value) {
      if (inSnapshot) return Promise.resolve();
      const cursor = parseCursor(value, slot);
      // Only a stored position is confirmed: the slot may then drop the WAL before it.
      if (cursor && !cursor.snapshot) stream?.ack(parseLsn(cursor.lsn));
      return Promise.resolve();
    },
    slotStatus: () => withClient((db) => slotInfo(db, slot)),
    dropSlot: () => withClient((db) => dropSlot(db, slot)),
    async close() {
      await stream?.stop();
      await repl?.end();
      await pool.end();
    },
  };
}
