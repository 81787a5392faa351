/**
 * The load and chaos driver: `npm run demo:load -- --orders 2000 --payment-failure 0.2 --email-failure 0.1`.
 * Drives the running shop over HTTP (its URL from --url or .patchbay/shop.json), waits until
 * every order has settled, then checks the invariants and exits non-zero if any is broken.
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";

interface Report {
  orders: Array<{ id: string; status: string; charge_id: string | null }>;
  items: Array<{ order_id: string; sku: string; qty: number }>;
  inventory: Array<{ sku: string; available: number }>;
  emails: Array<{ kind: string; ref: string; n: number | string }>;
  users: number;
  settings: number;
  deadLetters: number;
  initialStock?: Record<string, number>;
  charges?: Array<{ id: string; order_id: string; status: string }>;
  warehouse?: { rows: number; matches: boolean; lastSync?: unknown };
  partner?: Array<{ webhookId: string; type: string; orderId: string; n: number }>;
}

const { values } = parseArgs({
  options: {
    orders: { type: "string", default: "200" },
    users: { type: "string", default: "20" },
    concurrency: { type: "string", default: "8" },
    "payment-failure": { type: "string", default: "0" },
    "email-failure": { type: "string", default: "0" },
    decline: { type: "string", default: "0.05" },
    url: { type: "string" },
    timeout: { type: "string", default: "600" },
    json: { type: "boolean", default: false },
    // Seconds of a full payment outage (every payment request fails) once a third of the orders
    // are placed: the provider's breaker opens, probes, opens again — the sagas must ride it out.
    outage: { type: "string", default: "0" },
  },
});

const num = (v: string | undefined, name: string, max = Number.MAX_SAFE_INTEGER) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0 || n > max) {
    process.stderr.write(`demo:load: --${name} must be a number between 0 and ${max}\n`);
    process.exit(2);
  }
  return n;
};
const ORDERS = num(values.orders, "orders");
const USERS = Math.max(1, num(values.users, "users"));
const CONCURRENCY = Math.max(1, num(values.concurrency, "concurrency"));
const DECLINE = num(values.decline, "decline", 1);
const OUTAGE_MS = num(values.outage, "outage", 3600) * 1000;
/** The shop's URL: --url, else .patchbay/shop.json — read again on every connection failure,
 * so a restarted shop (on another port) is found. */
function shopUrl(): string {
  if (values.url) return values.url;
  try {
    return (JSON.parse(readFileSync(".patchbay/shop.json", "utf8")) as { shop: string }).shop;
  } catch {
    process.stderr.write(
      "demo:load: no --url and no .patchbay/shop.json: start the shop first (npm start)\n",
    );
    process.exit(2);
  }
}
let base = shopUrl();

const tty = process.stderr.isTTY;
const printed = new Set<string>();
function progress(label: string, done: number, total: number, started: number) {
  const rate = done / Math.max(0.001, (Date.now() - started) / 1000);
  const eta = rate > 0 ? Math.ceil((total - done) / rate) : 0;
  const width = 30;
  const filled = Math.round((done / Math.max(1, total)) * width);
  const line = `${label} [${"#".repeat(filled)}${"-".repeat(width - filled)}] ${done}/${total} ${rate.toFixed(0)}/s ETA ${eta}s`;
  if (tty) process.stderr.write(`\r${line}`);
  else {
    // Without a terminal: one line per tenth of the way, each once.
    const step = `${label}:${Math.floor((done / Math.max(1, total)) * 10)}`;
    if (!printed.has(step)) {
      printed.add(step);
      process.stderr.write(`${line}\n`);
    }
  }
}

async function call<T>(
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; data: T }> {
  for (let attempt = 1; ; attempt++) {
    try {
      const res = await fetch(`${base}${path}`, {
        method,
        headers: { "content-type": "application/json", ...headers },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      // 409: a request with this key is still being processed (perhaps by a process that has
      // since died, until its lease ends): wait as told and ask again.
      const retryAfter = res.headers.get("retry-after");
      if (res.status === 409 && retryAfter !== null && attempt < 120) {
        await res.body?.cancel();
        await new Promise((r) => setTimeout(r, 1000 * Number(retryAfter)));
        continue;
      }
      return { status: res.status, data: (await res.json()) as T };
    } catch (e) {
      // The shop may be restarting (the chaos test kills it): keep trying for a while.
      if (attempt >= 120) throw e;
      await new Promise((r) => setTimeout(r, 500));
      base = shopUrl();
    }
  }
}

async function main(): Promise<number> {
  const chaos = {
    paymentFailure: num(values["payment-failure"], "payment-failure", 1),
    emailFailure: num(values["email-failure"], "email-failure", 1),
  };
  await call("POST", "/api/admin/chaos", chaos);
  let outage: Promise<void> | undefined;
  const startOutage = () => {
    if (outage) return;
    outage = (async () => {
      process.stderr.write(`payment outage for ${OUTAGE_MS / 1000} s\n`);
      await call("POST", "/api/admin/chaos", { paymentFailure: 1 });
      await new Promise((r) => setTimeout(r, OUTAGE_MS));
      await call("POST", "/api/admin/chaos", chaos);
      process.stderr.write("payment outage over\n");
    })();
    // Awaited after the orders are placed; until then, a failure must not count as unhandled.
    outage.catch(() => undefined);
  };
  const run = Date.now().toString(36);
  const users: string[] = [];
  for (let i = 0; i < USERS; i++) {
    const r = await call<{ userId: string }>("POST", "/api/register", {
      email: `load-${run}-${i}@example.com`,
      password: "correct horse battery",
      name: `Load ${i}`,
    });
    if (r.status !== 201) throw new Error(`registration answered ${r.status}`);
    users.push(r.data.userId);
  }
  const duplicate = await call("POST", "/api/register", {
    email: `load-${run}-0@example.com`,
    password: "whatever123",
    name: "Dup",
  });
  if (duplicate.status !== 409)
    throw new Error(`a duplicate registration answered ${duplicate.status}, not 409`);

  const skus = ["sku-apple", "sku-pear", "sku-plum", "sku-fig"];
  let placed = 0;
  const started = Date.now();
  const worker = async () => {
    for (let n = placed++; n < ORDERS; n = placed++) {
      if (OUTAGE_MS > 0 && n >= ORDERS / 3) startOutage();
      const items = [{ sku: skus[n % skus.length]!, qty: 1 + (n % 3), price: 250 + (n % 7) * 100 }];
      // Every request carries an Idempotency-Key and is sent twice: the retry must not create a second order.
      const key = `load-${run}-${n}`;
      const body = {
        userId: users[n % users.length],
        items,
        card: Math.random() < DECLINE ? "tok_declined" : "tok_visa",
      };
      const first = await call<{ orderId: string }>("POST", "/api/orders", body, { "idempotency-key": key });
      const again = await call<{ orderId: string }>("POST", "/api/orders", body, { "idempotency-key": key });
      if (first.status !== 202) throw new Error(`order ${n} answered ${first.status}`);
      if (again.status === 202 && again.data.orderId !== first.data.orderId) {
        throw new Error(`order ${n}: the retried request created a second order`);
      }
      progress("orders placed ", Math.min(placed, ORDERS), ORDERS, started);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  await outage;
  if (tty) process.stderr.write("\n");

  // Wait for every order to settle.
  const deadline = Date.now() + num(values.timeout, "timeout") * 1000;
  const settleStart = Date.now();
  let report: Report;
  for (;;) {
    report = (await call<Report>("GET", "/api/admin/report")).data;
    const mine = report.orders;
    const settled = mine.filter((o) => o.status === "confirmed" || o.status === "cancelled").length;
    progress("orders settled", settled, mine.length, settleStart);
    const warehouseOk = report.warehouse === undefined || report.warehouse.matches;
    const partnerOk = report.partner === undefined || partnerComplete(report);
    if (settled === mine.length && report.settings === report.users && warehouseOk && partnerOk) break;
    if (Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  if (tty) process.stderr.write("\n");
  return check(report);
}

/** The partner has a webhook for every settled order: order.paid when confirmed, order.cancelled when cancelled. */
function partnerComplete(r: Report): boolean {
  const got = new Set((r.partner ?? []).map((p) => `${p.type}:${p.orderId}`));
  return r.orders.every(
    (o) =>
      (o.status === "confirmed" && got.has(`order.paid:${o.id}`)) ||
      (o.status === "cancelled" && got.has(`order.cancelled:${o.id}`)),
  );
}

function check(r: Report): number {
  const failures: string[] = [];
  const ok = (cond: boolean, what: string) => {
    if (!cond) failures.push(what);
    return cond;
  };
  const confirmed = r.orders.filter((o) => o.status === "confirmed");
  const cancelled = r.orders.filter((o) => o.status === "cancelled");
  const stuck = r.orders.filter((o) => o.status !== "confirmed" && o.status !== "cancelled");
  ok(
    stuck.length === 0,
    `${stuck.length} orders stuck (e.g. ${stuck
      .slice(0, 3)
      .map((o) => `${o.id}:${o.status}`)
      .join(", ")})`,
  );

  // Inventory: never negative (a CHECK constraint) and initial minus what confirmed orders took.
  if (r.initialStock) {
    const confirmedIds = new Set(confirmed.map((o) => o.id));
    const taken: Record<string, number> = {};
    for (const i of r.items)
      if (confirmedIds.has(i.order_id)) taken[i.sku] = (taken[i.sku] ?? 0) + Number(i.qty);
    for (const { sku, available } of r.inventory) {
      const expected = (r.initialStock[sku] ?? 0) - (taken[sku] ?? 0);
      ok(Number(available) >= 0, `inventory of ${sku} is negative (${available})`);
      ok(Number(available) === expected, `inventory of ${sku} is ${available}, expected ${expected}`);
    }
  }

  if (r.charges) {
    const byOrder = new Map<string, Array<{ status: string }>>();
    for (const c of r.charges) byOrder.set(c.order_id, [...(byOrder.get(c.order_id) ?? []), c]);
    for (const o of confirmed) {
      const charges = byOrder.get(o.id) ?? [];
      ok(
        charges.length === 1 && charges[0]!.status === "succeeded",
        `order ${o.id}: ${charges.length} charges, expected exactly 1 succeeded`,
      );
    }
    for (const o of cancelled) {
      const charges = byOrder.get(o.id) ?? [];
      ok(charges.length <= 1, `cancelled order ${o.id} was charged ${charges.length} times`);
      ok(
        charges.every((c) => c.status === "refunded"),
        `cancelled order ${o.id} has a charge that was not refunded`,
      );
    }
  }

  const emails = new Map(
    r.emails.filter((e) => e.kind === "order-confirmation").map((e) => [e.ref, Number(e.n)]),
  );
  for (const o of confirmed)
    ok(emails.get(o.id) === 1, `order ${o.id}: ${emails.get(o.id) ?? 0} confirmation e-mails, expected 1`);
  for (const o of cancelled) ok(!emails.has(o.id), `cancelled order ${o.id} got a confirmation e-mail`);
  ok(r.settings === r.users, `${r.users} users but ${r.settings} default settings`);

  if (r.warehouse)
    ok(r.warehouse.matches, `the warehouse does not equal the orders (${r.warehouse.rows} rows)`);
  if (r.partner) {
    const events = new Map(r.partner.map((p) => [p.webhookId, p]));
    ok(
      r.partner.every((p) => p.n === 1),
      `the partner received a webhook more than once`,
    );
    const paid = new Set([...events.values()].filter((p) => p.type === "order.paid").map((p) => p.orderId));
    const gone = new Set(
      [...events.values()].filter((p) => p.type === "order.cancelled").map((p) => p.orderId),
    );
    for (const o of confirmed) ok(paid.has(o.id), `the partner never got order.paid for ${o.id}`);
    for (const o of cancelled) ok(gone.has(o.id), `the partner never got order.cancelled for ${o.id}`);
  }
  ok(r.deadLetters === 0, `${r.deadLetters} messages in dead letters`);

  const summary = {
    node: process.version,
    orders: r.orders.length,
    confirmed: confirmed.length,
    cancelled: cancelled.length,
    stuck: stuck.length,
    users: r.users,
    charges: r.charges?.length,
    partnerWebhooks: r.partner?.length,
    deadLetters: r.deadLetters,
    invariantsBroken: failures.length,
  };
  if (values.json) process.stdout.write(JSON.stringify({ ...summary, failures }) + "\n");
  else {
    process.stdout.write(
      `\n${Object.entries(summary)
        .map(([k, v]) => `  ${k.padEnd(17)} ${v ?? "-"}`)
        .join("\n")}\n`,
    );
    process.stdout.write(
      failures.length === 0
        ? "\nall invariants hold\n"
        : `\nBROKEN:\n  ${failures.slice(0, 20).join("\n  ")}\n`,
    );
  }
  return failures.length === 0 ? 0 : 1;
}

main().then(
  (code) => (process.exitCode = code),
  (e: unknown) => {
    process.stderr.write(`demo:load: ${(e as Error).message}\n`);
    process.exitCode = 1;
  },
);
