/**
 * The order saga: accept → reserve inventory → (payment guard) → charge payment → create shipment → confirm.
 * A failure compensates what was done, in reverse: cancel the shipment, refund, release the
 * stock, mark the order cancelled. Store steps run in `ctx.tx` (their effect and the saga's
 * checkpoint commit together); the payment steps call the provider with the step's stable
 * idempotency key, so a retried or repeated attempt never charges twice.
 */
import {
  defineSaga,
  exponential,
  isPatchbayError,
  NonRetryableError,
  type EventData,
  type HttpClient,
  type SagaRetryOptions,
  type SagaTx,
} from "patchbay";
import type { sqlFor } from "./db.js";
import { OrderCancelled, OrderConfirmed, OrderCreated, OrderPaid } from "./events.js";

export type OrderInput = EventData<typeof OrderCreated>;

/** The saga, bound to the payment provider's client and the store's SQL dialect. */
export function defineOrderSaga(deps: {
  payments: HttpClient;
  q: ReturnType<typeof sqlFor>;
  /** Retries of the charge step (default: 25 attempts, 200 ms to 5 s); a test may stretch them over days. */
  chargeRetry?: SagaRetryOptions;
}) {
  const { payments, q } = deps;
  const setStatus = (
    tx: SagaTx,
    orderId: string,
    status: string,
    extra: { chargeId?: string; reason?: string } = {},
  ) =>
    tx.query(
      q(
        `UPDATE orders SET status = ?, charge_id = COALESCE(?, charge_id), reason = COALESCE(?, reason), updated_at = ? WHERE id = ?`,
      ),
      [status, extra.chargeId ?? null, extra.reason ?? null, Date.now(), orderId],
    );

  return defineSaga<OrderInput>("order", {
    version: 1,
    input: OrderCreated.schema,
    description: "reserve inventory, charge payment, create shipment, confirm",
    // Undoing must not give up on a transient refusal (an open circuit, a 503): keep trying, and
    // only after that many attempts leave the saga failed for a person to look at.
    compensateRetry: {
      maxAttempts: 30,
      backoff: exponential({ initial: "500ms", max: "30s" }),
      retryOn: () => true,
    },
    steps: [
      {
        // Its compensation runs last on every failure path: it is where an order becomes cancelled.
        name: "accept",
        transaction: true,
        run: async (order, ctx) => {
          await setStatus(ctx.tx, order.orderId, "processing");
        },
        compensate: async (_result, ctx) => {
          const orderId = ctx.sagaId;
          const reason = "a step failed and was compensated";
          await setStatus(ctx.tx, orderId, "cancelled", { reason });
          await ctx.tx.publish(OrderCancelled, { orderId, reason }, { key: orderId });
        },
      },
      {
        name: "reserve",
        transaction: true,
        run: async (order, ctx) => {
          for (const item of order.items) {
            // The CHECK (available >= 0) makes overselling impossible; a short stock ends the saga.
            const { rowCount } = await ctx.tx.query(
              q(`UPDATE inventory SET available = available - ? WHERE sku = ? AND available >= ?`),
              [item.qty, item.sku, item.qty],
            );
            if (rowCount === 0) throw new NonRetryableError(`out of stock: ${item.sku}`);
            await ctx.tx.query(q(`INSERT INTO reservations (order_id, sku, qty) VALUES (?, ?, ?)`), [
              order.orderId,
              item.sku,
              item.qty,
            ]);
          }
          return { reserved: order.items.length };
        },
        compensate: async (_result, ctx) => {
          const { rows } = await ctx.tx.query<{ sku: string; qty: number }>(
            q(`SELECT sku, qty FROM reservations WHERE order_id = ?`),
            [ctx.sagaId],
          );
          for (const r of rows) {
            await ctx.tx.query(q(`UPDATE inventory SET available = available + ? WHERE sku = ?`), [
              r.qty,
              r.sku,
            ]);
          }
          await ctx.tx.query(q(`DELETE FROM reservations WHERE order_id = ?`), [ctx.sagaId]);
        },
      },
      {
        // Registered before the charge is attempted: a charge whose answer was lost (a timeout
        // after the provider took the money) leaves the "charge" step failed, and a failed step
        // has nothing to compensate — this step's compensation refunds whatever was charged.
        name: "payment-guard",
        run: () => ({ guarded: true }),
        compensate: async (_result, ctx) => {
          await payments.post("refunds", {
            json: { orderId: ctx.sagaId },
            idempotencyKey: ctx.idempotencyKey,
            signal: ctx.signal,
          });
        },
      },
      {
        name: "charge",
        timeout: "10s",
        retry: deps.chargeRetry ?? {
          // Keep asking (same key, same answer) until the provider says yes or no: giving up
          // while the outcome is unknown would leave money taken for a cancelled order.
          maxAttempts: 25,
          backoff: exponential({ initial: "200ms", max: "5s" }),
          retryOn: (e) => !isPatchbayError(e, "NON_RETRYABLE"),
        },
        run: async (order, ctx) => {
          try {
            const { data } = await payments.post<{ id: string }>("charges", {
              json: {
                orderId: order.orderId,
                amount: order.total,
                currency: order.currency,
                card: order.card,
              },
              idempotencyKey: ctx.idempotencyKey,
              signal: ctx.signal,
            });
            return { chargeId: data.id };
          } catch (e) {
            if (isPatchbayError(e, "HTTP_STATUS") && e.status === 402) {
              throw new NonRetryableError("card declined", { cause: e });
            }
            throw e;
          }
        },
      },
      {
        name: "ship",
        transaction: true,
        run: async (order, ctx) => {
          const tracking = `TRK-${order.orderId.slice(-10)}`;
          await ctx.tx.query(
            q(`INSERT INTO shipments (order_id, tracking, status) VALUES (?, ?, 'created')`),
            [order.orderId, tracking],
          );
          return { tracking };
        },
        compensate: async (_result, ctx) => {
          await ctx.tx.query(q(`UPDATE shipments SET status = 'cancelled' WHERE order_id = ?`), [ctx.sagaId]);
        },
      },
      {
        name: "confirm",
        transaction: true,
        run: async (order, ctx) => {
          const { chargeId } = ctx.results.charge as { chargeId: string };
          await setStatus(ctx.tx, order.orderId, "confirmed", { chargeId });
          await ctx.tx.publish(
            OrderPaid,
            { orderId: order.orderId, chargeId, amount: order.total },
            { key: order.orderId },
          );
          await ctx.tx.publish(
            OrderConfirmed,
            { orderId: order.orderId, userId: order.userId },
            { key: order.orderId },
          );
        },
      },
    ],
  });
}
