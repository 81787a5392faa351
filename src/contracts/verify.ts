/**
 * Contract tests in a few lines: a producer's samples checked against the catalogue, a consumer
 * shown to handle every version of an event it claims to read (through the upcasters).
 */
import { createEnvelope, type CloudEvent } from "../core/envelope.js";
import type { EventDefinition } from "../core/events.js";
import type { Catalogue } from "./catalogue.js";
import { ContractError } from "./errors.js";

/** One thing a producer sends: data of an event type, or the whole CloudEvent. */
export type ProducerSample = { type: string; data: unknown; dataversion?: number } | CloudEvent;

const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

/** An event definition, as far as inferring its data type needs. */
type Typed<T> = Pick<EventDefinition<T>, "type" | "parse">;

function definitionOf<T>(catalogue: Catalogue, type: string | Typed<T>) {
  const name = typeof type === "string" ? type : type.type;
  const def = catalogue.events.find((e) => e.type === name);
  if (def === undefined) {
    throw new ContractError("CONTRACT_VIOLATED", `${name} is not in the catalogue ${catalogue.title}`, {
      eventType: name,
    });
  }
  return def as EventDefinition<T, unknown>;
}

/**
 * Checks each sample against the catalogue: its type is defined, it is written at the current
 * version, its data passes the schema. Resolves with the number checked; rejects with
 * `CONTRACT_VIOLATED` listing every failing sample in `problems`.
 *
 * @example await verifyProducer(catalogue, [{ type: "order.paid", data: { orderId: "o1", chargeId: "c1", amount: 500 } }]);
 */
export async function verifyProducer(
  catalogue: Catalogue,
  samples: readonly ProducerSample[],
): Promise<number> {
  const problems: string[] = [];
  for (const [i, sample] of samples.entries()) {
    const def = catalogue.events.find((e) => e.type === sample.type);
    if (def === undefined) {
      problems.push(`sample ${i}: ${sample.type} is not in the catalogue`);
      continue;
    }
    const raw = sample.dataversion ?? def.version;
    if (Number(raw) !== def.version) {
      problems.push(
        `sample ${i}: ${def.type} written at v${String(raw)}, the catalogue's current version is v${def.version}`,
      );
    }
    try {
      await def.parse(sample.data);
    } catch (e) {
      problems.push(`sample ${i}: ${message(e)}`);
    }
  }
  if (problems.length > 0) {
    throw new ContractError("CONTRACT_VIOLATED", `the producer breaks the contract: ${problems.join("; ")}`, {
      problems,
    });
  }
  return samples.length;
}

/** Options of {@link verifyConsumer}. */
export interface VerifyConsumerOptions {
  /** One sample of the data per version the consumer claims to read, keyed by version. */
  samples: Readonly<Record<number, unknown>>;
  /** The versions the consumer claims to read. Default: every version the definition reads. */
  versions?: readonly number[];
}

/**
 * Shows that `handler` handles every version of `type` it claims: each version's sample goes in
 * a CloudEvent with that `dataversion`, is decoded as the bus would (upcast, then validated) and
 * handed to the handler. Resolves with the versions handled; rejects with `CONTRACT_VIOLATED`
 * listing each version that has no sample, no upcaster, fails the schema or fails the handler.
 *
 * @example
 * await verifyConsumer(catalogue, (event) => reserveStock(event.data), OrderCreated, {
 *   samples: { 1: { orderId: "o1", total: 500 }, 2: { orderId: "o1", total: 500, currency: "EUR" } },
 * });
 */
export async function verifyConsumer<T>(
  catalogue: Catalogue,
  handler: (event: CloudEvent<T>) => unknown,
  type: string | Typed<T>,
  options: VerifyConsumerOptions,
): Promise<number[]> {
  const def = definitionOf<T>(catalogue, type);
  const versions = options.versions ?? def.versions;
  const problems: string[] = [];
  for (const version of versions) {
    if (!def.versions.includes(version)) {
      problems.push(
        `v${version}: ${def.type} reads v${def.versions.join(", v")} only (no upcaster chain from v${version})`,
      );
      continue;
    }
    if (!(version in options.samples)) {
      problems.push(`v${version}: no sample given`);
      continue;
    }
    const envelope = createEnvelope({
      type: def.type,
      source: "/patchbay/contract-test",
      data: options.samples[version],
      datacontenttype: "application/json",
      dataversion: version,
    });
    let data: T;
    try {
      data = await def.decode(envelope);
    } catch (e) {
      problems.push(`v${version}: ${message(e)}`);
      continue;
    }
    try {
      await handler({ ...envelope, dataversion: def.version, data });
    } catch (e) {
      problems.push(`v${version}: the handler failed: ${message(e)}`);
    }
  }
  if (problems.length > 0) {
    throw new ContractError(
      "CONTRACT_VIOLATED",
      `the consumer of ${def.type} breaks the contract: ${problems.join("; ")}`,
      {
        eventType: def.type,
        problems,
      },
    );
  }
  return [...versions];
}
