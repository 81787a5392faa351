import * as v from "valibot";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { isPatchbayError, type SchemaValidationError } from "./errors.js";
import {
  formatIssuePath,
  isStandardSchema,
  parseWithSchema,
  parseWithSchemaSyncFirst,
  type StandardSchemaV1,
} from "./schema.js";

async function schemaError(promise: Promise<unknown>): Promise<SchemaValidationError> {
  try {
    await promise;
  } catch (e) {
    if (isPatchbayError(e, "SCHEMA_INVALID")) return e;
    throw e;
  }
  throw new Error("expected a SCHEMA_INVALID error");
}

const context = { eventType: "order.created", version: 1 };

describe("formatIssuePath", () => {
  it("flattens keys, indexes and path segments", () => {
    expect(formatIssuePath(["items", 0, { key: "sku" }])).toBe("items[0].sku");
    expect(formatIssuePath(["odd key", "x"])).toBe('["odd key"].x');
    expect(formatIssuePath(undefined)).toBe("");
    expect(formatIssuePath([Symbol("s")])).toBe("[Symbol(s)]");
  });
});

describe("isStandardSchema", () => {
  it("recognises zod and valibot schemas and nothing else", () => {
    expect(isStandardSchema(z.string())).toBe(true);
    expect(isStandardSchema(v.string())).toBe(true);
    expect(isStandardSchema({ parse: () => 1 })).toBe(false);
    expect(isStandardSchema(null)).toBe(false);
  });
});

describe("parseWithSchema", () => {
  it("returns the schema's output", async () => {
    const schema = z.object({ qty: z.coerce.number() });
    await expect(parseWithSchema(schema, { qty: "3" }, context)).resolves.toEqual({ qty: 3 });
  });

  it("awaits async validators", async () => {
    const asyncSchema: StandardSchemaV1<unknown, string> = {
      "~standard": {
        version: 1,
        vendor: "test",
        validate: (value) =>
          Promise.resolve(
            typeof value === "string" ? { value } : { issues: [{ message: "not a string", path: ["x"] }] },
          ),
      },
    };
    await expect(parseWithSchema(asyncSchema, "ok", context)).resolves.toBe("ok");
    const err = await schemaError(parseWithSchema(asyncSchema, 1, context));
    expect(err.issues).toEqual([{ path: "x", message: "not a string" }]);
  });

  it("throws SCHEMA_INVALID with flattened issues and the first three in the message", async () => {
    const schema = v.object({ a: v.string(), b: v.string(), c: v.string(), d: v.string() });
    const err = await schemaError(parseWithSchema(schema, { a: 1, b: 2, c: 3, d: 4 }, context));
    expect(err.eventType).toBe("order.created");
    expect(err.version).toBe(1);
    expect(err.issues.map((i) => i.path)).toEqual(["a", "b", "c", "d"]);
    expect(err.message).toMatch(
      /^order\.created v1: data does not match the schema: a: .*; b: .*; c: .* \(and 1 more\)$/,
    );
    expect(err.retryable).toBe(false);
  });
});

describe("parseWithSchemaSyncFirst", () => {
  it("answers a synchronous schema without a promise, and throws its issues at once", () => {
    const schema = z.object({ qty: z.coerce.number() });
    expect(parseWithSchemaSyncFirst(schema, { qty: "3" }, context)).toEqual({ qty: 3 });
    expect(() => parseWithSchemaSyncFirst(schema, { qty: "x" }, context)).toThrow(/order\.created v1: data/);
  });

  it("returns a promise for an asynchronous schema", async () => {
    const asyncSchema: StandardSchemaV1<unknown, string> = {
      "~standard": {
        version: 1,
        vendor: "test",
        validate: (value) => Promise.resolve({ value: String(value) }),
      },
    };
    const result = parseWithSchemaSyncFirst(asyncSchema, 7, context);
    expect(result).toBeInstanceOf(Promise);
    await expect(result).resolves.toBe("7");
    // A thenable that is not a native promise (another library's, another realm's) is awaited too.
    const thenable: StandardSchemaV1<unknown, string> = {
      "~standard": {
        version: 1,
        vendor: "test",
        validate: (value) =>
          ({ then: (ok: (r: { value: string }) => void) => ok({ value: `t${String(value)}` }) }) as never,
      },
    };
    const viaThenable = parseWithSchemaSyncFirst(thenable, 8, context);
    expect(viaThenable).toBeInstanceOf(Promise);
    await expect(viaThenable).resolves.toBe("t8");
  });
});
