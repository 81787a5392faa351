import type { StandardJSONSchemaV1 } from "@standard-schema/spec";
import type { Catalogue } from "./catalogue.js";
import { ContractError } from "./errors.js";

type Event = Catalogue["events"][number];

/**
 * The JSON Schema (draft-07) of the data an event's current version accepts, from the schema
 * library's own converter: Standard JSON Schema (`~standard.jsonSchema`, zod 4, arktype,
 * valibot through `toStandardJsonSchema`), else the catalogue's `jsonSchema` converter.
 */
export function eventJsonSchema(catalogue: Catalogue, event: Event): Record<string, unknown> {
  const props = event.schema["~standard"] as Partial<StandardJSONSchemaV1.Props>;
  let schema: Record<string, unknown>;
  try {
    if (props.jsonSchema && typeof props.jsonSchema.input === "function") {
      schema = props.jsonSchema.input({ target: "draft-07" });
    } else if (catalogue.jsonSchema) {
      schema = catalogue.jsonSchema(event.schema, event);
    } else {
      throw new ContractError(
        "CONTRACT_SCHEMA_UNCONVERTIBLE",
        `${event.type}: its ${props.vendor ?? "unknown"} schema has no JSON Schema converter; ` +
          "use a library with Standard JSON Schema (zod 4, arktype), wrap it (valibot: toStandardJsonSchema " +
          "from @valibot/to-json-schema) or give the catalogue a jsonSchema converter",
        { eventType: event.type },
      );
    }
  } catch (cause) {
    if (cause instanceof ContractError) throw cause;
    throw new ContractError(
      "CONTRACT_SCHEMA_UNCONVERTIBLE",
      `${event.type}: the schema library could not express its schema as JSON Schema: ${(cause as Error).message}`,
      { eventType: event.type, cause },
    );
  }
  const { $schema: _dialect, ...rest } = schema;
  return rest;
}
