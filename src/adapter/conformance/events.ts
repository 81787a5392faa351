/**
 * The events the conformance suites publish, with schemas written out as Standard Schema so the
 * suites need no validation library.
 */
import { defineEvent } from "../../core/events.js";
import type { StandardSchemaV1 } from "../../core/schema.js";

type Fields = Record<string, (v: unknown) => string | undefined>;

/** A Standard Schema of an object whose every field passes its check (a message when it does not). */
export function objectSchema<T>(fields: Fields): StandardSchemaV1<T> {
  return {
    "~standard": {
      version: 1,
      vendor: "patchbay-conformance",
      validate(value) {
        if (typeof value !== "object" || value === null)
          return { issues: [{ message: "expected an object" }] };
        const issues: StandardSchemaV1.Issue[] = [];
        for (const [key, check] of Object.entries(fields)) {
          const message = check((value as Record<string, unknown>)[key]);
          if (message !== undefined) issues.push({ message, path: [key] });
        }
        return issues.length > 0 ? { issues } : { value: value as T };
      },
    },
  };
}

/** A field check: a string. */
export const string = (v: unknown) => (typeof v === "string" ? undefined : "expected a string");
const positiveInteger = (v: unknown) =>
  Number.isSafeInteger(v) && (v as number) > 0 ? undefined : "expected a positive integer";

/** `order.created` v1: `{ orderId, qty }`, `qty` a positive integer. */
export const OrderCreated = defineEvent("order.created", {
  version: 1,
  schema: objectSchema<{ orderId: string; qty: number }>({ orderId: string, qty: positiveInteger }),
});

/** `order.paid` v1: `{ orderId }`. */
export const OrderPaid = defineEvent("order.paid", {
  version: 1,
  schema: objectSchema<{ orderId: string }>({ orderId: string }),
});
