/**
 * The default connector: one HTTP POST over Node's `http`/`https` with keep-alive agents, opened
 * to the address the SSRF policy checked (a `lookup` that returns only that address), while the
 * URL's host name stays in the `Host` header and TLS SNI / certificate checks. Redirects are
 * never followed (`http.request` does not). At most `maxResponseBytes` of the response are kept.
 */
import http from "node:http";
import https from "node:https";
import { isIP, type LookupFunction } from "node:net";
import { WebhookDeliveryError } from "./errors.js";

/** What a connector is asked to send. */
export interface ConnectRequest {
  /** The endpoint URL (its host name is used for `Host` and SNI). */
  url: URL;
  /** The checked address to open the connection to. */
  address: string;
  family: 4 | 6;
  headers: Record<string, string>;
  body: Buffer;
  /** Aborts the request (the timeout, or shutdown). */
  signal: AbortSignal;
  /** How much of the response body to keep. */
  maxResponseBytes: number;
}

/** What the receiver answered. */
export interface ConnectResponse {
  status: number;
  headers: Record<string, string>;
  /** The first `maxResponseBytes` of the body, as text. */
  body: string;
}

/**
 * Sends one request to a checked address. Rejects with {@link WebhookDeliveryError}
 * (`WEBHOOK_NETWORK`) when no answer came, or with the signal's reason when aborted. Tests inject
 * their own to observe (or forbid) connections.
 */
export type WebhookConnector = (request: ConnectRequest) => Promise<ConnectResponse>;

/** A connector that owns sockets, closed by {@link HttpConnector.close}. */
export interface HttpConnector {
  readonly send: WebhookConnector;
  /** Destroys pooled sockets. */
  close(): void;
}

/** Options of {@link createHttpConnector}. */
export interface HttpConnectorOptions {
  /** Sockets kept per host. Default 64. */
  maxSockets?: number;
  /** Response bytes beyond the excerpt read to keep the connection reusable; past this the socket is dropped. Default 64 KiB. */
  drainBytes?: number;
  /** Certificate authorities to trust instead of the system's (a private PKI, tests). */
  ca?: string | Buffer | Array<string | Buffer>;
}

/** Builds the default keep-alive connector. */
export function createHttpConnector(options: HttpConnectorOptions = {}): HttpConnector {
  const agentOptions = { keepAlive: true, maxSockets: options.maxSockets ?? 64, scheduling: "lifo" as const };
  const agents = {
    http: new http.Agent(agentOptions),
    https: new https.Agent({ ...agentOptions, ...(options.ca === undefined ? {} : { ca: options.ca }) }),
  };
  const drainBytes = options.drainBytes ?? 65_536;

  const send: WebhookConnector = (request) =>
    new Promise<ConnectResponse>((resolve, reject) => {
      const { url, address, family, signal } = request;
      if (signal.aborted) {
        reject(signal.reason as Error);
        return;
      }
      const secure = url.protocol === "https:";
      const hostname = url.hostname.replace(/^\[|\]$/g, "");
      // Whatever name the socket asks for, it gets the checked address: no second DNS answer.
      const pinned: LookupFunction = (_name, lookupOptions, callback) => {
        if ((lookupOptions as { all?: boolean }).all) {
          (callback as unknown as (e: null, list: Array<{ address: string; family: number }>) => void)(null, [
            { address, family },
          ]);
        } else callback(null, address, family);
      };
      let settled = false;
      // Abort by hand rather than with http.request's `signal` option, which measured slower on
      // keep-alive loopback (it tracks every request with stream.finished()).
      const onAbort = () => req.destroy(signal.reason as Error);
      const settle = () => {
        settled = true;
        signal.removeEventListener("abort", onAbort);
      };
      const fail = (error: Error) => {
        if (settled) return;
        settle();
        reject(
          signal.aborted
            ? (signal.reason as Error)
            : new WebhookDeliveryError("WEBHOOK_NETWORK", `POST ${url.origin}: ${error.message}`, undefined, {
                cause: error,
              }),
        );
      };
      const req = (secure ? https : http).request({
        protocol: url.protocol,
        hostname,
        port: url.port === "" ? (secure ? 443 : 80) : Number(url.port),
        path: `${url.pathname}${url.search}`,
        method: "POST",
        headers: { ...request.headers, host: url.host, "content-length": String(request.body.length) },
        agent: secure ? agents.https : agents.http,
        lookup: pinned,
        ...(url.username || url.password
          ? { auth: `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}` }
          : {}),
        ...(secure && isIP(hostname) === 0 ? { servername: hostname } : {}),
      });
      signal.addEventListener("abort", onAbort, { once: true });
      req.once("error", fail);
      req.once("response", (res) => {
        const chunks: Buffer[] = [];
        let kept = 0;
        let seen = 0;
        const finish = () => {
          if (settled) return;
          settle();
          const headers: Record<string, string> = {};
          for (const [k, v] of Object.entries(res.headers)) {
            if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(", ") : v;
          }
          resolve({ status: res.statusCode ?? 0, headers, body: Buffer.concat(chunks).toString("utf8") });
        };
        res.on("data", (chunk: Buffer) => {
          seen += chunk.length;
          if (kept < request.maxResponseBytes) {
            const part = chunk.subarray(0, request.maxResponseBytes - kept);
            chunks.push(part);
            kept += part.length;
          }
          // A long body is not worth reading for a keep-alive socket: drop the connection.
          if (seen > request.maxResponseBytes + drainBytes) {
            finish();
            res.destroy();
          }
        });
        res.once("end", finish);
        // The receiver answered: a body cut short still leaves us the status and what we read.
        res.once("error", finish);
        res.once("close", finish);
      });
      req.end(request.body);
    });

  return {
    send,
    close() {
      agents.http.destroy();
      agents.https.destroy();
    },
  };
}
