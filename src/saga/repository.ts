/**
 * The SQL of sagas: instances (one row each: status, current step, attempt, lease, due time) and
 * step records (one row per step and phase). Every write of a worker is fenced by the instance's
 * `claim` token, which each claim and each operator action bumps: a worker that lost its lease
 * changes nothing.
 */
import { InvalidArgumentError } from "../core/errors.js";
import type { SqlExecutor } from "../store/contracts.js";
// PREPARED on the statements every saga runs (its insert, the waiter's read, each step's outcome):
// a handful of texts (the outcome's SET list varies with what a step changes), parsed once per
// connection where the backend keeps them (PostgreSQL) — a fifth of its CPU per saga.
import { int, PREPARED, run } from "../store/dialect.js";
import type { SqlStore } from "../store/sql-store.js";
import { join, raw, sql, type SqlStatement } from "../store/sql.js";
import {
  SAGA_STATUSES,
  type SagaErrorInfo,
  type SagaFault,
  type SagaFilter,
  type SagaInstance,
  type SagaPhase,
  type SagaStatus,
  type SagaStepRecord,
  type SagaStepStatus,
} from "./records.js";

/** An instance with the fields only the runner uses. */
export interface InstanceRow extends SagaInstance {
  /** Fencing token: bumped by every claim and operator action. */
  claim: number;
  /** The previous retry delay, for decorrelated jitter. */
  lastDelay: number | undefined;
}

/** The public view of a stored row. */
/**
 * Throws `INVALID_ARGUMENT` for a filter that cannot mean what was asked: an unknown status (a
 * typo matches nothing and reads as "no failed sagas"), a name that is not a string, a time that
 * is not whole ms (a driver error on PostgreSQL, no match on SQLite).
 */
function checkFilter(f: SagaFilter): void {
  if (f.status !== undefined) {
    const status: unknown = f.status;
    const list: unknown[] = Array.isArray(status) ? (status as unknown[]) : [status];
    for (const s of list) {
      if (!(SAGA_STATUSES as readonly unknown[]).includes(s)) {
        throw new InvalidArgumentError(
          `status must be among ${SAGA_STATUSES.join(", ")}, got ${JSON.stringify(s)}`,
          "filter.status",
        );
      }
    }
  }
  if (f.name !== undefined && typeof f.name !== "string") {
    throw new InvalidArgumentError("filter.name must be a string", "filter.name");
  }
  for (const k of ["before", "since"] as const) {
    const v: unknown = f[k];
    if (v !== undefined && !Number.isSafeInteger(v)) {
      throw new InvalidArgumentError(
        `filter.${k} must be whole ms since the epoch, got ${JSON.stringify(v) ?? typeof v}`,
        `filter.${k}`,
      );
    }
  }
}

export function publicView(row: InstanceRow): SagaInstance {
  const { claim: _claim, lastDelay: _lastDelay, ...view } = row;
  return view;
}

/** What identifies one state of an instance: any change of the row changes one of these. */
export interface InstanceVersion {
  id: string;
  status: SagaStatus;
  claim: number;
  updatedAt: number;
}

/** Columns a fenced update may set. */
export interface InstanceChanges {
  status?: SagaStatus;
  step?: number;
  attempt?: number;
  owner?: string | null;
  runAt?: number;
  lastDelay?: number | null;
  reason?: SagaFault | null;
  failure?: SagaFault | null;
  note?: string | null;
}

const COLUMN: Record<keyof InstanceChanges, string> = {
  status: "status",
  step: "step",
  attempt: "attempt",
  owner: "owner",
  runAt: "run_at",
  lastDelay: "last_delay",
  reason: "reason",
  failure: "failure",
  note: "note",
};
const JSON_COLUMNS = new Set<keyof InstanceChanges>(["reason", "failure"]);

/** A step record to write (insert, or update keeping `started_at`). */
export interface StepWrite {
  index: number;
  name: string;
  phase: SagaPhase;
  status: SagaStepStatus;
  /** Already JSON-encoded by the caller (so an unencodable result fails before the transaction). */
  resultJson: string | null;
  error: SagaErrorInfo | null;
  attempts: number;
  startedAt: number;
  finishedAt: number | null;
  note: string | null;
}

interface RawInstance {
  id: string;
  name: string;
  version: unknown;
  input: unknown;
  status: SagaStatus;
  step: unknown;
  attempt: unknown;
  claim: unknown;
  owner: string | null;
  run_at: unknown;
  deadline: unknown;
  last_delay: unknown;
  reason: unknown;
  failure: unknown;
  note: string | null;
  created_at: unknown;
  updated_at: unknown;
}

interface RawStep {
  idx: unknown;
  phase: SagaPhase;
  name: string;
  status: SagaStepStatus;
  result: unknown;
  error: unknown;
  attempts: unknown;
  started_at: unknown;
  finished_at: unknown;
  note: string | null;
}

const ACTIVE = sql`status IN ('running', 'compensating')`;
/** What a step record's rewrite changes: everything but its first `started_at`. */
const STEP_UPDATES = ["name", "status", "result", "error", "attempts", "finished_at", "note"];

/** The saga tables of one store. */
export type SagaRepository = ReturnType<typeof sagaRepository>;

/** Builds the repository for `store`'s dialect. */
export function sagaRepository(store: SqlStore) {
  const d = store.dialect;
  const roles = d.roles;
  const t = { instances: raw(d.table("saga_instances")), steps: raw(d.table("saga_steps")) };
  const json = (v: unknown) => (v === undefined || v === null ? null : d.encodeJson(v));
  /** The caller's pre-encoded JSON text as a JSON column's value. */
  const encoded = (text: string | null) => roles.rows.jsonText(text);
  const parsed = (v: unknown) => (v === null || v === undefined ? undefined : d.decodeJson(v));
  const optInt = (v: unknown) => (v === null || v === undefined ? undefined : int(v));

  const toInstance = (r: RawInstance): InstanceRow => ({
    id: r.id,
    name: r.name,
    version: int(r.version),
    input: parsed(r.input) ?? null,
    status: r.status,
    step: int(r.step),
    attempt: int(r.attempt),
    owner: r.owner ?? undefined,
    runAt: int(r.run_at),
    deadline: optInt(r.deadline),
    reason: parsed(r.reason) as SagaFault | undefined,
    failure: parsed(r.failure) as SagaFault | undefined,
    note: r.note ?? undefined,
    createdAt: int(r.created_at),
    updatedAt: int(r.updated_at),
    claim: int(r.claim),
    lastDelay: optInt(r.last_delay),
  });
  const toStep = (r: RawStep): SagaStepRecord => ({
    index: int(r.idx),
    name: r.name,
    phase: r.phase,
    status: r.status,
    result: parsed(r.result) ?? null,
    error: parsed(r.error) as SagaErrorInfo | undefined,
    attempts: int(r.attempts),
    startedAt: int(r.started_at),
    finishedAt: optInt(r.finished_at),
    note: r.note ?? undefined,
  });
  const where = (f: SagaFilter): SqlStatement => {
    checkFilter(f);
    const parts: SqlStatement[] = [sql`1 = 1`];
    if (f.status !== undefined) {
      const list = typeof f.status === "string" ? [f.status] : [...f.status];
      if (list.length > 0) {
        parts.push(sql` AND status IN (${list[0]}`, ...list.slice(1).map((s) => sql`, ${s}`), sql`)`);
      }
    }
    if (f.name !== undefined) parts.push(sql` AND name = ${f.name}`);
    if (f.before !== undefined) parts.push(sql` AND created_at < ${f.before}`);
    if (f.since !== undefined) parts.push(sql` AND updated_at >= ${f.since}`);
    return join(...parts);
  };
  const updateStatement = (
    id: string,
    changes: InstanceChanges,
    now: number,
    fence: { claim?: number; bump?: boolean },
  ): SqlStatement => {
    const parts: SqlStatement[] = [sql`UPDATE ${t.instances} SET updated_at = ${now}`];
    if (fence.bump) parts.push(sql`, claim = claim + 1`);
    for (const [key, value] of Object.entries(changes) as Array<[keyof InstanceChanges, unknown]>) {
      if (value === undefined) continue;
      parts.push(sql`, ${raw(COLUMN[key])} = ${JSON_COLUMNS.has(key) ? json(value) : value}`);
    }
    parts.push(sql` WHERE id = ${id}`);
    if (fence.claim !== undefined) parts.push(sql` AND claim = ${fence.claim}`);
    return join(...parts);
  };
  /** Writes a step record (keeping the first `started_at` of that step and phase). */
  const writeStep = async (ex: SqlExecutor, id: string, s: StepWrite): Promise<void> => {
    await run(
      ex,
      d,
      roles.rows.upsert(
        t.steps,
        "saga_id, idx, phase, name, status, result, error, attempts, started_at, finished_at, note",
        join(
          sql`(${id}, ${s.index}, ${s.phase}, ${s.name}, ${s.status}, `,
          encoded(s.resultJson),
          sql`, ${json(s.error)}, ${s.attempts}, ${s.startedAt}, ${s.finishedAt}, ${s.note})`,
        ),
        "saga_id, idx, phase",
        STEP_UPDATES,
      ),
    );
  };
  const inNames = (names: readonly string[]) =>
    join(sql`name IN (${names[0]}`, ...names.slice(1).map((n) => sql`, ${n}`), sql`)`);
  /** `AND id NOT IN (...)` for the instances a worker is driving (nothing when there are none). */
  const notIn = (ids: readonly string[]) =>
    ids.length === 0
      ? sql``
      : join(sql` AND id NOT IN (${ids[0]}`, ...ids.slice(1).map((id) => sql`, ${id}`), sql`)`);

  return {
    /**
     * True when {@link writeOutcome} on the store is one round trip, atomic without a transaction
     * (one statement, or MariaDB's atomic script).
     */
    singleStatementOutcome: roles.saga.outcome !== undefined,

    /**
     * Inserts a new instance; false when the id exists (nothing written). With `notify`, the
     * backend's wake-up on that channel goes in the same statement when it inserted (where the
     * backend has notifications).
     */
    async insert(ex: SqlExecutor, r: InstanceRow, inputJson: string, notify?: string): Promise<boolean> {
      const columns =
        "id, name, version, input, status, step, attempt, claim, owner, run_at, deadline, created_at, updated_at";
      const values = join(
        sql`(${r.id}, ${r.name}, ${r.version}, `,
        encoded(inputJson),
        sql`, ${r.status}, ${r.step}, ${r.attempt}, ${r.claim}, ${r.owner ?? null}, ${r.runAt},
               ${r.deadline ?? null}, ${r.createdAt}, ${r.updatedAt})`,
      );
      // On its own (not in the caller's transaction), where the backend has a one-round-trip
      // insert for that: MariaDB's plain INSERT, whose duplicate-key error is the answer, instead
      // of an INSERT IGNORE in a transaction of its own (to read its warnings).
      if (roles.saga.insertAlone && ex === store && !(notify && roles.notify)) {
        return roles.saga.insertAlone(ex, t.instances, columns, values);
      }
      const insert = roles.rows.insertIgnore(t.instances, columns, [values], "id");
      // With the notification: one row (pg_notify's) exactly when the INSERT inserted.
      const statement = notify && roles.notify ? roles.notify.after(insert, notify, "") : insert;
      const { rowCount } = await run(ex, d, statement, PREPARED);
      return rowCount > 0;
    },

    /** One instance; `lock` takes its row lock for the transaction (where the backend has row locks). */
    async get(ex: SqlExecutor, id: string, lock = false): Promise<InstanceRow | undefined> {
      const { rows } = await run<RawInstance>(
        ex,
        d,
        lock
          ? join(sql`SELECT * FROM ${t.instances} WHERE id = ${id}`, roles.locks.forUpdate)
          : sql`SELECT * FROM ${t.instances} WHERE id = ${id}`,
        PREPARED,
      );
      return rows[0] ? toInstance(rows[0]) : undefined;
    },

    /** Locks the instance for a transactional step and checks the claim is still ours. */
    async holds(tx: SqlExecutor, id: string, claim: number): Promise<boolean> {
      const { rows } = await run<{ claim: unknown }>(
        tx,
        d,
        join(sql`SELECT claim FROM ${t.instances} WHERE id = ${id}`, roles.locks.forUpdate),
      );
      return rows[0] !== undefined && int(rows[0].claim) === claim;
    },

    /** The step records of an instance. */
    async steps(ex: SqlExecutor, id: string): Promise<SagaStepRecord[]> {
      const { rows } = await run<RawStep>(ex, d, sql`SELECT * FROM ${t.steps} WHERE saga_id = ${id}`);
      return rows.map(toStep);
    },

    /**
     * Claims up to `limit` due instances of the named sagas for `owner`: bumps the claim token and
     * the attempt (an attempt cut short by a crash still counts), and leases until `now + leaseMs`.
     * `driving` are the instances the claiming worker runs now: never its own to take over, however
     * far the clock moved past their lease (their leases are for other workers to judge).
     */
    async claim(
      names: readonly string[],
      limit: number,
      owner: string,
      now: number,
      leaseMs: number,
      driving: readonly string[] = [],
    ) {
      if (names.length === 0 || limit < 1) return [];
      const rows = await roles.rows.claim<RawInstance>(store, {
        table: t.instances,
        key: "id",
        where: join(ACTIVE, sql` AND run_at <= ${now} AND `, inNames(names), notIn(driving)),
        orderBy: "run_at",
        limit,
        set: sql`owner = ${owner}, claim = claim + 1, attempt = attempt + 1, run_at = ${now + leaseMs},
                 updated_at = ${now}`,
      });
      return rows.map(toInstance).sort((a, b) => a.createdAt - b.createdAt);
    },

    /**
     * Updates an instance. With `claim`, only while that claim holds (a worker's write); with
     * `bump`, moves the claim token on (an operator's action fences out any worker). Returns rows changed.
     */
    async update(
      ex: SqlExecutor,
      id: string,
      changes: InstanceChanges,
      now: number,
      fence: { claim?: number; bump?: boolean } = {},
    ): Promise<number> {
      return (await run(ex, d, updateStatement(id, changes, now, fence))).rowCount;
    },

    /**
     * A worker's outcome: the instance changes and (optionally) a step record, only while `claim`
     * holds; false (and nothing written) when it does not. Where the backend has a one-statement
     * outcome ({@link singleStatementOutcome}) it may run outside a transaction (one round trip);
     * otherwise call it inside one.
     */
    async writeOutcome(
      ex: SqlExecutor,
      id: string,
      claim: number,
      changes: InstanceChanges,
      now: number,
      step?: StepWrite,
    ): Promise<boolean> {
      const update = updateStatement(id, changes, now, { claim });
      if (!step) return (await run(ex, d, update)).rowCount > 0;
      // An atomic script (MariaDB's) is a transaction of its own: in the caller's, two statements.
      const script = roles.saga.outcomeOptions?.atomicScript === true;
      if (!roles.saga.outcome || (script && ex !== store)) {
        if ((await run(ex, d, update)).rowCount === 0) return false;
        await writeStep(ex, id, step);
        return true;
      }
      const { rowCount } = await run(
        ex,
        d,
        roles.saga.outcome(
          update,
          t.steps,
          { ...step, error: json(step.error) },
          { instances: t.instances, id, claim },
        ),
        roles.saga.outcomeOptions ?? PREPARED,
      );
      return rowCount > 0;
    },

    /** Extends a lease while its holder works; false when the lease is no longer ours. */
    async heartbeat(id: string, claim: number, owner: string, until: number): Promise<boolean> {
      const { rowCount } = await run(
        store,
        d,
        sql`UPDATE ${t.instances} SET run_at = ${until} WHERE id = ${id} AND claim = ${claim} AND owner = ${owner}`,
      );
      return rowCount > 0;
    },

    writeStep,

    /** Instances matching `filter`, newest first. */
    async list(filter: SagaFilter, limit: number): Promise<InstanceRow[]> {
      const { rows } = await run<RawInstance>(
        store,
        d,
        join(
          sql`SELECT * FROM ${t.instances} WHERE `,
          where(filter),
          sql` ORDER BY created_at DESC, id DESC LIMIT ${limit}`,
        ),
      );
      return rows.map(toInstance);
    },

    /**
     * The version of every instance matching `filter`, oldest first, read by one statement (one
     * consistent snapshot): what a bulk operator action acts on.
     */
    async versions(filter: SagaFilter): Promise<InstanceVersion[]> {
      const { rows } = await run<{ id: string; status: SagaStatus; claim: unknown; updated_at: unknown }>(
        store,
        d,
        join(
          sql`SELECT id, status, claim, updated_at FROM ${t.instances} WHERE `,
          where(filter),
          sql` ORDER BY created_at, id`,
        ),
      );
      return rows.map((r) => ({
        id: r.id,
        status: r.status,
        claim: int(r.claim),
        updatedAt: int(r.updated_at),
      }));
    },

    async count(filter: SagaFilter): Promise<number> {
      const { rows } = await run<{ n: unknown }>(
        store,
        d,
        join(sql`SELECT COUNT(*) AS n FROM ${t.instances} WHERE `, where(filter)),
      );
      return int(rows[0]?.n ?? 0);
    },

    /** The earliest due time among active instances of the named sagas, but for those in `driving` (see {@link claim}). */
    async nextDue(names: readonly string[], driving: readonly string[] = []): Promise<number | undefined> {
      if (names.length === 0) return undefined;
      const { rows } = await run<{ next: unknown }>(
        store,
        d,
        join(
          sql`SELECT MIN(run_at) AS next FROM ${t.instances} WHERE `,
          ACTIVE,
          sql` AND `,
          inNames(names),
          notIn(driving),
        ),
      );
      return optInt(rows[0]?.next);
    },
  };
}
