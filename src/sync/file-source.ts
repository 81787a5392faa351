/**
 * Reading records from a file by byte offset, the common part of the NDJSON and CSV sources. The
 * cursor is the byte offset after the last record of a batch (plus the file's inode), so a run
 * resumes exactly where the last committed batch ended, and an append-only file is read
 * incrementally: each run reads what was appended since.
 */
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { InvalidArgumentError } from "../core/errors.js";
import type {
  QuarantineRecord,
  ReadRequest,
  Row,
  SourceBatch,
  SourceCursor,
  SyncSource,
} from "./contracts.js";
import { SyncCursorError, SyncSourceChangedError } from "./errors.js";
import { errorInfo } from "./json.js";

/** Finds record ends in a buffer. Stateful across calls for one partial record (CSV quotes). */
export interface RecordSplitter {
  /** The index just after the next record's newline at or after `from`, or -1 when it is not complete yet. */
  next(buf: Buffer, from: number): number;
}

/** One record per line (NDJSON). */
export const lineSplitter = (): RecordSplitter => ({
  next: (buf, from) => {
    const i = buf.indexOf(10, from);
    return i < 0 ? -1 : i + 1;
  },
});

/** One record per line outside double quotes (CSV: a quoted field may hold newlines). */
export function csvSplitter(): RecordSplitter {
  let quoted = false;
  return {
    next(buf, from) {
      for (let i = from; i < buf.length; i++) {
        const b = buf[i];
        // A doubled quote toggles twice, so the state stays right without look-ahead.
        if (b === 0x22) quoted = !quoted;
        else if (b === 0x0a && !quoted) return i + 1;
      }
      return -1;
    },
  };
}

/**
 * The records of `path` from byte `start`: their bytes (newline included) and the offset after
 * them. With `tail`, a last record without a newline is returned too (the file is complete);
 * without, it is left for a later read (it may still be being written).
 */
export async function* fileRecords(
  path: string,
  start: number,
  splitter: RecordSplitter,
  tail: boolean,
): AsyncGenerator<{ bytes: Buffer; end: number }> {
  let pending: Buffer = Buffer.alloc(0);
  let base = start;
  let scan = 0;
  // A UTF-8 byte order mark (Excel's "CSV UTF-8") marks the file's encoding; it is no part of the
  // first record. Skipped at the start of the file only: inside, U+FEFF is a character.
  let atStart = start === 0;
  for await (const chunk of createReadStream(path, { start, highWaterMark: 1 << 18 })) {
    pending = pending.length ? Buffer.concat([pending, chunk as Buffer]) : (chunk as Buffer);
    if (atStart && pending.length >= 3) {
      atStart = false;
      if (pending[0] === 0xef && pending[1] === 0xbb && pending[2] === 0xbf) {
        pending = pending.subarray(3);
        base += 3;
      }
    }
    let from = 0;
    for (let end = splitter.next(pending, scan); end >= 0; end = splitter.next(pending, end)) {
      yield { bytes: pending.subarray(from, end), end: base + end };
      from = end;
    }
    scan = pending.length - from;
    pending = pending.subarray(from);
    base += from;
  }
  if (tail && pending.length > 0) yield { bytes: pending, end: base + pending.length };
}

/** Where a file source stopped: the byte offset, and the file's identity to notice a replaced file. */
interface FileCursor {
  offset: number;
  ino: number;
}

/** What a format gives {@link fileSource}. */
export interface FileFormat {
  /** `"ndjson"`, `"csv"`. */
  name: string;
  splitter(): RecordSplitter;
  /**
   * Where the data starts (after a header), and the record parser: a row, `undefined` for a record
   * that holds nothing (a blank line); it throws for a malformed record, which is quarantined.
   */
  open(path: string): Promise<{ dataStart: number; parse(bytes: Buffer): Row | undefined }>;
}

/** A {@link SyncSource} over records of a file. */
export function fileSource(path: string, format: FileFormat): SyncSource {
  if (typeof path !== "string" || path.length === 0)
    throw new InvalidArgumentError("path must be a file path", "path");
  return {
    description: `${format.name} file ${path}`,
    capabilities: { modes: ["full", "incremental"], streaming: false },

    async *read(request: ReadRequest): AsyncGenerator<SourceBatch> {
      const info = await stat(path);
      const cursor = parseFileCursor(request.cursor);
      if (cursor && (cursor.ino !== info.ino || cursor.offset > info.size)) {
        throw new SyncSourceChangedError(
          `${path} was replaced or truncated since the checkpoint (offset ${cursor.offset}); reset the pipeline to read it from the start`,
        );
      }
      const opened = await format.open(path);
      let rows: Row[] = [];
      let rejected: QuarantineRecord[] = [];
      let end = cursor?.offset ?? opened.dataStart;
      const batch = (): SourceBatch => {
        const out: SourceBatch = { rows, cursor: { offset: end, ino: info.ino } };
        if (rejected.length) out.rejected = rejected;
        rows = [];
        rejected = [];
        return out;
      };
      for await (const record of fileRecords(path, end, format.splitter(), request.mode === "full")) {
        if (request.signal.aborted) return;
        end = record.end;
        try {
          const row = opened.parse(record.bytes);
          if (row) rows.push(row);
        } catch (e) {
          rejected.push({
            reason: "parse",
            error: errorInfo(e),
            row: record.bytes.toString("utf8").trimEnd(),
          });
        }
        if (rows.length + rejected.length >= request.batchSize) yield batch();
      }
      if (rows.length + rejected.length > 0) yield batch();
    },

    close: () => Promise.resolve(),
  };
}

function parseFileCursor(cursor: SourceCursor | undefined): FileCursor | undefined {
  if (cursor === undefined || cursor === null) return undefined;
  const c = cursor as Partial<FileCursor>;
  if (typeof c.offset !== "number" || typeof c.ino !== "number") {
    throw new SyncCursorError(
      `checkpoint cursor ${JSON.stringify(cursor)} is not a file position; reset the pipeline`,
    );
  }
  return { offset: c.offset, ino: c.ino };
}
