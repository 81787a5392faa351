import { randomUUID } from "node:crypto";
import type { Clock } from "../core/clock.js";
import { toMs, type Duration } from "../core/duration.js";
import { InvalidArgumentError, PatchbayError } from "../core/errors.js";
import type {
  ClaimOptions,
  IdempotencyClaim,
  IdempotencyRecord,
  IdempotencyRef,
  IdempotencyStore,
  SqlExecutor,
  Transactor,
} from "./contracts.js";
import { int, quoteColumn, run, type SqlDialect } from "./dialect.js";
import { IdempotencyOwnershipError } from "./errors.js";
import { assertJsonValue } from "./state-store.js";
import { raw, sql } from "./sql.js";

/** Default lifetime of a record and its stored response (the IETF draft and Stripe use 24 h). */
export const DEFAULT_IDEMPOTENCY_TTL = "24h";
/** Default time an in-flight claim is held before another caller may take it over. */
export const DEFAULT_IDEMPOTENCY_LEASE = "60s";

interface Row {
  scope: string;
  key: string;
  fingerprint: string;
  status: "in_flight" | "complete";
  response: unknown;
  token: string;
  created_at: unknown;
  locked_until: unknown;
  expires_at: unknown;
}

function refOf(ref: IdempotencyRef): { scope: string; key: string } {
  const scope = ref.scope ?? "default";
  for (const [name, v] of [
    ["scope", scope],
    ["key", ref.key],
  ] as const) {
    if (typeof v !== "string" || v.length === 0 || v.length > 255) {
      throw new InvalidArgumentError(`idempotency ${name} must be a string of 1 to 255 characters`, name);
    }
  }
  return { scope, key: ref.key };
}

/** The {@link IdempotencyStore} over any SQL executor (the store itself, or a transaction handle). */
export function createIdempotencyStore(
  executor: SqlExecutor & Partial<Transactor>,
  dialect: SqlDialect,
  clock: Clock,
): IdempotencyStore {
  const t = raw(dialect.table("idempotency"));
  const kq = quoteColumn(dialect, "key");
  const k = raw(kq);
  const toRecord = <R>(row: Row): IdempotencyRecord<R> => ({
    scope: row.scope,
    key: row.key,
    fingerprint: row.fingerprint,
    status: row.status,
    response: row.response === null ? undefined : (dialect.decodeJson(row.response) as R),
    createdAt: int(row.created_at),
    lockedUntil: int(row.locked_until),
    expiresAt: int(row.expires_at),
  });
  const select = (scope: string, key: string) =>
    run<Row>(executor, dialect, sql`SELECT * FROM ${t} WHERE scope = ${scope} AND ${k} = ${key}`);

  return {
    async claim<R>(options: ClaimOptions): Promise<IdempotencyClaim<R>> {
      const { scope, key } = refOf(options);
      if (typeof options.fingerprint !== "string" || options.fingerprint.length === 0) {
        throw new InvalidArgumentError("fingerprint must be a non-empty string", "fingerprint");
      }
      const ttl = toMs(options.ttl ?? DEFAULT_IDEMPOTENCY_TTL, "ttl");
      const lease = toMs(options.lease ?? DEFAULT_IDEMPOTENCY_LEASE, "lease");
      if (ttl === 0) throw new InvalidArgumentError("ttl must be greater than zero", "ttl");
      // A lease of 0 ends as it starts: every concurrent claim would take the key over.
      if (lease === 0) throw new InvalidArgumentError("lease must be greater than zero", "lease");
      const fp = options.fingerprint;
      // A row deleted between our failed upsert and our read (a purge, a release) makes us try
      // again; the next upsert then inserts, or conflicts with a live row we can classify.
      for (let round = 0; round < 3; round++) {
        const now = clock.now();
        const token = randomUUID();
        // The conditional upsert is atomic (one statement, or the backend's own transaction): of
        // N concurrent claims exactly one inserts (or replaces a dead record); the rest see a
        // live row and are classified below.
        const rows = await dialect.roles.rows.upsertWhen<{ token: string; generation: unknown }>(executor, {
          table: t,
          alias: "r",
          columns: `scope, ${kq}, fingerprint, status, response, token, generation, created_at, locked_until, expires_at`,
          row: sql`(${scope}, ${key}, ${fp}, 'in_flight', NULL, ${token}, 1, ${now}, ${now + lease}, ${now + ttl})`,
          conflict: `scope, ${kq}`,
          match: sql`scope = ${scope} AND ${k} = ${key}`,
          set: sql`generation = r.generation + 1, fingerprint = ${fp}, status = 'in_flight', response = NULL,
                token = ${token}, created_at = ${now}, locked_until = ${now + lease}, expires_at = ${now + ttl}`,
          when: sql`r.expires_at <= ${now}
                 OR (r.status = 'in_flight' AND r.locked_until <= ${now} AND r.fingerprint = ${fp})`,
          returning: "token, generation",
        });
        const mine = rows[0];
        if (mine?.token === token) {
          // generation counts claims of this row: above 1 means a dead record was taken over.
          return { outcome: "claimed", token, replaced: int(mine.generation) > 1 };
        }
        const [existing] = (await select(scope, key)).rows;
        if (!existing) continue;
        const record = toRecord<R>(existing);
        if (record.fingerprint !== fp) return { outcome: "mismatch", record };
        if (record.status === "complete") return { outcome: "completed", record };
        return { outcome: "in_flight", record };
      }
      throw new PatchbayError(
        "IDEMPOTENCY_CONTENDED",
        `idempotency key ${JSON.stringify(key)} was deleted and recreated by others three times while being claimed`,
        { retryable: true },
      );
    },

    async complete<R>(ref: IdempotencyRef, token: string, response: R) {
      const { scope, key } = refOf(ref);
      assertJsonValue(response, "response");
      const now = clock.now();
      const { rowCount } = await run(
        executor,
        dialect,
        // The response is replayed for a whole ttl from now (the claim's ttl is expires_at -
        // created_at): a holder that ran past its ttl must not leave a record dead on arrival,
        // which would let the client's retry run the handler a second time.
        sql`UPDATE ${t} SET status = 'complete', response = ${dialect.encodeJson(response)},
              expires_at = CASE WHEN ${now} + (expires_at - created_at) > expires_at
                                THEN ${now} + (expires_at - created_at) ELSE expires_at END
            WHERE scope = ${scope} AND ${k} = ${key} AND token = ${token} AND status = 'in_flight'`,
      );
      if (rowCount === 0) throw new IdempotencyOwnershipError(scope, key);
    },

    async renew(ref: IdempotencyRef, token: string, lease?: Duration) {
      const { scope, key } = refOf(ref);
      const leaseMs = toMs(lease ?? DEFAULT_IDEMPOTENCY_LEASE, "lease");
      if (leaseMs === 0) throw new InvalidArgumentError("lease must be greater than zero", "lease");
      const until = clock.now() + leaseMs;
      const { rowCount } = await run(
        executor,
        dialect,
        // Not the expiry: a holder still running past the record's ttl may be taken over (a bound
        // on a handler that hangs while its process lives on).
        sql`UPDATE ${t} SET locked_until = ${until}
            WHERE scope = ${scope} AND ${k} = ${key} AND token = ${token} AND status = 'in_flight'`,
      );
      if (rowCount === 0) throw new IdempotencyOwnershipError(scope, key);
    },

    async release(ref: IdempotencyRef, token: string) {
      const { scope, key } = refOf(ref);
      const { rowCount } = await run(
        executor,
        dialect,
        sql`DELETE FROM ${t} WHERE scope = ${scope} AND ${k} = ${key} AND token = ${token} AND status = 'in_flight'`,
      );
      if (rowCount === 0) throw new IdempotencyOwnershipError(scope, key);
    },

    async get<R>(ref: IdempotencyRef) {
      const { scope, key } = refOf(ref);
      const [row] = (await select(scope, key)).rows;
      return row ? toRecord<R>(row) : undefined;
    },

    async purgeExpired() {
      const { rowCount } = await run(
        executor,
        dialect,
        sql`DELETE FROM ${t} WHERE expires_at <= ${clock.now()}`,
      );
      return rowCount;
    },
  };
}
