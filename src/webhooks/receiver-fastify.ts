import { createWebhookReceiver, type WebhookReceiverOptions } from "./receiver.js";

/** The parts of a Fastify request the receiver reads (declared here so Patchbay does not depend on Fastify). */
export interface FastifyWebhookRequestLike {
  headers: Record<string, string | string[] | undefined>;
  body?: unknown;
}

/** The parts of a Fastify reply the receiver uses. */
export interface FastifyWebhookReplyLike {
  code(status: number): FastifyWebhookReplyLike;
  headers(values: Record<string, string>): FastifyWebhookReplyLike;
  send(payload?: unknown): FastifyWebhookReplyLike;
}

/** The parts of a Fastify instance the receiver plugin uses. */
export interface FastifyWebhookInstanceLike {
  removeAllContentTypeParsers(): unknown;
  addContentTypeParser(
    contentType: string,
    options: { parseAs: "buffer"; bodyLimit?: number },
    parser: (request: unknown, body: Buffer, done: (error: Error | null, body?: unknown) => void) => void,
  ): unknown;
  post(
    path: string,
    handler: (request: FastifyWebhookRequestLike, reply: FastifyWebhookReplyLike) => Promise<unknown>,
  ): unknown;
}

/** Options of {@link webhookReceiverFastify}. */
export interface FastifyWebhookReceiverOptions<T = unknown> extends WebhookReceiverOptions<T> {
  /** The route's path inside the plugin's prefix. Default `"/"`. */
  path?: string;
}

/**
 * A webhook receiver for Fastify, as an encapsulated plugin that registers one `POST` route and
 * reads its bodies raw (the signature covers the bytes), leaving the app's JSON parsing alone
 * elsewhere. Same semantics as {@link webhookReceiver}; bodies over `maxBodyBytes` get 413.
 *
 * @example
 * await app.register(webhookReceiverFastify({ secret, store, handler }), { prefix: "/webhooks" });
 */
export function webhookReceiverFastify<T = unknown>(options: FastifyWebhookReceiverOptions<T>) {
  const receiver = createWebhookReceiver(options);
  return function patchbayWebhookReceiver(fastify: FastifyWebhookInstanceLike): Promise<void> {
    fastify.removeAllContentTypeParsers();
    fastify.addContentTypeParser(
      "*",
      { parseAs: "buffer", bodyLimit: receiver.maxBodyBytes },
      (_req, body, done) => done(null, body),
    );
    fastify.post(options.path ?? "/", async (request, reply) => {
      const raw = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
      const result = await receiver.receive(request.headers, raw);
      return reply.code(result.status).headers(result.headers).send(result.body);
    });
    return Promise.resolve();
  };
}
