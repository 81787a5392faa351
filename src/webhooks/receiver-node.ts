import type { IncomingMessage, ServerResponse } from "node:http";
import { InvalidArgumentError } from "../core/errors.js";
import { createWebhookReceiver, type ReceiveResult, type WebhookReceiverOptions } from "./receiver.js";

type Next = (error?: unknown) => void;
type RequestWithBody = IncomingMessage & { body?: unknown; rawBody?: unknown };

class BodyTooLarge extends Error {}

async function readRaw(req: RequestWithBody, limit: number): Promise<Buffer> {
  const given = Buffer.isBuffer(req.rawBody)
    ? req.rawBody
    : Buffer.isBuffer(req.body)
      ? req.body
      : typeof req.body === "string"
        ? Buffer.from(req.body, "utf8")
        : undefined;
  if (given) {
    if (given.length > limit) throw new BodyTooLarge();
    return given;
  }
  if (req.body !== undefined && req.body !== null && typeof req.body === "object" && req.readableEnded) {
    throw new InvalidArgumentError(
      "the request body was already parsed (express.json()?): signatures are over the raw bytes. Mount the receiver before body parsers, or use express.raw({ type: '*/*' })",
      "req.body",
    );
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string);
    size += buf.length;
    if (size > limit) throw new BodyTooLarge();
    chunks.push(buf);
  }
  return Buffer.concat(chunks);
}

function send(res: ServerResponse, result: Pick<ReceiveResult, "status" | "headers" | "body">) {
  res.writeHead(result.status, result.headers).end(result.body);
}

/**
 * A webhook receiver for Node `http`, Express and Connect: verifies the signature (Standard
 * Webhooks by default; `scheme: "github" | "stripe"`), answers a message id it already processed
 * with 200 without running the handler again (dedupe through the Store's idempotency records),
 * runs the handler for new ones, and answers: 200 processed or duplicate, 400/401 refused,
 * 409 still in progress, 413 too large, 500 handler failed (so the sender retries).
 *
 * Mount it before any body parser — the signature covers the raw bytes — or after
 * `express.raw({ type: "*\/*" })`.
 *
 * @example
 * app.post("/webhooks", webhookReceiver({ secret: process.env.WEBHOOK_SECRET!, store,
 *   handler: async (event, { tx }) => { await tx!.query("insert into payments ...", [...]); } }));
 * // plain Node: http.createServer(webhookReceiver({ secret, handler }))
 */
export function webhookReceiver<T = unknown>(options: WebhookReceiverOptions<T>) {
  const receiver = createWebhookReceiver(options);

  async function handle(req: RequestWithBody, res: ServerResponse): Promise<void> {
    if (req.method !== undefined && req.method !== "POST") {
      send(res, { status: 405, headers: { allow: "POST" }, body: "" });
      return;
    }
    let raw: Buffer;
    try {
      raw = await readRaw(req, receiver.maxBodyBytes);
    } catch (e) {
      if (!(e instanceof BodyTooLarge)) throw e;
      options.onError?.(e);
      send(res, {
        status: 413,
        headers: { "content-type": "application/json", connection: "close" },
        body: JSON.stringify({ error: "WEBHOOK_BODY_TOO_LARGE", limit: receiver.maxBodyBytes }),
      });
      return;
    }
    send(res, await receiver.receive(req.headers, raw));
  }

  return function webhookReceiverMiddleware(req: IncomingMessage, res: ServerResponse, next?: Next): void {
    handle(req, res).catch((e: unknown) => {
      if (next) return next(e);
      options.onError?.(e);
      if (!res.headersSent) send(res, { status: 500, headers: {}, body: "" });
    });
  };
}
