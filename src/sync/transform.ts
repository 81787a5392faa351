/**
 * The per-row stage between source and destination: the user's transform, the optional Standard
 * Schema, and the checks a row must pass to be loadable (plain column names, a key). A row that
 * fails any of them is quarantined with the reason; the rest of the batch goes on.
 */
import type { StandardSchemaV1 } from "@standard-schema/spec";
import { formatIssuePath } from "../core/schema.js";
import type { ColumnSample, QuarantineRecord, Row } from "./contracts.js";
import { isPlainName } from "./identifiers.js";
import { errorInfo, toJsonSafe } from "./json.js";

/** What a transform gets besides the row. */
export interface TransformContext {
  pipeline: string;
  runId: string;
}

/** What a transform may return: a row, several rows, or nothing (the row is dropped). */
export type TransformResult = Row | Row[] | null | undefined;

/**
 * A plain function from a source row to destination rows. Throwing quarantines the row (with the
 * error) instead of failing the run.
 */
export type Transform = (row: Row, context: TransformContext) => TransformResult | Promise<TransformResult>;

/**
 * What happens when rows have columns the destination table lacks: `"evolve"` adds them (and
 * creates a missing table), `"freeze"` fails the run (`SYNC_SCHEMA_DRIFT`) before anything of the
 * batch is written, `"discard"` quarantines those rows.
 */
export type DriftPolicy = "evolve" | "freeze" | "discard";

/** The rows of one batch after the stage. */
export interface PreparedBatch {
  rows: Row[];
  quarantine: QuarantineRecord[];
  /** Rows the transform dropped on purpose (returned null/undefined/[]). */
  dropped: number;
}

interface PrepareOptions {
  transform: Transform | undefined;
  schema: StandardSchemaV1 | undefined;
  /** The destination's key: a row without it cannot be merged. */
  key: readonly string[];
  /** Column names become SQL identifiers (a table destination): they must be plain names. Default true. */
  sqlNames?: boolean;
  context: TransformContext;
}

const isRow = (value: unknown): value is Row =>
  typeof value === "object" && value !== null && !Array.isArray(value) && !(value instanceof Date);

/** Runs the stage over a batch. Never throws for a bad row. */
export async function prepareBatch(input: readonly Row[], options: PrepareOptions): Promise<PreparedBatch> {
  const out: PreparedBatch = { rows: [], quarantine: [], dropped: 0 };
  const goodNames = new Set<string>();
  const quarantine = (reason: string, error: unknown, row: unknown) =>
    out.quarantine.push({ reason, error: errorInfo(error), row: toJsonSafe(row) });

  for (const source of input) {
    let produced: TransformResult;
    if (options.transform) {
      try {
        produced = await options.transform(source, options.context);
      } catch (e) {
        quarantine("transform", e, source);
        continue;
      }
    } else {
      produced = source;
    }
    if (produced === null || produced === undefined) {
      out.dropped++;
      continue;
    }
    const list = Array.isArray(produced) ? produced : [produced];
    if (list.length === 0) out.dropped++;
    for (let row of list) {
      if (!isRow(row)) {
        quarantine(
          "transform",
          new Error(
            `the transform returned ${Array.isArray(row) ? "an array" : typeof row}, not a row object`,
          ),
          source,
        );
        continue;
      }
      if (options.schema) {
        const result = await options.schema["~standard"].validate(row);
        if (result.issues) {
          const detail = result.issues
            .slice(0, 3)
            .map((i) => `${formatIssuePath(i.path) || "(row)"}: ${i.message}`)
            .join("; ");
          quarantine(
            "schema",
            { code: "SCHEMA_INVALID", message: `row does not match the schema: ${detail}` },
            row,
          );
          continue;
        }
        if (!isRow(result.value)) {
          quarantine("schema", new Error("the schema's output is not a row object"), row);
          continue;
        }
        row = result.value;
      }
      const badName = options.sqlNames === false ? undefined : badColumn(row, goodNames);
      if (badName !== undefined) {
        quarantine(
          "column",
          new Error(`column name ${JSON.stringify(badName)} is not a plain SQL name`),
          row,
        );
        continue;
      }
      const missing = options.key.find((k) => row[k] === null || row[k] === undefined);
      if (missing !== undefined) {
        quarantine("key", new Error(`key column ${JSON.stringify(missing)} is missing or null`), row);
        continue;
      }
      out.rows.push(row);
    }
  }
  return out;
}

function badColumn(row: Row, good: Set<string>): string | undefined {
  for (const name in row) {
    if (good.has(name)) continue;
    if (!isPlainName(name)) return name;
    good.add(name);
  }
  return undefined;
}

/** The batch's columns missing from `known`, each with its first non-null value as a type sample. */
export function unknownColumns(rows: readonly Row[], known: ReadonlySet<string> | undefined): ColumnSample[] {
  const found = new Map<string, unknown>();
  for (const row of rows) {
    for (const name in row) {
      if (known?.has(name)) continue;
      const value = row[name];
      if (
        !found.has(name) ||
        ((found.get(name) === null || found.get(name) === undefined) && value != null)
      ) {
        found.set(name, value);
      }
    }
  }
  return [...found].map(([name, sample]) => ({ name, sample }));
}

/** `"discard"`: moves rows with columns outside `known` to quarantine. */
export function discardDrift(batch: PreparedBatch, known: ReadonlySet<string>): void {
  const keep: Row[] = [];
  for (const row of batch.rows) {
    const extra = Object.keys(row).filter((c) => !known.has(c));
    if (extra.length === 0) keep.push(row);
    else {
      batch.quarantine.push({
        reason: "drift",
        error: { code: "SYNC_SCHEMA_DRIFT", message: `columns not in the destination: ${extra.join(", ")}` },
        row: toJsonSafe(row),
      });
    }
  }
  batch.rows = keep;
}
