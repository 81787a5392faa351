import type { Clock } from "../core/clock.js";
import { createBatcher } from "../core/batcher.js";
import { every } from "../core/every.js";
import { PREPARED, run } from "../store/dialect.js";
import type { SqlExecutor } from "../store/contracts.js";
import type { SqlStore } from "../store/sql-store.js";
import { joinWith, raw, sql, type SqlStatement } from "../store/sql.js";

/** One message of one group. */
interface Entry {
  group: string;
  messageId: string;
}

/**
 * A handler transaction's first statement: the claim of its message id. A class, so that its
 * statement is built only when the transaction opens (most handlers never open one) without an
 * object literal with a getter per delivery, which V8 builds slowly.
 */
class Claim {
  private built: SqlStatement | undefined;
  constructor(
    private readonly build: (group: string, messageId: string) => SqlStatement,
    private readonly group: string,
    private readonly messageId: string,
    private readonly duplicate: () => Error,
  ) {}
  get statement(): SqlStatement {
    return (this.built ??= this.build(this.group, this.messageId));
  }
  check(rows: readonly unknown[]): void {
    if (rows.length === 0) throw this.duplicate();
  }
}

/**
 * A batch transaction's first statement: the claims of all its message ids in one statement. Its check
 * throws `duplicate` (rolling the batch back) unless every id was recorded now.
 */
class ClaimMany {
  private built: SqlStatement | undefined;
  constructor(
    private readonly build: () => SqlStatement,
    private readonly count: number,
    private readonly duplicate: () => Error,
  ) {}
  get statement(): SqlStatement {
    return (this.built ??= this.build());
  }
  check(rows: readonly unknown[]): void {
    if (rows.length !== this.count) throw this.duplicate();
  }
}

/** Ids per batched check (one array parameter per group: under every driver's limit). */
const MAX_BATCH = 500;

/**
 * The inbox: message ids a group has processed. A handler's writes and its id commit in one
 * transaction ({@link claimAsOpening}), so a redelivered message whose effect committed is
 * recognised and acked without running again ({@link isProcessed}). Handlers that wrote nothing
 * record nothing: they have no store effect to protect. Checks are group-committed: the
 * deliveries of many concurrent handlers share one statement.
 */
export function createInbox(store: SqlStore, retentionMs: number, clock: Clock) {
  const d = store.dialect;
  const t = raw(d.table("bus_inbox"));
  let purging: AbortController | undefined;
  const purge = () =>
    run(store, d, sql`DELETE FROM ${t} WHERE processed_at < ${clock.now() - retentionMs}`).catch(
      () => undefined,
    );

  /** The SELECT of a check batch: one statement per group, in one UNION ALL. */
  const selectProcessed = (entries: readonly Entry[]) => {
    const byGroup = new Map<string, string[]>();
    for (const e of entries) {
      const ids = byGroup.get(e.group);
      if (ids) ids.push(e.messageId);
      else byGroup.set(e.group, [e.messageId]);
    }
    const selects = [...byGroup].map(([group, ids]) => d.roles.inbox.processed(t, group, ids));
    return joinWith(sql` UNION ALL `, selects);
  };

  const checks = createBatcher(
    async (entries: Entry[]) => {
      type Row = { grp: string; message_id: string };
      const { rows } = await run<Row>(store, d, selectProcessed(entries), PREPARED);
      const found = new Set(rows.map((r) => `${r.grp}\n${r.message_id}`));
      return entries.map((e) => found.has(`${e.group}\n${e.messageId}`));
    },
    { maxBatch: MAX_BATCH, isolateFailures: true },
  );

  /** Records one id; returns a row unless it was recorded already. */
  const claimStatement = (group: string, messageId: string) =>
    d.roles.inbox.record(t, group, messageId, clock.now());

  return {
    /**
     * Records the id as the first statement of a handler's transaction (sent with BEGIN where
     * the store can): `duplicate` is thrown, rolling it back, when the id was recorded already.
     * Where writers run concurrently, a concurrent claim of the same id waits for the first
     * transaction to end (the unique key's lock).
     */
    claimAsOpening: (group: string, messageId: string, duplicate: () => Error) =>
      new Claim(claimStatement, group, messageId, duplicate),
    /**
     * The claims of a batch's message ids, for a transaction shared by several deliveries: an
     * first statement where the store records many ids at once (`recordMany`), else the
     * statements to run when it opens, one id at a time. Either throws `duplicate`, rolling the
     * transaction back, unless every id was recorded now.
     */
    claimManyAsOpening(group: string, messageIds: readonly string[], duplicate: () => Error) {
      const roles = d.roles.inbox;
      if (roles.recordMany) {
        const first = new ClaimMany(
          () => roles.recordMany!(t, group, messageIds, clock.now()),
          messageIds.length,
          duplicate,
        );
        return { first };
      }
      const onOpen = async (tx: SqlExecutor) => {
        for (const id of messageIds) {
          const { rows } = await run(tx, d, claimStatement(group, id), PREPARED);
          if (rows.length === 0) throw duplicate();
        }
      };
      return { onOpen };
    },
    /** Whether the group processed this message already (a committed record). */
    isProcessed: (group: string, messageId: string): Promise<boolean> => checks.add({ group, messageId }),
    /** Deletes ids older than the retention every hour (or retention) of the clock's time. */
    startPurging() {
      if (purging) return;
      purging = new AbortController();
      every(clock, Math.min(retentionMs, 3_600_000), () => void purge(), purging.signal);
    },
    stopPurging() {
      purging?.abort();
      purging = undefined;
    },
  };
}
