import { describe, expect, it } from "vitest";
import { FakeClock } from "../testing/fake-clock.js";
import type { ConnectRequest, ConnectResponse, WebhookConnector } from "./connector.js";
import { generateSecret } from "./secrets.js";
import { createSender } from "./sender.js";
import { createTargetPolicy } from "./ssrf.js";
import { verifyWebhook } from "./verify.js";

const secret = generateSecret();
const body = '{"type":"order.paid","timestamp":"2025-01-01T00:00:00.000Z","data":{"n":1}}';

function setup(
  answer: (req: ConnectRequest) => Promise<ConnectResponse> | ConnectResponse,
  clock = new FakeClock(),
) {
  const seen: ConnectRequest[] = [];
  const connector: WebhookConnector = async (req) => {
    seen.push(req);
    return answer(req);
  };
  const send = createSender({
    policy: createTargetPolicy({
      resolver: (host) =>
        Promise.resolve(
          host === "hooks.test"
            ? [{ address: "93.184.215.14", family: 4 }]
            : [{ address: "10.0.0.1", family: 4 }],
        ),
    }),
    connector,
    timeoutMs: 15_000,
    maxPayloadBytes: 1024,
    maxResponseBytes: 64,
    clock,
    userAgent: "test",
  });
  return { send, seen, clock };
}

const message = { id: "msg_1", url: "https://hooks.test/in", body, secrets: [secret] };

describe("sender", () => {
  it("signs per Standard Webhooks and connects to the checked address with the host name kept", async () => {
    const { send, seen, clock } = setup(() => ({ status: 204, headers: {}, body: "" }));
    const outcome = await send(message);
    expect(outcome).toMatchObject({ ok: true, status: 204, error: undefined });
    const req = seen[0]!;
    expect(req.address).toBe("93.184.215.14");
    expect(req.url.hostname).toBe("hooks.test");
    expect(req.body.toString()).toBe(body);
    expect(req.headers["content-type"]).toBe("application/json");
    expect(verifyWebhook(secret, req.headers, req.body, { clock }).id).toBe("msg_1");
  });

  it("resolves once per attempt and hands the connector the address it checked (no second lookup to rebind)", async () => {
    const answers = ["93.184.215.14", "127.0.0.1"]; // a rebinding resolver: public first, loopback next
    let lookups = 0;
    const seen: ConnectRequest[] = [];
    const send = createSender({
      policy: createTargetPolicy({
        resolver: () => Promise.resolve([{ address: answers[lookups++ % 2]!, family: 4 }]),
      }),
      connector: (req) => {
        seen.push(req);
        return Promise.resolve({ status: 200, headers: {}, body: "" });
      },
      timeoutMs: 1000,
      maxPayloadBytes: 1024,
      maxResponseBytes: 64,
      clock: new FakeClock(),
      userAgent: "test",
    });
    expect((await send({ ...message, url: "https://rebind.test/" })).ok).toBe(true);
    expect(lookups).toBe(1);
    expect(seen[0]!.address).toBe("93.184.215.14");
    // The next attempt resolves afresh, and the loopback answer is refused before connecting.
    const second = await send({ ...message, url: "https://rebind.test/" });
    expect(second.error?.code).toBe("WEBHOOK_ADDRESS_REFUSED");
    expect(seen).toHaveLength(1);
  });

  it("410 Gone is final and marks the endpoint gone; other statuses are retried", async () => {
    const gone = await setup(() => ({ status: 410, headers: {}, body: "bye" })).send(message);
    expect(gone).toMatchObject({ ok: false, gone: true, final: true, status: 410, responseExcerpt: "bye" });
    const error = await setup(() => ({ status: 500, headers: {}, body: "x".repeat(100) })).send(message);
    expect(error).toMatchObject({ ok: false, gone: false, final: false, status: 500 });
    expect(error.responseExcerpt).toBe("x".repeat(100)); // the connector bounds it; see connector tests
    expect(error.error?.code).toBe("WEBHOOK_HTTP_STATUS");
  });

  it("reads Retry-After on 429 and 503 only", async () => {
    const limited = await setup(() => ({ status: 429, headers: { "retry-after": "120" }, body: "" })).send(
      message,
    );
    expect(limited.retryAfterMs).toBe(120_000);
    const busy = await setup(() => ({ status: 503, headers: { "retry-after": "7" }, body: "" })).send(
      message,
    );
    expect(busy.retryAfterMs).toBe(7_000);
    const other = await setup(() => ({ status: 500, headers: { "retry-after": "7" }, body: "" })).send(
      message,
    );
    expect(other.retryAfterMs).toBeUndefined();
  });

  it("does not follow redirects: a 3xx is a failed attempt", async () => {
    const outcome = await setup(() => ({
      status: 302,
      headers: { location: "http://169.254.169.254/" },
      body: "",
    })).send(message);
    expect(outcome).toMatchObject({ ok: false, status: 302, final: false });
    expect(outcome.error?.message).toMatch(/redirects are not followed/);
  });

  it("times out by the clock and aborts the connection", async () => {
    let aborted = false;
    const { send, clock } = setup(
      (req) =>
        new Promise<ConnectResponse>((_resolve, reject) => {
          req.signal.addEventListener("abort", () => {
            aborted = true;
            reject(req.signal.reason as Error);
          });
        }),
    );
    const pending = send(message);
    await clock.advance("15s");
    const outcome = await pending;
    expect(aborted).toBe(true);
    expect(outcome).toMatchObject({ ok: false, final: false });
    expect(outcome.error?.code).toBe("WEBHOOK_TIMEOUT");
  });

  it("refuses an oversized payload and a refused address without connecting", async () => {
    const { send, seen } = setup(() => {
      throw new Error("must not connect");
    });
    const big = await send({ ...message, body: JSON.stringify({ data: "x".repeat(2000) }) });
    expect(big).toMatchObject({ ok: false, final: true, endpointFault: false });
    expect(big.error?.code).toBe("WEBHOOK_PAYLOAD_TOO_LARGE");
    const refused = await send({ ...message, url: "https://internal.test/in" });
    expect(refused).toMatchObject({ ok: false, final: true, endpointFault: true });
    expect(refused.error?.code).toBe("WEBHOOK_ADDRESS_REFUSED");
    expect(seen).toHaveLength(0);
  });

  it("reports an attempt cut short by shutdown as aborted, not the endpoint's fault", async () => {
    const stop = new AbortController();
    const { send } = setup(
      (req) =>
        new Promise<ConnectResponse>((_resolve, reject) => {
          req.signal.addEventListener("abort", () => reject(req.signal.reason as Error));
        }),
    );
    const pending = send(message, stop.signal);
    await new Promise((r) => setTimeout(r, 5));
    stop.abort(new Error("stopping"));
    const outcome = await pending;
    expect(outcome).toMatchObject({ ok: false, endpointFault: false });
    expect(outcome.error?.code).toBe("WEBHOOK_ABORTED");
  });
});
