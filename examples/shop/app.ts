/**
 * The shop's HTTP API and its background consumers. Registration is the hybrid pattern (user
 * and profile written at once, the rest in the background); an order is written together with
 * its `order.created` event (outbox) and the saga takes it from there.
 */
import { once } from "node:events";
import http from "node:http";
import type { AddressInfo } from "node:net";
import express from "express";
import { idempotencyKey, isPatchbayError, opsHandler, uuidv7, type Patchbay } from "patchbay";
import { z } from "zod";
import { rows, sqlFor } from "./db.js";
import { OrderConfirmed, OrderCreated, OrderItem, UserRegistered } from "./events.js";
import type { Chaos } from "./payment-provider.js";

export interface ShopApiOptions {
  pb: Patchbay;
  chaos: Chaos;
  /** Facts from the other parts (provider charges, partner deliveries, warehouse) for the report. */
  report?: () => Promise<Record<string, unknown>>;
  port?: number;
  /** The web console, served under /console. */
  console?: express.RequestHandler;
  /** Extra facts for GET /api/orders/:id (the saga's timeline). */
  orderTimeline?: (orderId: string) => Promise<unknown>;
}

const Registration = z.object({ email: z.email(), password: z.string().min(8), name: z.string().min(1) });
const NewOrder = z.object({
  userId: z.string(),
  items: z.array(OrderItem).min(1).max(50),
  currency: z.string().length(3).default("EUR"),
  card: z.string().default("tok_visa"),
});

/** Problem Details (RFC 9457). */
function problem(res: express.Response, status: number, title: string, detail?: unknown) {
  res.status(status).type("application/problem+json").json({ title, status, detail });
}

/** Registers the background consumers: welcome e-mail, default settings, order confirmation e-mail. */
export function registerShopConsumers(pb: Patchbay, chaos: Chaos): void {
  const q = sqlFor(pb.store);
  const flaky = () => {
    if (Math.random() < chaos.emailFailure) throw new Error("SMTP server said 451, try again later");
  };
  pb.subscribe(UserRegistered, { group: "welcome-email", concurrency: 4 }, async (event, { tx }) => {
    flaky();
    await tx.query(q(`INSERT INTO emails (kind, ref, recipient, sent_at) VALUES ('welcome', ?, ?, ?)`), [
      event.data.userId,
      event.data.email,
      Date.now(),
    ]);
  });
  pb.subscribe(UserRegistered, { group: "default-settings" }, async (event, { tx }) => {
    await tx.query(q(`INSERT INTO settings (user_id, newsletter, locale) VALUES (?, ?, ?)`), [
      event.data.userId,
      false,
      "en",
    ]);
  });
  // Exactly one confirmation per order: the insert and the inbox record commit together.
  pb.subscribe(OrderConfirmed, { group: "confirmation-email", concurrency: 4 }, async (event, { tx }) => {
    flaky();
    const [user] = await rows<{ email: string }>(tx, q, `SELECT email FROM users WHERE id = ?`, [
      event.data.userId,
    ]);
    await tx.query(
      q(`INSERT INTO emails (kind, ref, recipient, sent_at) VALUES ('order-confirmation', ?, ?, ?)`),
      [event.data.orderId, user?.email ?? "unknown", Date.now()],
    );
  });
}

/** Serves the shop's API. */
export async function startShopApi(options: ShopApiOptions) {
  const { pb } = options;
  const q = sqlFor(pb.store);
  const app = express();
  app.use(express.json({ limit: "100kb" }));

  app.post("/api/register", (req, res, next) => {
    const parsed = Registration.safeParse(req.body);
    if (!parsed.success) return problem(res, 400, "Invalid registration", parsed.error.issues);
    const { email, name } = parsed.data;
    const userId = `u_${uuidv7()}`;
    pb.transaction(async (tx) => {
      await tx.query(q(`INSERT INTO users (id, email, name, created_at) VALUES (?, ?, ?, ?)`), [
        userId,
        email.toLowerCase(),
        name,
        Date.now(),
      ]);
      await tx.query(q(`INSERT INTO profiles (user_id, display_name) VALUES (?, ?)`), [userId, name]);
      await tx.publish(UserRegistered, { userId, email: email.toLowerCase(), name }, { key: userId });
    }).then(
      () => res.status(201).json({ userId, message: "Registration successful" }),
      (e: unknown) => {
        if (isPatchbayError(e, "QUERY_FAILED") && /23505|SQLITE_CONSTRAINT_UNIQUE/.test(e.sqlState ?? "")) {
          problem(res, 409, "E-mail already registered");
        } else next(e);
      },
    );
  });

  // A request cut short by a crash holds its key for `lease`; then a retry may run it.
  app.post("/api/orders", idempotencyKey({ store: pb.store, lease: "10s" }), (req, res, next) => {
    const parsed = NewOrder.safeParse(req.body);
    if (!parsed.success) return problem(res, 400, "Invalid order", parsed.error.issues);
    const { userId, items, currency, card } = parsed.data;
    const orderId = `o_${uuidv7()}`;
    const total = items.reduce((sum, i) => sum + i.qty * i.price, 0);
    const now = Date.now();
    pb.transaction(async (tx) => {
      const [user] = await rows(tx, q, `SELECT id FROM users WHERE id = ?`, [userId]);
      if (!user) return false;
      await tx.query(
        q(
          `INSERT INTO orders (id, user_id, total, currency, status, created_at, updated_at) VALUES (?, ?, ?, ?, 'pending', ?, ?)`,
        ),
        [orderId, userId, total, currency, now, now],
      );
      for (const i of items) {
        await tx.query(q(`INSERT INTO order_items (order_id, sku, qty, price) VALUES (?, ?, ?, ?)`), [
          orderId,
          i.sku,
          i.qty,
          i.price,
        ]);
      }
      await tx.publish(OrderCreated, { orderId, userId, items, total, currency, card }, { key: orderId });
      return true;
    }).then((created) => {
      if (!created) return problem(res, 422, "Unknown user", { userId });
      res.status(202).location(`/api/orders/${orderId}`).json({ orderId, status: "pending" });
    }, next);
  });

  app.get("/api/orders/:id", (req, res, next) => {
    (async () => {
      const [order] = await rows(pb.store, q, `SELECT * FROM orders WHERE id = ?`, [req.params.id]);
      if (!order) return problem(res, 404, "No such order");
      const items = await rows(pb.store, q, `SELECT sku, qty, price FROM order_items WHERE order_id = ?`, [
        req.params.id,
      ]);
      const timeline = options.orderTimeline ? await options.orderTimeline(req.params.id) : undefined;
      res.json({ ...order, items, saga: timeline });
    })().catch(next);
  });

  // For the load driver: set failure ratios, and read what the invariants are checked against.
  app.post("/api/admin/chaos", (req, res) => {
    const body = req.body as Partial<Chaos>;
    for (const key of ["paymentFailure", "emailFailure"] as const) {
      const v = body[key];
      if (typeof v === "number" && v >= 0 && v <= 1) options.chaos[key] = v;
    }
    res.json(options.chaos);
  });

  app.get("/api/admin/report", (_req, res, next) => {
    (async () => {
      const count = async (text: string, params: unknown[] = []) =>
        rows<Record<string, unknown>>(pb.store, q, text, params);
      res.json({
        orders: await count(`SELECT id, status, charge_id, reason FROM orders`),
        items: await count(`SELECT order_id, sku, qty FROM order_items`),
        inventory: await count(`SELECT sku, available FROM inventory ORDER BY sku`),
        emails: await count(`SELECT kind, ref, COUNT(*) AS n FROM emails GROUP BY kind, ref`),
        users: Number((await count(`SELECT COUNT(*) AS n FROM users`))[0]?.n ?? 0),
        settings: Number((await count(`SELECT COUNT(*) AS n FROM settings`))[0]?.n ?? 0),
        deadLetters: await pb.bus.deadLetters.count(),
        ...(options.report ? await options.report() : {}),
      });
    })().catch(next);
  });

  // Prometheus /metrics, /healthz (alive) and /readyz (store, transport, workers): docs/operations.md.
  app.use(opsHandler(pb));

  app.get("/api/health", (_req, res, next) => {
    pb.store.health().then((h) => res.status(h.ok ? 200 : 503).json(h), next);
  });

  if (options.console) app.use("/console", options.console);

  app.use((error: unknown, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
    problem(res, 500, "Internal error", (error as Error).message);
  });

  const server = http.createServer(app);
  server.listen(options.port ?? 0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}
