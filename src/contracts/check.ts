/**
 * The breaking-change check between two releases of a catalogue, with the compatibility modes
 * of schema registries: `backward` (consumers on the new contract read what was written under
 * the old one: queued, retained and replayed events), `forward` (consumers still on the old
 * contract read what producers on the new one write), `full` (both). Declared upcasters count:
 * a version bump with an upcaster from the old version is backward compatible.
 */
import type { AsyncApiDocument } from "./asyncapi.js";
import type { Catalogue } from "./catalogue.js";
import { schemaIncompatibilities } from "./schema-diff.js";
import { snapshotOf, type ContractSnapshot } from "./snapshot.js";

/** `backward`, `forward` or `full`, as in Confluent Schema Registry. */
export type CompatibilityMode = "backward" | "forward" | "full";

/** One difference between the two contracts. */
export interface ContractChange {
  eventType: string;
  /**
   * `backward`: a consumer on the new contract cannot read data written under the old one
   * (it breaks *consumers* that upgrade). `forward`: a consumer on the old contract cannot read
   * data written under the new one (it breaks them when *producers* upgrade). `none`: compatible.
   */
  direction: "backward" | "forward" | "none";
  /** Which side the change breaks: consumers (backward), producers' existing consumers (forward). */
  breaks: "consumers" | "producers" | "nobody";
  /** Whether it fails the check in the chosen mode. */
  breaking: boolean;
  rule:
    | "event-type-added"
    | "event-type-removed"
    | "version-bumped"
    | "version-upcast"
    | "version-dropped"
    | "version-went-back"
    | "required-field"
    | "type-narrowed"
    | "enum-value-removed"
    | "closed-object"
    | "unanalysed"
    | "webhook-added"
    | "webhook-removed"
    | "schema-compatible";
  path?: string;
  message: string;
}

/** What {@link checkContracts} found. */
export interface ContractReport {
  mode: CompatibilityMode;
  /** True when any change is breaking in this mode: fail the build. */
  breaking: boolean;
  changes: ContractChange[];
}

/** Options of {@link checkContracts}. */
export interface CheckContractsOptions {
  /** Default `backward` (Confluent's default). */
  mode?: CompatibilityMode;
}

type Source = Catalogue | AsyncApiDocument;

/**
 * Compares the `next` catalogue with the `previous` one (each a catalogue, or an AsyncAPI
 * document exported from one) and reports every change, breaking or not, for the mode.
 *
 * @example
 * const report = checkContracts(JSON.parse(readFileSync("asyncapi.json", "utf8")), catalogue, { mode: "full" });
 * if (report.breaking) throw new Error(report.changes.filter((c) => c.breaking).map((c) => c.message).join("\n"));
 */
export function checkContracts(
  previous: Source,
  next: Source,
  options: CheckContractsOptions = {},
): ContractReport {
  const mode = options.mode ?? "backward";
  const prev = snapshotOf(previous);
  const curr = snapshotOf(next);
  const changes: ContractChange[] = [];
  const add = (
    eventType: string,
    direction: ContractChange["direction"],
    rule: ContractChange["rule"],
    message: string,
    path?: string,
  ) => {
    const breaking = direction !== "none" && (mode === "full" || mode === direction);
    const breaks = direction === "backward" ? "consumers" : direction === "forward" ? "producers" : "nobody";
    changes.push({
      eventType,
      direction,
      breaks,
      breaking,
      rule,
      ...(path === undefined ? {} : { path }),
      message,
    });
  };
  const readers = (snap: ContractSnapshot, type: string) =>
    snap.consumers === undefined
      ? undefined
      : [...snap.consumers].filter(([, t]) => t.includes(type)).map(([g]) => g);

  for (const [type, p] of prev.events) {
    const n = curr.events.get(type);
    if (n === undefined) {
      add(
        type,
        "backward",
        "event-type-removed",
        `${type}: removed; events of it already written (queues, dead letters, replays) have no contract`,
      );
      continue;
    }
    if (n.version < p.version) {
      add(
        type,
        "backward",
        "version-went-back",
        `${type}: version went back from ${p.version} to ${n.version}`,
      );
      add(
        type,
        "forward",
        "version-went-back",
        `${type}: version went back from ${p.version} to ${n.version}`,
      );
      continue;
    }
    const groups = readers(curr, type);
    const dropped = p.reads.filter((v) => !n.reads.includes(v));
    if (dropped.length > 0) {
      const read = groups === undefined || groups.length > 0;
      add(
        type,
        read ? "backward" : "none",
        "version-dropped",
        `${type}: v${dropped.join(", v")} can no longer be read (no upcaster to v${n.version})` +
          (groups === undefined
            ? ""
            : read
              ? ` while ${groups.join(", ")} still read it`
              : "; no consumer group reads it"),
      );
    }
    if (n.version > p.version) {
      if (n.reads.includes(p.version)) {
        add(
          type,
          "none",
          "version-upcast",
          `${type}: v${p.version} -> v${n.version}; v${p.version} data is upcast for new consumers`,
        );
      }
      add(
        type,
        "forward",
        "version-bumped",
        `${type}: producers now write v${n.version}; consumers still on v${p.version} refuse it (EVENT_VERSION_UNKNOWN): upgrade consumers first`,
      );
      continue;
    }
    // Same version: the schemas themselves must be compatible in each direction.
    const backward = schemaIncompatibilities(n.schema, p.schema);
    const forward = schemaIncompatibilities(p.schema, n.schema);
    for (const i of backward) {
      const label = i.rule === "required-field" ? "required field added" : i.rule.replaceAll("-", " ");
      add(
        type,
        "backward",
        i.rule,
        `${type} v${n.version}: ${label}: ${i.detail} (new consumers reject old data)`,
        i.path,
      );
    }
    for (const i of forward) {
      const label = i.rule === "required-field" ? "required field removed" : i.rule.replaceAll("-", " ");
      add(
        type,
        "forward",
        i.rule,
        `${type} v${n.version}: ${label}: ${i.detail} (old consumers reject new data)`,
        i.path,
      );
    }
    if (
      backward.length === 0 &&
      forward.length === 0 &&
      JSON.stringify(n.schema) !== JSON.stringify(p.schema)
    ) {
      add(type, "none", "schema-compatible", `${type} v${n.version}: schema changed compatibly`);
    }
  }
  for (const type of curr.events.keys()) {
    if (!prev.events.has(type)) add(type, "none", "event-type-added", `${type}: added`);
  }
  for (const type of prev.webhooks) {
    if (!curr.webhooks.has(type))
      add(type, "forward", "webhook-removed", `${type}: no longer sent to webhook endpoints`);
  }
  for (const type of curr.webhooks) {
    if (!prev.webhooks.has(type))
      add(type, "none", "webhook-added", `${type}: now sent to webhook endpoints`);
  }
  return { mode, breaking: changes.some((c) => c.breaking), changes };
}
