import type { StandardSchemaV1 } from "@standard-schema/spec";
import { SchemaValidationError, type SchemaIssue } from "./errors.js";

export type { StandardSchemaV1 } from "@standard-schema/spec";
export type { SchemaIssue } from "./errors.js";

/** The output type of a Standard Schema (what a successful validation returns). */
export type SchemaOutput<S extends StandardSchemaV1> = StandardSchemaV1.InferOutput<S>;
/** The input type of a Standard Schema (what it accepts). */
export type SchemaInput<S extends StandardSchemaV1> = StandardSchemaV1.InferInput<S>;

/** True when `value` implements Standard Schema v1 (zod 4, valibot, arktype, ...). */
export function isStandardSchema(value: unknown): value is StandardSchemaV1 {
  if ((typeof value !== "object" && typeof value !== "function") || value === null) return false;
  const props = (value as Partial<StandardSchemaV1>)["~standard"];
  return (
    typeof props === "object" && props !== null && props.version === 1 && typeof props.validate === "function"
  );
}

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

/** Flattens a Standard Schema issue path to a string: `["items", 0, "sku"]` -> `"items[0].sku"`. */
export function formatIssuePath(path: StandardSchemaV1.Issue["path"]): string {
  let out = "";
  for (const segment of path ?? []) {
    const key = typeof segment === "object" ? segment.key : segment;
    if (typeof key === "number") out += `[${key}]`;
    else if (typeof key === "symbol") out += `[${key.toString()}]`;
    else if (IDENTIFIER.test(key)) out += out === "" ? key : `.${key}`;
    else out += `[${JSON.stringify(key)}]`;
  }
  return out;
}

/** Where the data that failed came from, for the error's fields and message. */
export interface SchemaContext {
  eventType: string;
  version: number;
}

const SHOWN_ISSUES = 3;

/**
 * Validates `value` with any Standard Schema (sync or async) and returns the schema's output.
 * Throws {@link SchemaValidationError} (`SCHEMA_INVALID`) listing the issues with flattened paths.
 *
 * @example const order = await parseWithSchema(OrderSchema, body, { eventType: "order.created", version: 1 });
 */
export async function parseWithSchema<S extends StandardSchemaV1>(
  schema: S,
  value: unknown,
  context: SchemaContext,
): Promise<SchemaOutput<S>> {
  return parseWithSchemaSyncFirst(schema, value, context);
}

/**
 * {@link parseWithSchema} without a promise when the schema validates synchronously (most do):
 * for hot paths that run once per message. Throws, or rejects, the same errors.
 */
export function parseWithSchemaSyncFirst<S extends StandardSchemaV1>(
  schema: S,
  value: unknown,
  context: SchemaContext,
): SchemaOutput<S> | Promise<SchemaOutput<S>> {
  const result = schema["~standard"].validate(value);
  // Any thenable counts as asynchronous (as `await` would treat it); the answer is a native promise.
  return typeof (result as Partial<PromiseLike<unknown>>).then === "function"
    ? Promise.resolve(result).then((r) => outcome(r, context))
    : outcome(result as StandardSchemaV1.Result<SchemaOutput<S>>, context);
}

function outcome<T>(result: StandardSchemaV1.Result<T>, context: SchemaContext): T {
  if (!result.issues) return result.value;
  const issues: SchemaIssue[] = result.issues.map((issue) => ({
    path: formatIssuePath(issue.path),
    message: issue.message,
  }));
  const shown = issues
    .slice(0, SHOWN_ISSUES)
    .map((issue) => `${issue.path === "" ? "(root)" : issue.path}: ${issue.message}`)
    .join("; ");
  const more = issues.length > SHOWN_ISSUES ? ` (and ${issues.length - SHOWN_ISSUES} more)` : "";
  throw new SchemaValidationError(
    `${context.eventType} v${context.version}: data does not match the schema: ${shown}${more}`,
    context.eventType,
    context.version,
    issues,
  );
}
