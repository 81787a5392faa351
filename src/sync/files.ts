/**
 * File sources (NDJSON, CSV) and the NDJSON destination. No driver: `node:fs` streams.
 */
import { InvalidArgumentError } from "../core/errors.js";
import type { Row, SyncSource } from "./contracts.js";
import { csvSplitter, fileRecords, fileSource, lineSplitter } from "./file-source.js";
import { setField } from "../core/fields.js";
import { parseExactRow } from "./json.js";

/** Options of {@link ndjsonSource}. */
export interface NdjsonSourceOptions {
  /** The file: one JSON object per line. */
  path: string;
}

/**
 * Reads a newline-delimited JSON file, one object per line. Incremental runs read what was
 * appended since the last one (a log); a line still being written (no newline yet) waits for the
 * next run. A line that is not a JSON object is quarantined.
 *
 * @example ndjsonSource({ path: "exports/orders.ndjson" })
 */
export function ndjsonSource(options: NdjsonSourceOptions): SyncSource {
  return fileSource(options.path, {
    name: "ndjson",
    splitter: lineSplitter,
    open: () =>
      Promise.resolve({
        dataStart: 0,
        parse(bytes) {
          const text = bytes.toString("utf8").trim();
          if (text === "") return undefined;
          const value = parseExactRow(text);
          if (typeof value !== "object" || value === null || Array.isArray(value)) {
            throw new Error(`line is JSON but not an object: ${text.slice(0, 80)}`);
          }
          return value as Row;
        },
      }),
  });
}

/** Options of {@link csvSource}. */
export interface CsvSourceOptions {
  path: string;
  /** Field separator. Default `","`. */
  delimiter?: string;
  /**
   * Column names. Default: the file's first record (its header). Give them to rename header
   * columns into plain names (`["order_id", "total"]`), or for a file without a header (`header: false`).
   */
  columns?: readonly string[];
  /** The first record is a header. Default true. */
  header?: boolean;
  /** A field with exactly this text becomes `null` (e.g. `""` or `"NULL"`). Default: none, all fields are strings. */
  nullValue?: string;
}

/** Splits one CSV record (RFC 4180: quoted fields, doubled quotes, newlines inside quotes). */
export function parseCsvRecord(text: string, delimiter: string): string[] {
  const fields: string[] = [];
  const line = text.replace(/\r?\n$/, "");
  let i = 0;
  for (;;) {
    if (line[i] === '"') {
      let value = "";
      i++;
      for (;;) {
        const q = line.indexOf('"', i);
        if (q < 0) throw new Error("unterminated quoted field");
        value += line.slice(i, q);
        if (line[q + 1] === '"') {
          value += '"';
          i = q + 2;
        } else {
          i = q + 1;
          break;
        }
      }
      fields.push(value);
      if (i >= line.length) return fields;
      if (!line.startsWith(delimiter, i)) throw new Error(`text after a closing quote at position ${i}`);
      i += delimiter.length;
    } else {
      const d = line.indexOf(delimiter, i);
      if (d < 0) {
        fields.push(line.slice(i));
        return fields;
      }
      fields.push(line.slice(i, d));
      i = d + delimiter.length;
    }
  }
}

/**
 * Reads a CSV file (RFC 4180) as rows of strings keyed by the header. Incremental runs read
 * records appended since the last one. A record with the wrong number of fields is quarantined.
 *
 * @example csvSource({ path: "exports/orders.csv", nullValue: "" })
 */
export function csvSource(options: CsvSourceOptions): SyncSource {
  const delimiter = options.delimiter ?? ",";
  if (delimiter.length !== 1 || delimiter === '"' || delimiter === "\n" || delimiter === "\r") {
    throw new InvalidArgumentError(
      "delimiter must be one character other than a quote or a newline",
      "delimiter",
    );
  }
  const header = options.header ?? true;
  if (!header && !options.columns)
    throw new InvalidArgumentError("a CSV without a header needs columns", "columns");
  return fileSource(options.path, {
    name: "csv",
    splitter: csvSplitter,
    async open(path) {
      let columns = options.columns ? [...options.columns] : undefined;
      let dataStart = 0;
      if (header) {
        for await (const record of fileRecords(path, 0, csvSplitter(), true)) {
          columns ??= parseCsvRecord(record.bytes.toString("utf8"), delimiter);
          dataStart = record.end;
          break;
        }
      }
      const names = columns ?? [];
      return {
        dataStart,
        parse(bytes) {
          const text = bytes.toString("utf8");
          if (text.trim() === "") return undefined;
          const fields = parseCsvRecord(text, delimiter);
          if (fields.length !== names.length) {
            throw new Error(`record has ${fields.length} fields, the header ${names.length}`);
          }
          const row: Row = {};
          names.forEach((name, i) => {
            const value = fields[i] as string;
            setField(
              row,
              name,
              options.nullValue !== undefined && value === options.nullValue ? null : value,
            );
          });
          return row;
        },
      };
    },
  });
}
