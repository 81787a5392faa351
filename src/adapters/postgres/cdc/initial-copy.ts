/**
 * The initial copy of a change capture: each table in keyset pages ordered by its key, read in
 * one snapshot, and the watermarks that keep a resumed copy exact.
 *
 * A copy page is stored at the destination with its watermark (table, last key), so a resumed
 * copy goes on after the last stored row. The snapshot a copy reads dies with the process that
 * took it; a resumed copy reads a new one, taken by a temporary slot whose consistent point is
 * known exactly. Its rows then already hold the changes that committed before that point, which
 * the durable slot still streams (it starts at the first snapshot's point). Each resumed part is
 * a {@link CopySegment}: the rows from its start up to the next segment's start, copied as of
 * its `lsn`. A streamed change to a row of a segment that committed before the segment's `lsn`
 * is in the copy already and is dropped ({@link copiedAlready}): no row version written twice.
 */
import type { CapturedChange } from "../../../cdc/change-events.js";
import type { JsonValue, ReadRequest, Row, SourceBatch } from "../../../sync/contracts.js";
import { copyField, decodeCopyField } from "../copy.js";
import { postgresLiteral } from "../driver.js";
import { loadCopyStreams, type PgPoolClient, type PgQueryable, type PgTypeParsers } from "../load.js";
import { parseLsn } from "./lsn.js";
import type { CapturedTable } from "./slots.js";

/** Where a copy stands: rows of `tables[table]` after the key `after` (null: from its first row). */
export interface CopyPosition {
  table: number;
  after: JsonValue[] | null;
}

/** A part of the copy read after a crash: rows after its position, as of the snapshot at `lsn`. */
export interface CopySegment extends CopyPosition {
  lsn: string;
}

const quote = (name: string) => `"${name.replace(/"/g, '""')}"`;

/**
 * Copies the tables from `from` on, in pages of `request.batchSize` rows: with `COPY ... TO
 * STDOUT` into the destination's encoding when the request asks for PostgreSQL's COPY text (the
 * rows pass through unparsed), else as parsed rows (each also as a {@link CapturedChange}).
 * `batch(rows, position)` gives the page its cursor.
 */
export async function* copyPages(
  db: PgPoolClient,
  tables: readonly CapturedTable[],
  from: CopyPosition,
  request: ReadRequest,
  types: PgTypeParsers,
  cursorAt: (position: CopyPosition) => JsonValue,
): AsyncGenerator<SourceBatch> {
  const encoded = request.encoding === "postgres-copy-text";
  for (let t = from.table; t < tables.length; t++) {
    const table = tables[t] as CapturedTable;
    const key = table.key.map(quote);
    let after = t === from.table ? from.after : null;
    for (;;) {
      if (request.signal.aborted) return;
      const order = `ORDER BY ${key.join(", ")} LIMIT ${request.batchSize}`;
      if (encoded) {
        const where = after ? `WHERE (${key.join(", ")}) > (${after.map((v) => literal(v)).join(", ")})` : "";
        const page = await copyPage(db, `SELECT * FROM ${table.quoted} ${where} ${order}`, table.key);
        if (!page) break;
        after = page.last;
        yield { rows: [], encoded: page.encoded, cursor: cursorAt({ table: t, after }) };
        if (page.encoded.count < request.batchSize) break;
        continue;
      }
      const where = after ? `WHERE (${key.join(", ")}) > (${key.map((_, i) => `$${i + 1}`).join(", ")})` : "";
      const { rows } = await db.query<Row>({
        text: `SELECT * FROM ${table.quoted} ${where} ${order}`,
        values: after ?? [],
        types,
      });
      if (rows.length === 0) break;
      const lastRow = rows[rows.length - 1] as Row;
      after = table.key.map((k) => lastRow[k] as JsonValue);
      const changes: CapturedChange[] = rows.map((row) => ({
        schema: table.schema,
        table: table.table,
        op: "insert",
        row,
        snapshot: true,
        key: Object.fromEntries(table.key.map((k) => [k, row[k]])),
        position: `snapshot:${t}:${JSON.stringify(table.key.map((k) => row[k] as JsonValue))}`,
      }));
      yield { rows, changes, cursor: cursorAt({ table: t, after }) } as SourceBatch;
      if (rows.length < request.batchSize) break;
    }
  }
}

function literal(value: JsonValue): string {
  const text = postgresLiteral(value);
  if (text === undefined)
    throw new Error(`a key value cannot be written as a literal: ${JSON.stringify(value)}`);
  return text;
}

/** One page by `COPY (query) TO STDOUT`, and the key of its last row (as text). */
async function copyPage(db: PgPoolClient, text: string, key: readonly string[]) {
  const { to: copyTo } = await loadCopyStreams();
  const columns = (await db.query(`SELECT * FROM (${text}) pb_page LIMIT 0`)).fields.map((f) => f.name);
  const chunks: Buffer[] = [];
  for await (const chunk of db.query(copyTo(`COPY (${text}) TO STDOUT`))) chunks.push(chunk as Buffer);
  const data = Buffer.concat(chunks);
  if (data.length === 0) return undefined;
  let count = 0;
  for (let i = data.indexOf(10); i !== -1; i = data.indexOf(10, i + 1)) count++;
  const lastLine = data.subarray(data.lastIndexOf(10, data.length - 2) + 1, data.length - 1).toString("utf8");
  const last = key.map((name) => decodeCopyField(copyField(lastLine, columns.indexOf(name))) as JsonValue);
  return {
    encoded: { encoding: "postgres-copy-text" as const, columns, chunks: [data], count },
    last,
  };
}

/** A key value as PostgreSQL's input functions read it (bytea as `\x...` hex). */
const inputText = (value: unknown): unknown =>
  Buffer.isBuffer(value)
    ? `\\x${value.toString("hex")}`
    : typeof value === "bigint"
      ? value.toString()
      : value;

/**
 * Which of `changes` (each of table `tableOf(i)`, with key `keyOf(i)`, in a transaction that
 * committed at `commitLsn(i)`) a resumed copy holds already: true for a change to a row of a
 * segment whose snapshot was taken after the change committed. PostgreSQL compares the keys with
 * the copy's own order (the columns' types and collations), one statement per segment boundary.
 */
export async function copiedAlready(
  db: PgQueryable,
  tables: readonly CapturedTable[],
  segments: readonly CopySegment[],
  changes: ReadonlyArray<{ table: number; key: Row; commitLsn: bigint }>,
): Promise<boolean[]> {
  const bounds = segments.map((s) => parseLsn(s.lsn));
  const newest = bounds.reduce((a, b) => (a > b ? a : b), 0n);
  // For each change, the segments whose start lies before its row (the last of them holds it).
  const holds = changes.map((c) =>
    segments.map((s) => s.table < c.table || (s.table === c.table && s.after === null)),
  );
  for (let s = 0; s < segments.length; s++) {
    const segment = segments[s] as CopySegment;
    if (segment.after === null) continue;
    const table = tables[segment.table] as CapturedTable;
    const candidates = changes
      .map((c, i) => ({ c, i }))
      .filter(({ c }) => c.table === segment.table && c.commitLsn < newest);
    if (candidates.length === 0) continue;
    const columns = table.key.map((k, i) => `${quote(k)} ${table.keyTypes[i] as string}`);
    const { rows } = await db.query<{ n: number[] | null }>(
      `SELECT array_agg(x.pb_n) AS n FROM json_to_recordset($1::json) AS x(pb_n int, ${columns.join(", ")})
        WHERE (${table.key.map((k) => `x.${quote(k)}`).join(", ")}) > (${table.key.map((_, i) => `$${i + 2}`).join(", ")})`,
      [
        JSON.stringify(
          candidates.map(({ c, i }) => ({
            pb_n: i,
            ...Object.fromEntries(table.key.map((k) => [k, inputText(c.key[k])])),
          })),
        ),
        ...segment.after,
      ],
    );
    for (const i of rows[0]?.n ?? []) (holds[i] as boolean[])[s] = true;
  }
  return changes.map((c, i) => {
    const holder = (holds[i] as boolean[]).lastIndexOf(true);
    return holder !== -1 && c.commitLsn < (bounds[holder] as bigint);
  });
}
