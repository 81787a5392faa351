/** The shop's events: versioned contracts with schemas, validated on publish and on consume. */
import { defineEvent } from "patchbay";
import { z } from "zod";

const source = "/shop";

export const UserRegistered = defineEvent("user.registered", {
  version: 1,
  source,
  schema: z.object({ userId: z.string(), email: z.email(), name: z.string() }),
});

export const OrderItem = z.object({
  sku: z.string().min(1),
  qty: z.number().int().positive(),
  price: z.number().int().nonnegative(), // cents
});

export const OrderCreated = defineEvent("order.created", {
  version: 1,
  source,
  schema: z.object({
    orderId: z.string(),
    userId: z.string(),
    items: z.array(OrderItem).min(1),
    total: z.number().int().nonnegative(),
    currency: z.string().length(3),
    card: z.string(),
  }),
});

export const OrderPaid = defineEvent("order.paid", {
  version: 1,
  source,
  schema: z.object({ orderId: z.string(), chargeId: z.string(), amount: z.number().int() }),
});

export const OrderConfirmed = defineEvent("order.confirmed", {
  version: 1,
  source,
  schema: z.object({ orderId: z.string(), userId: z.string() }),
});

export const OrderCancelled = defineEvent("order.cancelled", {
  version: 1,
  source,
  schema: z.object({ orderId: z.string(), reason: z.string() }),
});

export const shopEvents = [UserRegistered, OrderCreated, OrderPaid, OrderConfirmed, OrderCancelled];
