/**
 * The event catalogue: which events a system speaks (every version it reads), on which
 * channels, who consumes them and which go out as webhooks. The AsyncAPI export and the
 * breaking-change check read it; it never changes how the bus runs.
 */
import type { EventDefinition } from "../core/events.js";
import type { StandardSchemaV1 } from "../core/schema.js";
import { ContractError } from "./errors.js";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyEvent = EventDefinition<any, any>;

/** Turns a schema into JSON Schema (draft-07) when it does not implement Standard JSON Schema itself. */
export type JsonSchemaConverter = (schema: StandardSchemaV1, event: AnyEvent) => Record<string, unknown>;

/** The transports whose channels the export describes. */
export interface CatalogueTransports {
  /** The store's own queue (SQLite, PostgreSQL): one queue per consumer group, routed by type. */
  local?: boolean | { host?: string };
  /** RabbitMQ: a topic exchange `<prefix>`, routing key = event type, queue `<prefix>.group.<group>`. */
  rabbitmq?: { prefix?: string; host?: string };
  /** NATS JetStream: the stream `<prefix>`, subject `<prefix>.ev.<type>`, a durable pull consumer per group. */
  nats?: { prefix?: string; host?: string };
}

/** A consumer group and what it reads. */
export interface CatalogueConsumer {
  group: string;
  /** Event types (or definitions) the group subscribes to. */
  events: readonly (string | AnyEvent)[];
  /** What the group does, for the document. */
  description?: string;
}

/** Options of {@link defineCatalogue}. */
export interface CatalogueOptions {
  /** The system's name, the AsyncAPI `info.title`. */
  title: string;
  /** The catalogue's own release (semver-ish), the AsyncAPI `info.version`. Default `"1.0.0"`. */
  version?: string;
  description?: string;
  events: readonly AnyEvent[];
  /** Default: `{ local: true }`. */
  transports?: CatalogueTransports;
  consumers?: readonly CatalogueConsumer[];
  /** Event types (or definitions) sent to webhook endpoints. */
  webhooks?: readonly (string | AnyEvent)[];
  /** For schema libraries without Standard JSON Schema (valibot: `toJsonSchema` of `@valibot/to-json-schema`). */
  jsonSchema?: JsonSchemaConverter;
}

/** A catalogue made by {@link defineCatalogue}. */
export interface Catalogue {
  readonly title: string;
  readonly version: string;
  readonly description: string | undefined;
  readonly events: readonly AnyEvent[];
  readonly transports: CatalogueTransports;
  readonly consumers: readonly {
    group: string;
    events: readonly string[];
    description?: string | undefined;
  }[];
  readonly webhooks: readonly string[];
  readonly jsonSchema: JsonSchemaConverter | undefined;
}

const GROUP = /^[A-Za-z0-9_.-]{1,100}$/;
const typeOf = (e: string | AnyEvent) => (typeof e === "string" ? e : e.type);

/**
 * Declares the catalogue of a system's events. Throws `CONTRACT_INVALID` for a type defined
 * twice, or a consumer or webhook naming a type the catalogue does not define.
 *
 * @example
 * const catalogue = defineCatalogue({
 *   title: "Shop", events: [OrderCreated, OrderPaid],
 *   transports: { rabbitmq: { prefix: "shop" } },
 *   consumers: [{ group: "order-saga", events: [OrderCreated] }],
 *   webhooks: [OrderPaid],
 * });
 */
export function defineCatalogue(options: CatalogueOptions): Catalogue {
  const invalid = (message: string) => new ContractError("CONTRACT_INVALID", message);
  if (typeof options.title !== "string" || options.title === "")
    throw invalid("title must be a non-empty string");
  const types = new Set<string>();
  for (const event of options.events) {
    if (types.has(event.type)) throw invalid(`event type ${event.type} is defined twice in the catalogue`);
    types.add(event.type);
  }
  const known = (type: string, where: string) => {
    if (!types.has(type)) throw invalid(`${where} names ${type}, which the catalogue does not define`);
    return type;
  };
  const groups = new Set<string>();
  const consumers = (options.consumers ?? []).map((c) => {
    if (!GROUP.test(c.group))
      throw invalid(`consumer group ${JSON.stringify(c.group)} is not a valid group name`);
    if (groups.has(c.group)) throw invalid(`consumer group ${c.group} is listed twice`);
    groups.add(c.group);
    const events = c.events.map((e) => known(typeOf(e), `consumer group ${c.group}`));
    return { group: c.group, events, description: c.description };
  });
  return {
    title: options.title,
    version: options.version ?? "1.0.0",
    description: options.description,
    events: [...options.events],
    transports: options.transports ?? { local: true },
    consumers,
    webhooks: (options.webhooks ?? []).map((e) => known(typeOf(e), "webhooks")),
    jsonSchema: options.jsonSchema,
  };
}
