import type { AsyncApiDocument } from "./asyncapi.js";
import type { Catalogue } from "./catalogue.js";
import { ContractError } from "./errors.js";
import { eventJsonSchema } from "./json-schema.js";

/** What the check compares: per event type its version, the versions it reads and its JSON Schema. */
export interface ContractSnapshot {
  events: Map<string, { version: number; reads: number[]; schema: Record<string, unknown> }>;
  /** Consumer group -> event types; `undefined` when the source declares no consumers. */
  consumers: Map<string, string[]> | undefined;
  webhooks: Set<string>;
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** A catalogue, or an AsyncAPI document exported from one, as a {@link ContractSnapshot}. */
export function snapshotOf(source: Catalogue | AsyncApiDocument): ContractSnapshot {
  if ("asyncapi" in source) return fromDocument(source);
  const catalogue = source;
  return {
    events: new Map(
      catalogue.events.map((e) => [
        e.type,
        { version: e.version, reads: [...e.versions], schema: eventJsonSchema(catalogue, e) },
      ]),
    ),
    consumers:
      catalogue.consumers.length === 0
        ? undefined
        : new Map(catalogue.consumers.map((c) => [c.group, [...c.events]])),
    webhooks: new Set(catalogue.webhooks),
  };
}

function fromDocument(doc: AsyncApiDocument): ContractSnapshot {
  const invalid = (why: string) =>
    new ContractError("CONTRACT_INVALID", `not a contract exported by Patchbay: ${why}`);
  if (!/^3\./.test(String(doc.asyncapi))) throw invalid(`asyncapi ${String(doc.asyncapi)} is not 3.x`);
  const components = isObject(doc.components) ? doc.components : {};
  const messages = isObject(components.messages) ? components.messages : {};
  const events: ContractSnapshot["events"] = new Map();
  for (const [name, message] of Object.entries(messages)) {
    if (!isObject(message) || message["x-patchbay-version"] === undefined) continue; // webhook views
    const version = message["x-patchbay-version"];
    const reads = message["x-patchbay-reads"];
    if (typeof version !== "number" || !Array.isArray(reads) || !isObject(message.payload)) {
      throw invalid(`message ${name} lacks x-patchbay-version, x-patchbay-reads or a payload`);
    }
    events.set(typeof message.name === "string" ? message.name : name, {
      version,
      reads: reads.map(Number),
      schema: message.payload,
    });
  }
  const declared = doc["x-patchbay-consumers"];
  const consumers = isObject(declared)
    ? new Map(Object.entries(declared).map(([g, types]) => [g, (types as unknown[]).map(String)]))
    : undefined;
  const webhooks = new Set<string>();
  for (const op of Object.values(isObject(doc.operations) ? doc.operations : {})) {
    if (isObject(op) && typeof op["x-patchbay-webhook"] === "string") webhooks.add(op["x-patchbay-webhook"]);
  }
  return { events, consumers: consumers && consumers.size > 0 ? consumers : undefined, webhooks };
}
