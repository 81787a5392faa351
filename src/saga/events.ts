/** Events the saga runner publishes through the bus. */
import { defineEvent } from "../core/events.js";
import type { StandardSchemaV1 } from "../core/schema.js";
import type { SagaErrorInfo, SagaPhase } from "./records.js";

/** The data of {@link SagaFailed}. */
export interface SagaFailedData {
  sagaId: string;
  /** The saga's name and definition version. */
  name: string;
  version: number;
  /** The step at fault, or `null` (an unknown definition version). */
  step: string | null;
  phase: SagaPhase;
  error: SagaErrorInfo;
  /** ISO 8601. */
  failedAt: string;
}

type Issue = StandardSchemaV1.Issue;

const sagaFailedSchema: StandardSchemaV1<SagaFailedData> = {
  "~standard": {
    version: 1,
    vendor: "patchbay",
    validate(value) {
      const issues: Issue[] = [];
      const v = (typeof value === "object" && value !== null ? value : {}) as Record<string, unknown>;
      const need = (key: string, ok: boolean, what: string) => {
        if (!ok) issues.push({ message: `expected ${what}`, path: [key] });
      };
      need("sagaId", typeof v.sagaId === "string" && v.sagaId.length > 0, "a non-empty string");
      need("name", typeof v.name === "string" && v.name.length > 0, "a non-empty string");
      need("version", Number.isSafeInteger(v.version), "an integer");
      need("step", v.step === null || typeof v.step === "string", "a string or null");
      need("phase", v.phase === "run" || v.phase === "compensate", `"run" or "compensate"`);
      const e = v.error as Record<string, unknown> | undefined;
      need("error", typeof e === "object" && e !== null && typeof e.message === "string", "an error record");
      need(
        "failedAt",
        typeof v.failedAt === "string" && !Number.isNaN(Date.parse(v.failedAt)),
        "an ISO 8601 time",
      );
      return issues.length > 0 ? { issues } : { value: value as SagaFailedData };
    },
  },
};

/**
 * `patchbay.saga.failed`: a saga is stuck — a compensation ran out of retries, a step after the
 * pivot failed with a non-retryable error, or its definition version is unknown. Published in the
 * same transaction that marks the instance `failed`. Subscribe to page a person.
 *
 * @example bus.subscribe(SagaFailed, { group: "oncall" }, (e) => pager.alert(`saga ${e.data.sagaId} stuck at ${e.data.step}`));
 */
export const SagaFailed = defineEvent("patchbay.saga.failed", {
  version: 1,
  schema: sagaFailedSchema,
  source: "/patchbay/saga",
  description: "A saga could not finish or compensate and needs a person: retry, skip or resolve it.",
});
