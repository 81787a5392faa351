/**
 * The framework-neutral core of the `Idempotency-Key` middleware (IETF
 * draft-ietf-httpapi-idempotency-key-header, and Stripe's practice): decides, for one request,
 * whether to run the handler, replay a stored response, or refuse — backed by the Store's
 * idempotency records, so it holds across processes on PostgreSQL.
 */
import { createHash } from "node:crypto";
import type { Duration } from "../core/duration.js";
import { toMs } from "../core/duration.js";
import { InvalidArgumentError, isPatchbayError } from "../core/errors.js";
import { createLogger, type Logger } from "../core/logger.js";
import type { IdempotencyRef, IdempotencyStore } from "../store/contracts.js";

/** Options of the `Idempotency-Key` middleware. */
export interface IdempotencyKeyOptions {
  /** Where records live: any Patchbay Store (its `idempotency` role). */
  store: { readonly idempotency: IdempotencyStore };
  /** Refuse requests without a key with 400 (default `false`: they run normally, unprotected). */
  required?: boolean;
  /** Methods the middleware covers. Default `["POST", "PATCH"]`: the non-idempotent ones. */
  methods?: readonly string[];
  /** Request header carrying the key. Default `idempotency-key`. */
  header?: string;
  /** How long a completed response is replayed. Default 24 h. */
  ttl?: Duration;
  /**
   * How long a request in progress holds its key without a sign of life. While its handler runs,
   * the holder renews the lease every third of it (a heartbeat), so a slow handler keeps its key
   * and a retry meanwhile gets 409; only a holder that stopped renewing (its process died) is taken
   * over, once the lease has passed since its last renewal — or a handler still running when the
   * record's `ttl` ends. Default 60 s.
   */
  lease?: Duration;
  /** Response headers stored and replayed along with status and body. */
  replayHeaders?: readonly string[];
  /** Responses larger than this are not stored (the key is released). Default 1 MiB. */
  maxBodyBytes?: number;
  /**
   * The largest request body the Node middleware reads itself (when no body parser ran before
   * it): a larger one is refused with 413 as it streams in, never buffered whole. Default 1 MiB.
   */
  maxRequestBytes?: number;
  /**
   * Store 5xx responses too. Default `false`: a 5xx releases the key so a retry runs the handler
   * again. 408, 425 and 429 ("not processed, try again") always release it.
   */
  storeServerErrors?: boolean;
  /**
   * Where a key lost while its handler ran is reported (at error level): its lease passed without
   * a renewal landing — a process paused or a database slower than the lease — so a retry may have
   * run the handler a second time. Default: Patchbay's logger (pino, `PATCHBAY_LOG_LEVEL`).
   */
  logger?: Logger;
}

/** A response as stored and replayed. */
export interface StoredResponse {
  status: number;
  headers: Record<string, string>;
  /** Body bytes, base64. */
  body: string;
}

/** What the framework adapter must do with a request. */
export type IdempotencyDecision =
  | { action: "pass" }
  | { action: "respond"; status: number; headers: Record<string, string>; body: Buffer }
  | {
      action: "execute";
      /** Records the handler's response for replay (or releases the key, for 5xx or oversized bodies). */
      finish(response: { status: number; headers: Record<string, unknown>; body: Buffer }): Promise<void>;
      /** Releases the key: the request ended without a response (aborted, crashed handler). */
      abandon(): Promise<void>;
      /**
       * Stops renewing the key's lease without releasing it: the connection closed before a
       * response. A handler still running may yet answer (`finish` stores it, within the lease);
       * one that never does is taken over once the lease passes, instead of holding the key for
       * the whole ttl. Releasing at once would let a retry run beside a handler still running.
       */
      letGo(): Promise<void>;
    };

/** The request facts the core needs. */
export interface IdempotencyRequest {
  method: string;
  /** Path and query, as received. */
  url: string;
  /** The key header's raw value, if any. */
  key: string | undefined;
  /** The body: raw bytes, text, or what a body parser produced (hashed as canonical JSON). */
  body: unknown;
  /** Client identity (API key id, account id) that scopes keys; keys of different clients never collide. */
  client?: string | undefined;
  /** The request's content type, to read raw JSON bodies canonically. */
  contentType?: string | undefined;
}

/** Answers that say the request was not processed and may be retried as is. */
const NOT_PROCESSED = new Set([408, 425, 429]);

const DEFAULT_REPLAY_HEADERS = [
  "content-type",
  "content-language",
  "location",
  "content-location",
  "cache-control",
  "etag",
  "last-modified",
];

/** Problem Details (RFC 9457) responses for refusals. */
function problem(status: number, title: string, detail: string, extra: Record<string, string> = {}) {
  return {
    action: "respond" as const,
    status,
    headers: { "content-type": "application/problem+json", ...extra },
    body: Buffer.from(
      JSON.stringify({ type: "https://patchbay.dev/problems/idempotency", title, status, detail }),
    ),
  };
}

/** JSON with sorted object keys, so `{a,b}` and `{b,a}` fingerprint alike. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value && typeof value === "object" && !(value instanceof Uint8Array)) {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}

/** Raw JSON text as canonical JSON, so a retry that re-serialized the same object still matches. */
function canonicalText(body: Uint8Array | string, contentType: string | undefined): Uint8Array | string {
  if (!contentType || !/\bjson\b|\+json/i.test(contentType)) return body;
  try {
    const text = typeof body === "string" ? body : Buffer.from(body).toString("utf8");
    return canonicalJson(JSON.parse(text));
  } catch {
    return body;
  }
}

/**
 * SHA-256 over method, path+query and body. Parsed bodies and JSON text are hashed as canonical
 * JSON (sorted keys); other bodies byte for byte.
 */
export function requestFingerprint(method: string, url: string, body: unknown, contentType?: string): string {
  const hash = createHash("sha256").update(`${method.toUpperCase()}\n${url}\n`);
  if (body instanceof Uint8Array || typeof body === "string") hash.update(canonicalText(body, contentType));
  else if (body !== undefined && body !== null) hash.update(canonicalJson(body));
  return hash.digest("base64url");
}

/**
 * Reads a key: the draft makes it a Structured Field string (`"abc"`); Stripe-style bare values
 * are accepted too. Returns undefined when the value is unusable.
 */
function parseKey(raw: string): string | undefined {
  let key = raw.trim();
  if (key.length >= 2 && key.startsWith('"') && key.endsWith('"')) key = key.slice(1, -1);
  if (key.length === 0 || key.length > 255 || !/^[\x20-\x7e]+$/.test(key)) return undefined;
  return key;
}

/**
 * Renews a held key's lease every third of it until stopped: the holder's sign of life. Beats keep
 * their cadence from when each started (a slow renewal does not push the next one later, which
 * on a loaded database would let the lease run out between two beats), one renewal at a time. A
 * renewal that finds the key no longer held (`IDEMPOTENCY_NOT_OWNER`) ends the heartbeat and
 * reports it through `lost`; any other failure (the store briefly unreachable) is tried again at
 * the next beat, while the lease still runs.
 */
function startHeartbeat(
  records: IdempotencyStore,
  ref: IdempotencyRef,
  token: string,
  lease: number,
  lost: (e: unknown) => void,
) {
  const every = Math.max(1, Math.floor(lease / 3));
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let beating: Promise<void> = Promise.resolve();
  const beat = () => {
    const started = Date.now();
    const next = () => {
      if (!stopped) schedule(Math.max(0, started + every - Date.now()));
    };
    beating = records.renew(ref, token, lease).then(next, (e: unknown) => {
      if (!isPatchbayError(e, "IDEMPOTENCY_NOT_OWNER")) return next();
      if (!stopped) lost(e);
    });
  };
  const schedule = (ms: number) => {
    timer = setTimeout(beat, ms);
    // A beat must not keep the process alive on its own.
    timer.unref();
  };
  schedule(every);
  return {
    /** Stops beating and waits for a renewal in flight, so it cannot land after the outcome. */
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await beating;
    },
  };
}

/** Builds the decision function shared by the Node/Express and Fastify adapters. */
export function createIdempotencyGate(options: IdempotencyKeyOptions) {
  if (!options?.store?.idempotency) {
    throw new InvalidArgumentError("idempotencyKey needs a store (any Patchbay Store)", "store");
  }
  const methods = new Set((options.methods ?? ["POST", "PATCH"]).map((m) => m.toUpperCase()));
  const ttl = toMs(options.ttl ?? "24h", "ttl");
  const lease = toMs(options.lease ?? "60s", "lease");
  if (lease === 0) throw new InvalidArgumentError("lease must be greater than zero", "lease");
  const replayHeaders = (options.replayHeaders ?? DEFAULT_REPLAY_HEADERS).map((h) => h.toLowerCase());
  const maxBodyBytes = options.maxBodyBytes ?? 1024 * 1024;
  const headerName = (options.header ?? "idempotency-key").toLowerCase();
  const records = options.store.idempotency;
  const logger = options.logger ?? createLogger({ name: "patchbay" });

  const replay = (stored: StoredResponse | undefined) => {
    if (!stored) return problem(500, "Stored response unreadable", "the stored response is missing");
    return {
      action: "respond" as const,
      status: stored.status,
      headers: { ...stored.headers, "idempotent-replayed": "true" },
      body: Buffer.from(stored.body, "base64"),
    };
  };

  async function decide(req: IdempotencyRequest): Promise<IdempotencyDecision> {
    if (!covers(req.method)) return { action: "pass" };
    if (req.key === undefined) {
      return options.required
        ? problem(400, "Idempotency-Key is missing", `this endpoint requires an ${headerName} header`)
        : { action: "pass" };
    }
    const key = parseKey(req.key);
    if (key === undefined) {
      return problem(
        400,
        "Idempotency-Key is invalid",
        "the key must be 1 to 255 printable ASCII characters",
      );
    }
    const ref: IdempotencyRef = { scope: req.client ? `client:${req.client}` : "anonymous", key };
    const fingerprint = requestFingerprint(req.method, req.url, req.body, req.contentType);
    const claim = await records.claim<StoredResponse>({ ...ref, fingerprint, ttl, lease });
    switch (claim.outcome) {
      case "mismatch":
        return problem(
          422,
          "Idempotency-Key reused",
          "this key was already used with a different request (method, path or body)",
        );
      case "in_flight":
        return problem(
          409,
          "Request in progress",
          "a request with this key is still being processed; retry later",
          {
            "retry-after": "1",
          },
        );
      case "completed":
        return replay(claim.record.response);
      case "claimed":
        break;
    }
    const token = claim.token;
    let settled = false;
    let reported = false;
    /** Reported once: the heartbeat or the completion found the key taken over. */
    const lost = (e: unknown) => {
      if (reported) return;
      reported = true;
      logger.error(
        { err: e, scope: ref.scope, key, leaseMs: lease },
        "patchbay idempotency: a request lost its key while its handler ran (its lease passed without a renewal); a retry may have run the handler again — raise `lease`",
      );
    };
    const heartbeat = startHeartbeat(records, ref, token, lease, lost);
    const release = async () => {
      if (settled) return;
      settled = true;
      await heartbeat.stop();
      await records.release(ref, token);
    };
    return {
      action: "execute",
      async finish(response) {
        if (settled) return;
        // "Not processed, try again" answers (408, 425, 429, 5xx) are not outcomes: storing one
        // would replay it to every retry and the request could never succeed.
        const notProcessed =
          NOT_PROCESSED.has(response.status) || (response.status >= 500 && !options.storeServerErrors);
        if (notProcessed || response.body.length > maxBodyBytes) {
          await release();
          return;
        }
        const headers: Record<string, string> = {};
        for (const name of replayHeaders) {
          const value = response.headers[name];
          if (typeof value === "string" || typeof value === "number") headers[name] = String(value);
          else if (Array.isArray(value)) headers[name] = value.map(String).join(", ");
        }
        settled = true;
        await heartbeat.stop();
        try {
          await records.complete<StoredResponse>(ref, token, {
            status: response.status,
            headers,
            body: response.body.toString("base64"),
          });
        } catch (e) {
          if (isPatchbayError(e, "IDEMPOTENCY_NOT_OWNER")) lost(e);
          throw e;
        }
      },
      abandon: release,
      letGo: () => heartbeat.stop(),
    };
  }

  /** Whether the middleware looks at requests of this method at all. */
  const covers = (method: string) => methods.has(method.toUpperCase());

  return { decide, covers, headerName, logger };
}
