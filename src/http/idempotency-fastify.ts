import { isPatchbayError } from "../core/errors.js";
import {
  createIdempotencyGate,
  type IdempotencyDecision,
  type IdempotencyKeyOptions,
} from "./idempotency.js";

/** The parts of a Fastify request the plugin reads (declared here so Patchbay does not depend on Fastify). */
export interface FastifyRequestLike {
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  body?: unknown;
}

/** The parts of a Fastify reply the plugin uses. */
export interface FastifyReplyLike {
  statusCode: number;
  code(status: number): FastifyReplyLike;
  headers(values: Record<string, string>): FastifyReplyLike;
  send(payload?: unknown): FastifyReplyLike;
  getHeaders(): Record<string, unknown>;
  /** The Node response underneath (to notice a reply that closed without being sent). */
  readonly raw?: { once(event: "close", listener: () => void): unknown };
}

/** The parts of a Fastify instance the plugin uses. */
export interface FastifyInstanceLike {
  addHook(
    name: "preHandler",
    hook: (request: FastifyRequestLike, reply: FastifyReplyLike) => Promise<unknown>,
  ): unknown;
  addHook(
    name: "onSend",
    hook: (request: FastifyRequestLike, reply: FastifyReplyLike, payload: unknown) => Promise<unknown>,
  ): unknown;
}

/** Options of {@link idempotencyKeyFastify}. */
export interface FastifyIdempotencyKeyOptions extends IdempotencyKeyOptions {
  /** Client identity that scopes keys; default: one shared scope. */
  client?: (request: FastifyRequestLike) => string | undefined;
}

const DECISION = Symbol("patchbay.idempotency");
type Tagged = FastifyRequestLike & { [DECISION]?: Extract<IdempotencyDecision, { action: "execute" }> };

/**
 * `Idempotency-Key` for Fastify, as a plugin: `await app.register(idempotencyKeyFastify({ store }))`.
 * Same semantics as {@link idempotencyKey}. Applies to every route registered in the same scope;
 * streamed replies are not stored (the key is released).
 */
export function idempotencyKeyFastify(options: FastifyIdempotencyKeyOptions) {
  const gate = createIdempotencyGate(options);

  const plugin = (fastify: FastifyInstanceLike): Promise<void> => {
    fastify.addHook("preHandler", async (request: Tagged, reply) => {
      const raw = request.headers[gate.headerName];
      const decision = await gate.decide({
        method: request.method,
        url: request.url,
        key: Array.isArray(raw) ? raw[0] : raw,
        body: request.body,
        contentType: [request.headers["content-type"]].flat()[0],
        client: options.client?.(request),
      });
      if (decision.action === "respond") {
        return reply.code(decision.status).headers(decision.headers).send(decision.body);
      }
      if (decision.action === "execute") {
        request[DECISION] = decision;
        // A reply closed before onSend (the client gone, a hijacked reply dropped): stop renewing
        // the key's lease. A handler still running may yet reply and have it stored; one that
        // never does is taken over once the lease passes, rather than holding (and renewing)
        // the key for the whole ttl.
        reply.raw?.once("close", () => {
          if (request[DECISION] === decision) decision.letGo().catch(() => undefined);
        });
      }
      return undefined;
    });

    fastify.addHook("onSend", async (request: Tagged, reply, payload) => {
      const decision = request[DECISION];
      if (!decision) return payload;
      delete request[DECISION];
      if (
        payload !== null &&
        payload !== undefined &&
        typeof payload !== "string" &&
        !Buffer.isBuffer(payload)
      ) {
        await decision.abandon();
        return payload;
      }
      try {
        await decision.finish({
          status: reply.statusCode,
          headers: reply.getHeaders(),
          body: Buffer.from(payload ?? ""),
        });
      } catch (e) {
        // The handler's work is done: its answer still goes out (a hook that threw would turn it
        // into a 500, and the client's retry would run the handler again). The key stays in
        // flight until its lease ends, as with the Node middleware.
        // (A key lost to another holder is reported by the gate already.)
        if (!isPatchbayError(e, "IDEMPOTENCY_NOT_OWNER")) {
          gate.logger.error(
            { err: e, url: request.url },
            "patchbay idempotency: storing the response failed; it was sent unstored",
          );
        }
      }
      return payload;
    });
    return Promise.resolve();
  };
  // Like fastify-plugin: hooks apply to the scope that registers the plugin, not only inside it.
  Object.assign(plugin, {
    [Symbol.for("skip-override")]: true,
    [Symbol.for("fastify.display-name")]: "patchbay-idempotency-key",
  });
  return plugin;
}
