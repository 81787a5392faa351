/**
 * `opsHandler`: `/metrics`, `/healthz` and `/readyz` as one node `http` request handler, which
 * Express mounts as middleware (`app.use(handler)`) and Fastify serves through `reply.raw`.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { checkLiveness, type ReadinessReport } from "./health.js";
import type { PatchbayMetrics } from "./metrics.js";

/** What {@link opsHandler} serves: a Patchbay (`pb`) or anything with these two methods. */
export interface OpsSource {
  metrics(): PatchbayMetrics;
  health(): Promise<ReadinessReport>;
}

/** Options of {@link opsHandler}. */
export interface OpsHandlerOptions {
  /** A path prefix the three routes sit under (e.g. `"/ops"`); default none. */
  prefix?: string;
}

/** A node `http` handler; `next` (Express) is called for paths it does not serve, else it answers 404. */
export type OpsRequestHandler = (
  req: IncomingMessage,
  res: ServerResponse,
  next?: (err?: unknown) => void,
) => void;

/**
 * Serves `GET /metrics` (Prometheus text format), `GET /healthz` (200 while the process runs) and
 * `GET /readyz` (200 when ready, 503 with the failing check otherwise), all with JSON detail.
 *
 * @example
 * const ops = opsHandler(pb);
 * http.createServer((req, res) => ops(req, res)).listen(9464);
 */
export function opsHandler(source: OpsSource, options: OpsHandlerOptions = {}): OpsRequestHandler {
  const prefix = (options.prefix ?? "").replace(/\/+$/, "");
  return (req, res, next) => {
    const path = (req.url ?? "/").split("?")[0] ?? "/";
    const route = prefix && path.startsWith(prefix) ? path.slice(prefix.length) : prefix ? undefined : path;
    const known = route === "/metrics" || route === "/healthz" || route === "/readyz";
    if (!known) {
      if (next) next();
      else send(res, 404, "application/json", JSON.stringify({ error: "not found" }), req.method);
      return;
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.setHeader("allow", "GET, HEAD");
      send(res, 405, "application/json", JSON.stringify({ error: "method not allowed" }), req.method);
      return;
    }
    answer(source, route).then(
      ({ status, type, body }) => send(res, status, type, body, req.method),
      (e: unknown) =>
        send(
          res,
          500,
          "application/json",
          JSON.stringify({ error: e instanceof Error ? e.message : String(e) }),
          req.method,
        ),
    );
  };
}

async function answer(source: OpsSource, route: string) {
  if (route === "/metrics") {
    const metrics = source.metrics();
    return { status: 200, type: metrics.contentType, body: await metrics.scrape() };
  }
  if (route === "/healthz")
    return { status: 200, type: "application/json", body: JSON.stringify(checkLiveness()) };
  const report = await source.health();
  return {
    status: report.status === "ready" ? 200 : 503,
    type: "application/json",
    body: JSON.stringify(report),
  };
}

function send(res: ServerResponse, status: number, type: string, body: string, method: string | undefined) {
  if (res.headersSent) return;
  res.statusCode = status;
  res.setHeader("content-type", type);
  res.setHeader("cache-control", "no-store");
  res.setHeader("content-length", Buffer.byteLength(body));
  res.end(method === "HEAD" ? undefined : body);
}

/** A node `http` handler that answers every request with the Prometheus scrape of `metrics`. */
export function metricsHandler(
  metrics: PatchbayMetrics,
): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    metrics.scrape().then(
      (body) => send(res, 200, metrics.contentType, body, req.method),
      (e: unknown) => send(res, 500, "text/plain", e instanceof Error ? e.message : String(e), req.method),
    );
  };
}
