import { systemClock, type Clock } from "./clock.js";
import { createEnvelope, type CloudEvent, type CloudEventExtensionValue } from "./envelope.js";
import { InvalidArgumentError, UnknownEventVersionError } from "./errors.js";
import {
  isStandardSchema,
  parseWithSchema,
  parseWithSchemaSyncFirst,
  type SchemaInput,
  type SchemaOutput,
  type StandardSchemaV1,
} from "./schema.js";

/**
 * Turns the data of version `n` into the data of version `n + 1`; may be async. Annotate the
 * parameter with the old version's type: `(v1: OrderCreatedV1) => ({ ...v1, currency: "EUR" })`.
 */
// A method type makes the parameter bivariant, so `(v1: OrderV1) => ...` is accepted as an Upcaster.
export type Upcaster = { bivarianceHack(data: unknown): unknown }["bivarianceHack"];

/** Options of {@link defineEvent}. */
export interface EventDefinitionOptions<S extends StandardSchemaV1> {
  /** The current version of the event's data: a positive integer, bumped on breaking changes. */
  version: number;
  /** Any Standard Schema v1 validator (zod 4, valibot, arktype, ...) for the current version. */
  schema: S;
  /** Upcasters keyed by the version they upgrade *from*: `{ 1: v1ToV2, 2: v2ToV3 }`. */
  upcast?: Readonly<Record<number, Upcaster>>;
  /** The default CloudEvents `source` of events built with this definition. */
  source?: string;
  /** What the event means, for the catalogue and AsyncAPI export. */
  description?: string;
}

/** Attributes for {@link EventDefinition.toEnvelope}; `type`, `dataversion` and `datacontenttype` come from the definition. */
export interface ToEnvelopeOptions {
  /** Required unless the definition has a default `source`. */
  source?: string;
  subject?: string;
  /** Defaults to a new UUIDv7. */
  id?: string;
  /** Defaults to the clock's now. */
  time?: string | Date;
  dataschema?: string;
  traceparent?: string;
  tracestate?: string;
  correlationid?: string;
  causationid?: string;
  /** Further extension attributes (lowercase `a-z0-9` names, at most 20 characters). */
  extensions?: Record<string, CloudEventExtensionValue | undefined>;
}

/** A typed, versioned event contract made by {@link defineEvent}. `T` is the data after validation, `In` what it accepts. */
export interface EventDefinition<T = unknown, In = T> {
  /** The CloudEvents `type`, e.g. `"order.created"`. */
  readonly type: string;
  /** The current data version, written to `dataversion`. */
  readonly version: number;
  /**
   * The data versions this definition can read, ascending: the current one and every older one
   * with an unbroken chain of upcasters to it. The contracts check compares these between releases.
   */
  readonly versions: readonly number[];
  /** The schema of the current version. */
  readonly schema: StandardSchemaV1<In, T>;
  /** The default `source`, if the definition has one. */
  readonly source: string | undefined;
  /** What the event means. */
  readonly description: string | undefined;
  /** Validates current-version data; throws {@link SchemaValidationError} (`SCHEMA_INVALID`). */
  parse(data: unknown): Promise<T>;
  /** Runs the upcasters from `fromVersion` to the current version (no validation). */
  upcast(data: unknown, fromVersion: number): Promise<unknown>;
  /**
   * Reads the data of a received event of this type: upcasts from its `dataversion` (absent means
   * 1) to the current version, then validates. Throws {@link UnknownEventVersionError}
   * (`EVENT_VERSION_UNKNOWN`) or {@link SchemaValidationError} (`SCHEMA_INVALID`).
   */
  decode(event: CloudEvent): Promise<T>;
  /**
   * Validates `data` and wraps the validated value in a CloudEvent with this definition's `type`,
   * `dataversion` and `datacontenttype: "application/json"`.
   */
  toEnvelope(data: In, options?: ToEnvelopeOptions, clock?: Clock): Promise<CloudEvent<T>>;
}

/** The validated data type of an event definition: `EventData<typeof OrderCreated>`. */
export type EventData<D> = D extends { parse(data: unknown): Promise<infer T> } ? T : never;

const TYPE_NAME = /^[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*$/;

/**
 * Defines an event contract: its type name, current version, schema and upcasters from older
 * versions. Type names are dot-separated segments of `A-Z a-z 0-9 _ -` (`*` and `#` are kept for
 * subscription patterns).
 *
 * @example
 * const OrderCreated = defineEvent("order.created", {
 *   version: 2,
 *   schema: z.object({ orderId: z.string(), total: z.number(), currency: z.string() }),
 *   upcast: { 1: (v1: { orderId: string; total: number }) => ({ ...v1, currency: "EUR" }) },
 * });
 * const ev = await OrderCreated.toEnvelope(data, { source: "/shop" });
 * const order = await OrderCreated.decode(received); // v1 events are upcast, then validated
 */
export function defineEvent<S extends StandardSchemaV1>(
  type: string,
  options: EventDefinitionOptions<S>,
): EventDefinition<SchemaOutput<S>, SchemaInput<S>> {
  if (typeof type !== "string" || !TYPE_NAME.test(type)) {
    throw new InvalidArgumentError(
      `event type ${JSON.stringify(type)} must be dot-separated segments of letters, digits, "_" and "-" (e.g. "order.created")`,
      "type",
    );
  }
  const { version, schema, source, description } = options;
  if (!Number.isSafeInteger(version) || version < 1) {
    throw new InvalidArgumentError(
      `${type}: version must be a positive integer, got ${version}`,
      "options.version",
    );
  }
  if (!isStandardSchema(schema)) {
    throw new InvalidArgumentError(
      `${type}: schema must be a Standard Schema v1 validator (zod 4, valibot, arktype)`,
      "options.schema",
    );
  }
  if (source !== undefined && (typeof source !== "string" || source.length === 0)) {
    throw new InvalidArgumentError(`${type}: source must be a non-empty string`, "options.source");
  }
  const upcasters = readUpcasters(type, version, options.upcast);
  const context = { eventType: type, version };

  const unknownVersion = (found: number, why: string) =>
    new UnknownEventVersionError(`${type}: cannot read dataversion ${found}: ${why}`, type, found, version);

  const parse = (data: unknown) => parseWithSchema(schema, data, context);
  /** `parse` without a promise when the schema is synchronous: it runs for every message. */
  const check = (data: unknown) => parseWithSchemaSyncFirst(schema, data, context);

  async function upcast(data: unknown, fromVersion: number): Promise<unknown> {
    if (!Number.isSafeInteger(fromVersion) || fromVersion < 1) {
      throw unknownVersion(fromVersion, "versions are positive integers");
    }
    if (fromVersion > version) throw unknownVersion(fromVersion, `this code knows versions up to ${version}`);
    let current = data;
    for (let v = fromVersion; v < version; v++) {
      const step = upcasters.get(v);
      if (step === undefined) throw unknownVersion(fromVersion, `no upcaster from v${v} to v${v + 1}`);
      current = await step(current);
    }
    return current;
  }

  /** toEnvelope without a promise when the schema is synchronous. */
  function envelopeNow(
    data: SchemaInput<S>,
    opts: ToEnvelopeOptions = {},
    clock: Clock = systemClock,
  ): CloudEvent<SchemaOutput<S>> | Promise<CloudEvent<SchemaOutput<S>>> {
    const eventSource = opts.source ?? source;
    if (eventSource === undefined) {
      throw new InvalidArgumentError(
        `${type}: no source; pass options.source or set one in defineEvent`,
        "options.source",
      );
    }
    const wrap = (value: SchemaOutput<S>) =>
      createEnvelope(
        {
          type,
          source: eventSource,
          data: value,
          datacontenttype: "application/json",
          dataversion: version,
          subject: opts.subject,
          id: opts.id,
          time: opts.time,
          dataschema: opts.dataschema,
          traceparent: opts.traceparent,
          tracestate: opts.tracestate,
          correlationid: opts.correlationid,
          causationid: opts.causationid,
          extensions: opts.extensions,
        },
        clock,
      );
    const checked = check(data);
    return checked instanceof Promise ? checked.then(wrap) : wrap(checked);
  }

  /** decode without a promise when no upcasting is needed and the schema is synchronous. */
  function decodeNow(event: CloudEvent): SchemaOutput<S> | Promise<SchemaOutput<S>> {
    if (event.type !== type) {
      throw new InvalidArgumentError(
        `cannot decode a ${JSON.stringify(event.type)} event as ${type}`,
        "event.type",
      );
    }
    const raw: unknown = event.dataversion ?? 1;
    const found = typeof raw === "number" ? raw : Number(raw);
    // The current version needs no upcasting (the common case: no async step).
    return found === version ? check(event.data) : upcast(event.data, found).then(check);
  }

  const definition: EventDefinition<SchemaOutput<S>, SchemaInput<S>> = {
    type,
    version,
    versions: readableVersions(version, upcasters),
    schema,
    source,
    description,
    parse,
    upcast,
    // async: a throw arrives as a rejection, as the contract says.
    decode: async (event) => decodeNow(event),
    toEnvelope: async (data, opts, clock) => envelopeNow(data, opts, clock),
  };
  syncFirstOps.set(definition, { decode: decodeNow, toEnvelope: envelopeNow });
  return definition;
}

/** A definition's decode and toEnvelope that may return their value, not a promise, and may throw. */
interface SyncFirst<T, In> {
  decode(event: CloudEvent): T | Promise<T>;
  toEnvelope(data: In, options?: ToEnvelopeOptions, clock?: Clock): CloudEvent<T> | Promise<CloudEvent<T>>;
}
const syncFirstOps = new WeakMap<object, SyncFirst<unknown, never>>();

/**
 * Internal, for the bus's per-message path: `def.decode` / `def.toEnvelope` without a promise when
 * nothing in them is asynchronous (they may throw instead of rejecting). Falls back to the
 * promise-returning methods for definitions not made by {@link defineEvent}.
 */
export function syncFirst<T, In>(def: EventDefinition<T, In>): SyncFirst<T, In> {
  return (
    (syncFirstOps.get(def) as SyncFirst<T, In> | undefined) ?? {
      decode: (event) => def.decode(event),
      toEnvelope: (data, options, clock) => def.toEnvelope(data, options, clock),
    }
  );
}

/** The versions with an unbroken upcaster chain to `version`, and `version` itself, ascending. */
function readableVersions(version: number, upcasters: ReadonlyMap<number, Upcaster>): number[] {
  let oldest = version;
  while (oldest > 1 && upcasters.has(oldest - 1)) oldest--;
  return Array.from({ length: version - oldest + 1 }, (_, i) => oldest + i);
}

function readUpcasters(
  type: string,
  version: number,
  upcast: EventDefinitionOptions<StandardSchemaV1>["upcast"],
) {
  const upcasters = new Map<number, Upcaster>();
  for (const [key, step] of Object.entries(upcast ?? {})) {
    const from = Number(key);
    if (!Number.isInteger(from) || from < 1 || from >= version) {
      throw new InvalidArgumentError(
        `${type}: upcast keys are the versions they upgrade from, integers 1..${version - 1}; got ${JSON.stringify(key)}`,
        `options.upcast.${key}`,
      );
    }
    if (typeof step !== "function") {
      throw new InvalidArgumentError(`${type}: upcast[${key}] must be a function`, `options.upcast.${key}`);
    }
    upcasters.set(from, step);
  }
  return upcasters;
}
