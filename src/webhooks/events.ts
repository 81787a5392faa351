import { defineEvent } from "../core/events.js";
import type { StandardSchemaV1 } from "../core/schema.js";

/** The data of {@link EndpointDisabled}. */
export interface EndpointDisabledData {
  endpointId: string;
  url: string;
  /** `gone`: it answered 410 Gone; `failing`: every attempt failed for `disableAfter`. */
  reason: "gone" | "failing";
  /** When it was disabled, RFC 3339. */
  disabledAt: string;
  /** Since when every attempt had failed, RFC 3339, when known. */
  failingSince?: string;
}

const REASONS = new Set(["gone", "failing"]);

const schema: StandardSchemaV1<EndpointDisabledData> = {
  "~standard": {
    version: 1,
    vendor: "patchbay",
    validate(value) {
      const v = value as Partial<EndpointDisabledData> | null;
      const issues: StandardSchemaV1.Issue[] = [];
      if (typeof v !== "object" || v === null) return { issues: [{ message: "expected an object" }] };
      for (const key of ["endpointId", "url", "disabledAt"] as const) {
        if (typeof v[key] !== "string") issues.push({ message: "expected a string", path: [key] });
      }
      if (!REASONS.has(v.reason as string))
        issues.push({ message: 'expected "gone" or "failing"', path: ["reason"] });
      if (v.failingSince !== undefined && typeof v.failingSince !== "string") {
        issues.push({ message: "expected a string", path: ["failingSince"] });
      }
      return issues.length > 0 ? { issues } : { value: v as EndpointDisabledData };
    },
  },
};

/**
 * Published on the bus when Patchbay disables a webhook endpoint by itself: it answered 410 Gone,
 * or every attempt to it failed for the `disableAfter` period (default 5 days). Subscribe to
 * alert someone; `endpoints.enable(id)` resumes it. Not sent to webhook endpoints unless one
 * subscribes to it by name (`patchbay.webhook.*`).
 */
export const EndpointDisabled = defineEvent("patchbay.webhook.endpoint_disabled", {
  version: 1,
  schema,
  source: "/patchbay/webhooks",
  description: "A webhook endpoint was disabled automatically (410 Gone, or failing for too long).",
});
