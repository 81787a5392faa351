import type { IncomingMessage, ServerResponse } from "node:http";
import {
  createIdempotencyGate,
  type IdempotencyDecision,
  type IdempotencyKeyOptions,
} from "./idempotency.js";

/** Options of {@link idempotencyKey}: the shared ones plus how to tell clients apart. */
export interface NodeIdempotencyKeyOptions extends IdempotencyKeyOptions {
  /** Client identity that scopes keys (an API key id, an account id); default: one shared scope. */
  client?: (req: IncomingMessage) => string | undefined;
}

type Next = (error?: unknown) => void;
type RequestWithBody = IncomingMessage & { body?: unknown };

/** The body, or undefined once it grew past `limit` bytes (the rest is not read). */
async function readBody(req: RequestWithBody, limit: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string);
    size += buf.length;
    if (size > limit) return undefined;
    chunks.push(buf);
  }
  return Buffer.concat(chunks);
}

function firstHeader(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/**
 * `Idempotency-Key` middleware for Express, Connect and plain Node `http` (IETF draft + Stripe's
 * practice): the first request with a key runs; a retry gets the stored response (with
 * `Idempotent-Replayed: true`) for 24 h; the same key with another method, path or body is 422;
 * a retry while the first is still running is 409; a missing key is 400 when `required`.
 *
 * Mount it after your body parser (`express.json()`), which it uses to fingerprint the body; with
 * no parser it reads the raw body itself and leaves it on `req.body` as a Buffer.
 *
 * @example
 * app.post("/api/orders", express.json(), idempotencyKey({ store, required: true }), createOrder);
 * // plain Node: http.createServer((req, res) => mw(req, res, () => handler(req, res)))
 */
export function idempotencyKey(options: NodeIdempotencyKeyOptions) {
  const gate = createIdempotencyGate(options);
  const maxRequestBytes = options.maxRequestBytes ?? 1024 * 1024;

  async function handle(req: RequestWithBody, res: ServerResponse, next: Next): Promise<void> {
    const method = req.method ?? "GET";
    const key = firstHeader(req.headers[gate.headerName]);
    if (!gate.covers(method) || (key === undefined && !options.required)) return next();
    if (req.body === undefined && key !== undefined) {
      const body = await readBody(req, maxRequestBytes);
      if (body === undefined) {
        const detail = `the request body is over ${maxRequestBytes} bytes`;
        res.writeHead(413, { "content-type": "application/problem+json", connection: "close" }).end(
          JSON.stringify({
            type: "https://patchbay.dev/problems/idempotency",
            title: "Request body too large",
            status: 413,
            detail,
          }),
        );
        return;
      }
      req.body = body;
    }
    const decision = await gate.decide({
      method,
      url: req.url ?? "/",
      key,
      body: req.body,
      contentType: req.headers["content-type"],
      client: options.client?.(req),
    });
    if (decision.action === "pass") return next();
    if (decision.action === "respond") {
      res.writeHead(decision.status, decision.headers).end(decision.body);
      return;
    }
    captureResponse(res, decision);
    next();
  }

  return function idempotencyKeyMiddleware(req: IncomingMessage, res: ServerResponse, next: Next): void {
    handle(req, res, next).catch(next);
  };
}

type Execute = Extract<IdempotencyDecision, { action: "execute" }>;
type Writer = (chunk?: unknown, encoding?: unknown, callback?: unknown) => unknown;

/**
 * Tees what the handler writes and stores it before the last byte goes out, so a client that
 * has seen the response and retries gets the replay, never a second execution.
 */
function captureResponse(res: ServerResponse, decision: Execute): void {
  const chunks: Buffer[] = [];
  let ended = false;
  // A response closed before end() (the client hung up, or the handler dropped the connection or
  // crashed and its framework destroyed the socket): stop renewing the key's lease. A handler
  // still running may yet end() and have its response stored; one that never does is taken over
  // once the lease passes, rather than holding (and renewing) the key for the whole ttl.
  res.once("close", () => {
    if (!ended) decision.letGo().catch((e: unknown) => res.emit("idempotency-error", e));
  });
  const collect = (chunk: unknown, encoding: unknown) => {
    if (chunk === undefined || chunk === null || typeof chunk === "function") return;
    chunks.push(
      Buffer.isBuffer(chunk)
        ? chunk
        : chunk instanceof Uint8Array
          ? Buffer.from(chunk)
          : Buffer.from(
              typeof chunk === "string" ? chunk : JSON.stringify(chunk),
              typeof encoding === "string" ? (encoding as BufferEncoding) : "utf8",
            ),
    );
  };
  // writeHead(status, headers) may send headers that never enter res.getHeaders(); keep them.
  const headed: Record<string, unknown> = {};
  const writeHead = res.writeHead.bind(res) as (...args: unknown[]) => ServerResponse;
  (res as { writeHead: (...args: unknown[]) => ServerResponse }).writeHead = (...args: unknown[]) => {
    const headers = args.find((a, i) => i > 0 && typeof a === "object" && a !== null);
    if (Array.isArray(headers)) {
      for (let i = 0; i + 1 < headers.length; i += 2)
        headed[String(headers[i]).toLowerCase()] = headers[i + 1];
    } else if (headers) {
      for (const [k, v] of Object.entries(headers)) headed[k.toLowerCase()] = v;
    }
    return writeHead(...args);
  };
  const write = res.write.bind(res) as Writer;
  const end = res.end.bind(res) as Writer;
  (res as { write: Writer }).write = (chunk, encoding, callback) => {
    collect(chunk, encoding);
    return write(chunk, encoding, callback);
  };
  (res as { end: Writer }).end = (chunk, encoding, callback) => {
    ended = true;
    collect(chunk, encoding);
    const send = () => end(chunk, encoding, callback);
    const headers = { ...res.getHeaders(), ...headed };
    decision
      .finish({ status: res.statusCode, headers, body: Buffer.concat(chunks) })
      .then(send, (e: unknown) => {
        // The response still goes out; the key stays in flight until its lease ends.
        res.emit("idempotency-error", e);
        send();
      });
    return res;
  };
}
