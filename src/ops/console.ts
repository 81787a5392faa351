/**
 * `createConsole()`: the web console as a node `http` request handler — one page (shipped with
 * the package, no CDN, no build step) and its JSON API under `api/`. Mount it under any path:
 * node `http`, Express (`app.use("/ops", handler)`) or Fastify (see docs/console.md).
 *
 * Safety: a token (Bearer, or the password of basic auth) is required for actions whenever one
 * is configured, and for every request that arrives on a non-loopback address (which, with no
 * token configured, is refused); `readOnly` refuses every action; an action must carry the
 * `x-patchbay-console` header (which no cross-site form or simple request can set) and come from
 * the same origin; every action is written to the audit log.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { systemClock, type Clock } from "../core/clock.js";
import { InvalidArgumentError, isPatchbayError } from "../core/errors.js";
import { CONSOLE_PAGE, CONSOLE_SCRIPT, CONSOLE_STYLE } from "./console-assets/index.js";
import { consoleApi, pipelinesOf, type ConsoleParts } from "./console-api.js";
import { consoleAudit } from "./console-audit.js";
import { ConsoleError } from "./console-errors.js";

/** Options of {@link createConsole}. */
export interface ConsoleOptions extends ConsoleParts {
  /**
   * Required for actions (as `Authorization: Bearer <token>`, or as the password of basic auth,
   * whose user name is recorded in the audit log). Without one, actions are allowed only on
   * requests that arrive on a loopback address.
   */
  token?: string;
  /** Shows everything, changes nothing. Default `false`. */
  readOnly?: boolean;
  /**
   * The path the console is mounted under when the framework does not strip it from `req.url`
   * (node `http`, Fastify): `"/ops"`. Express strips it; leave it unset there.
   */
  basePath?: string;
  clock?: Clock;
}

/** The console: call it as a request handler; `close()` stops what it created. */
export interface ConsoleHandler {
  (req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void): void;
  close(): Promise<void>;
}

/** The header every action must carry. */
export const CONSOLE_HEADER = "x-patchbay-console";

const MAX_BODY = 1 << 20;

const isLoopback = (address: string | undefined) =>
  address !== undefined &&
  (address === "::1" || address.startsWith("127.") || address.startsWith("::ffff:127."));

const digest = (s: string) => createHash("sha256").update(s).digest();

/** Who presented which credential: `undefined` when none. */
function credential(req: IncomingMessage): { actor: string; secret: string } | undefined {
  const header = req.headers.authorization ?? "";
  const bearer = /^Bearer\s+(.+)$/i.exec(header);
  if (bearer) return { actor: "token", secret: bearer[1]!.trim() };
  const basic = /^Basic\s+(.+)$/i.exec(header);
  if (basic) {
    const decoded = Buffer.from(basic[1]!, "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    if (colon < 0) return undefined;
    return { actor: decoded.slice(0, colon) || "basic", secret: decoded.slice(colon + 1) };
  }
  return undefined;
}

function readBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY) {
        reject(new InvalidArgumentError("request body over 1 MiB", "body"));
        req.destroy();
      } else chunks.push(chunk);
    });
    req.on("error", reject);
    req.on("end", () => {
      const raw = Buffer.concat(chunks).toString("utf8");
      if (raw.trim() === "") return resolve({});
      try {
        const parsed = JSON.parse(raw) as unknown;
        if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
          throw new Error("not an object");
        }
        resolve(parsed as Record<string, unknown>);
      } catch {
        reject(new InvalidArgumentError("request body must be a JSON object", "body"));
      }
    });
  });
}

function send(res: ServerResponse, status: number, type: string, body: string | Buffer, extra = {}) {
  res.writeHead(status, {
    "content-type": type,
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "content-security-policy":
      "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    ...extra,
  });
  res.end(body);
}

/**
 * The request's URL. A path is appended to a fixed origin rather than resolved against it: resolved,
 * `//x/api/...` would be read as a host `x` and `//` would not parse at all.
 */
function requestUrl(raw: string): URL {
  const base = "http://console.invalid";
  try {
    return raw.startsWith("/") ? new URL(base + raw) : new URL(raw, base);
  } catch {
    throw new ConsoleError("CONSOLE_NOT_FOUND", "not a path this console serves");
  }
}

/**
 * Creates the web console over an application's parts (only `store` is required).
 *
 * @example
 * const handler = createConsole({ store, bus, sagas, token: process.env.CONSOLE_TOKEN });
 * http.createServer(handler).listen(9400, "127.0.0.1"); // http://127.0.0.1:9400/
 */
export function createConsole(options: ConsoleOptions): ConsoleHandler {
  if (!options?.store) throw new InvalidArgumentError("createConsole needs a store", "store");
  if (options.token !== undefined && (typeof options.token !== "string" || options.token.length < 8)) {
    throw new InvalidArgumentError("token must be a string of at least 8 characters", "token");
  }
  const clock = options.clock ?? systemClock;
  const audit = consoleAudit(options.store, clock);
  const api = consoleApi(options, audit, clock);
  const base = (options.basePath ?? "").replace(/\/+$/, "");
  const tokenDigest = options.token === undefined ? undefined : digest(options.token);

  /** The actor, after the request's credentials were checked; throws when it may not go on. */
  function authorize(req: IncomingMessage, action: boolean): string {
    const remote = !isLoopback(req.socket.localAddress);
    const given = credential(req);
    if (tokenDigest) {
      const ok = given !== undefined && timingSafeEqual(digest(given.secret), tokenDigest);
      if (ok) return given.actor;
      if (action || remote) {
        throw new ConsoleError(
          "CONSOLE_UNAUTHORIZED",
          given ? "wrong token" : "this needs the console token",
        );
      }
      return "anonymous";
    }
    if (remote && action) {
      throw new ConsoleError(
        "CONSOLE_TOKEN_REQUIRED",
        "the console is reachable beyond loopback and has no token: actions are refused (set a token)",
      );
    }
    return "local";
  }

  /** Actions: the console's header, a JSON body, and (when the browser says) the same origin. */
  function checkSameSite(req: IncomingMessage): void {
    if (req.headers[CONSOLE_HEADER] !== "1") {
      throw new ConsoleError("CONSOLE_CROSS_SITE", `an action needs the header ${CONSOLE_HEADER}: 1`);
    }
    const site = req.headers["sec-fetch-site"];
    if (site !== undefined && site !== "same-origin" && site !== "none") {
      throw new ConsoleError("CONSOLE_CROSS_SITE", `cross-site request refused (sec-fetch-site: ${site})`);
    }
    const origin = req.headers.origin;
    if (origin !== undefined && origin !== "null") {
      let host: string;
      try {
        host = new URL(origin).host;
      } catch {
        host = "";
      }
      if (host !== req.headers.host) {
        throw new ConsoleError("CONSOLE_CROSS_SITE", `request from origin ${origin} refused`);
      }
    } else if (origin === "null") {
      throw new ConsoleError("CONSOLE_CROSS_SITE", "request from an opaque origin refused");
    }
  }

  async function serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = requestUrl(req.url ?? "/");
    let path = url.pathname;
    if (base && (path === base || path.startsWith(`${base}/`))) path = path.slice(base.length) || "/";
    const method = req.method ?? "GET";

    if (!path.startsWith("/api/")) {
      if (method !== "GET" && method !== "HEAD") throw new ConsoleError("CONSOLE_NOT_FOUND", "not found");
      // The page's relative links need the mount path to end with "/".
      const outer = ((req as { originalUrl?: string }).originalUrl ?? req.url ?? "/").split("?")[0]!;
      if (path === "/" && !outer.endsWith("/")) {
        return send(res, 308, "text/plain", "", { location: `${outer}/${url.search}` });
      }
      if (tokenDigest || !isLoopback(req.socket.localAddress)) authorize(req, false);
      if (path === "/" || path === "/index.html")
        return send(res, 200, "text/html; charset=utf-8", CONSOLE_PAGE);
      if (path === "/console.js") return send(res, 200, "text/javascript; charset=utf-8", CONSOLE_SCRIPT);
      if (path === "/console.css") return send(res, 200, "text/css; charset=utf-8", CONSOLE_STYLE);
      throw new ConsoleError("CONSOLE_NOT_FOUND", `${path} not found`);
    }

    const route = path.slice("/api/".length);
    if (route === "config") {
      const actor = authorize(req, false);
      return send(
        res,
        200,
        "application/json",
        JSON.stringify({
          readOnly: options.readOnly === true,
          tokenRequired: tokenDigest !== undefined || !isLoopback(req.socket.localAddress),
          authorized: actor !== "anonymous",
          actor,
          pipelines: pipelinesOf(options).map((p) => p.name),
          parts: { bus: options.bus !== undefined, sagas: options.sagas !== undefined },
        }),
      );
    }
    if (method === "GET") {
      const actor = authorize(req, false);
      const result = await api.handle({ method, route, query: url.searchParams, body: {}, actor });
      return send(res, 200, "application/json", JSON.stringify(result));
    }
    if (method !== "POST") {
      throw new ConsoleError("CONSOLE_METHOD_NOT_ALLOWED", `${method} is not allowed: GET or POST`);
    }
    checkSameSite(req);
    const actor = authorize(req, true);
    if (options.readOnly) throw new ConsoleError("CONSOLE_READ_ONLY", "the console is read-only");
    if (!/^application\/json\b/i.test(req.headers["content-type"] ?? "")) {
      throw new ConsoleError("CONSOLE_CROSS_SITE", "an action's body must be application/json");
    }
    const body = await readBody(req);
    const result = await api.handle({ method, route, query: url.searchParams, body, actor });
    return send(res, 200, "application/json", JSON.stringify(result));
  }

  const handler = ((req, res) => {
    serve(req, res).catch((e: unknown) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (!isPatchbayError(e)) console.error("patchbay console:", e);
      const error = isPatchbayError(e)
        ? e
        : new ConsoleError("CONSOLE_INTERNAL", "internal error (see the server log)");
      const status =
        error instanceof ConsoleError
          ? error.status
          : isPatchbayError(error, "INVALID_ARGUMENT") || isPatchbayError(error, "DURATION_INVALID")
            ? 400
            : error.code.endsWith("_NOT_FOUND")
              ? 404
              : 409;
      // The page asks the browser for basic auth; the API's callers (the page's script) do not.
      const challenge = status === 401 && !(req.url ?? "").includes("/api/");
      send(res, status, "application/json", JSON.stringify({ code: error.code, message: error.message }), {
        ...(challenge ? { "www-authenticate": 'Basic realm="patchbay console", charset="UTF-8"' } : {}),
        ...(status === 405 ? { allow: "GET, POST" } : {}),
      });
    });
  }) as ConsoleHandler;
  handler.close = () => api.close();
  return handler;
}
