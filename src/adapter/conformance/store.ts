/**
 * The Store conformance suite: every invariant written in `src/store/contracts.ts`, checked
 * against a real database. Each adapter's test file calls {@link defineStoreConformance} inside
 * a vitest run (vitest is the adapter author's own dev dependency).
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { isPatchbayError } from "../../core/errors.js";
import {
  runLast,
  type LazyTransactionOptions,
  type SqlStore,
  type SqlStoreOptions,
} from "../../store/sql-store.js";
import { sql } from "../../store/sql.js";
import { FakeClock } from "../../testing/fake-clock.js";

/** One isolated database for one test of {@link defineStoreConformance}. */
export interface ConformanceDatabase {
  /** A new store on this database (its own connections; not opened). */
  make(options?: SqlStoreOptions): SqlStore;
  /** Drops what the test left (the schema, the file). */
  cleanup(): Promise<void>;
  /** What {@link StoreHarness.child}'s factory takes to open a store on this database in another process (JSON). */
  config?: Record<string, unknown>;
}

/** How {@link defineStoreConformance} reaches an adapter. */
export interface StoreHarness {
  name: string;
  /** A fresh, isolated, empty database for one test. */
  fresh(): Promise<ConformanceDatabase>;
  /**
   * Whether a failed statement aborts its whole transaction (PostgreSQL: later statements and the
   * commit fail) rather than only undoing itself (SQLite, MySQL).
   */
  statementErrorAbortsTransaction: boolean;
  /**
   * The type of a text column in a key of the suite's own tables: `TEXT` (the default); MySQL
   * indexes no `TEXT` without a length, so `VARCHAR(255)` there.
   */
  keyText?: string;
  /**
   * For the tests that need other processes (racing migrations, a SIGKILL inside a transaction):
   * `module` (an absolute file path) exports `export` (a function of a database's `config` that
   * returns a store). Without it those tests are skipped.
   */
  child?: { module: string; export: string };
}

const here = fileURLToPath(import.meta.url);
const CHILD = here.replace(/store\.(ts|js)$/, "store-child.$1");

/** Runs the child fixture; resolves with its stdout lines once `until` matches a line, or on exit. */
function runChild(args: object, until?: RegExp) {
  const loader = CHILD.endsWith(".ts") ? ["--import", "tsx"] : [];
  const proc = spawn(process.execPath, [...loader, CHILD, JSON.stringify(args)], {
    stdio: ["pipe", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  proc.stderr.on("data", (d: Buffer) => (err += d.toString()));
  const reached = new Promise<void>((resolve, reject) => {
    proc.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      if (until?.test(out)) resolve();
    });
    proc.once("exit", (code) =>
      until ? reject(new Error(`child exited ${code} before ${until}: ${err}`)) : resolve(),
    );
  });
  const exited = new Promise<number | null>((resolve) => proc.once("exit", (code) => resolve(code)));
  return { proc, reached, exited, output: () => out, errors: () => err };
}

async function expectCode(promise: Promise<unknown>, code: string) {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isPatchbayError(error, code), `expected ${code}, got ${String(error)}`).toBe(true);
  return error;
}

export function defineStoreConformance(harness: StoreHarness): void {
  describe(`Store conformance: ${harness.name}`, () => {
    let target: ConformanceDatabase;
    let store: SqlStore;
    const opened: SqlStore[] = [];
    const make = (options?: SqlStoreOptions) => {
      const s = target.make(options);
      opened.push(s);
      return s;
    };

    /** The n-th placeholder of the store's dialect. */
    const p = (n: number) => (store.dialect.placeholders === "numbered" ? `$${n}` : "?");

    beforeEach(async () => {
      target = await harness.fresh();
      store = make();
    });
    afterEach(async () => {
      await Promise.all(opened.splice(0).map((s) => s.close()));
      await target.cleanup();
    });

    describe("migrations", () => {
      it("migrates an empty database to the newest version", async () => {
        const report = await store.migrate();
        const health = await store.health();
        expect(health.ok).toBe(true);
        expect(health.schemaVersion).toBe(health.knownSchemaVersion);
        expect(health.schemaVersion).toBeGreaterThan(0);
        expect(report.to).toBe(health.knownSchemaVersion);
      });

      it("re-running migrations on a migrated database applies nothing", async () => {
        await store.open();
        const again = make();
        const report = await again.migrate();
        expect(report.applied).toEqual([]);
        expect(report.from).toBe(report.to);
      });

      it("refuses to open a database migrated by a newer Patchbay", async () => {
        await store.open();
        const known = (await store.health()).knownSchemaVersion;
        const table = store.dialect.table("migrations");
        await store.query(
          `INSERT INTO ${table} (version, name, applied_at) VALUES (${p(1)}, 'from-the-future', 0)`,
          [known + 1],
        );
        await expectCode(make().open(), "SCHEMA_TOO_NEW");
      });

      it("with migrate: false, refuses an outdated schema instead of changing it", async () => {
        await expectCode(make({ migrate: false }).open(), "SCHEMA_OUTDATED");
      });

      it.skipIf(!harness.child)(
        "four processes migrating the same empty database at once apply each migration exactly once",
        async () => {
          const children = Array.from({ length: 4 }, () =>
            runChild({ ...harness.child, config: target.config, action: "migrate" }, /ready/),
          );
          await Promise.all(children.map((c) => c.reached));
          for (const c of children) c.proc.stdin.write("go\n");
          const codes = await Promise.all(children.map((c) => c.exited));
          expect(codes, children.map((c) => c.errors()).join("\n")).toEqual([0, 0, 0, 0]);
          const table = store.dialect.table("migrations");
          const { rows } = await store.query<{ version: number | string; n: number | string }>(
            `SELECT version, COUNT(*) AS n FROM ${table} GROUP BY version ORDER BY version`,
          );
          const known = (await store.health()).knownSchemaVersion;
          expect(rows.map((r) => [Number(r.version), Number(r.n)])).toEqual(
            Array.from({ length: known }, (_, i) => [i + 1, 1]),
          );
        },
      );
    });

    describe("transactions", () => {
      beforeEach(async () => {
        await store.query(
          `CREATE TABLE orders (id ${harness.keyText ?? "TEXT"} PRIMARY KEY, qty INTEGER NOT NULL)`,
        );
      });
      const countOrders = async (s: SqlStore) =>
        Number((await s.query<{ n: number | string }>("SELECT COUNT(*) AS n FROM orders")).rows[0]?.n);

      it("commits the user's SQL and Patchbay's rows together", async () => {
        const result = await store.transaction(async (tx) => {
          await tx.query(`INSERT INTO orders (id, qty) VALUES (${p(1)}, ${p(2)})`, ["o-1", 3]);
          await tx.state.set("orders.last", "o-1");
          return "done";
        });
        expect(result).toBe("done");
        expect(await countOrders(store)).toBe(1);
        expect((await store.state.get("orders.last"))?.value).toBe("o-1");
      });

      it("rolls back everything when the function throws, and rethrows the same error", async () => {
        const boom = new Error("boom");
        const thrown = await store
          .transaction(async (tx) => {
            await tx.query(`INSERT INTO orders (id, qty) VALUES (${p(1)}, ${p(2)})`, ["o-1", 3]);
            await tx.state.set("orders.last", "o-1");
            await tx.idempotency.claim({ key: "k", fingerprint: "f" });
            throw boom;
          })
          .catch((e: unknown) => e);
        expect(thrown).toBe(boom);
        expect(await countOrders(store)).toBe(0);
        expect(await store.state.get("orders.last")).toBeUndefined();
        expect(await store.idempotency.get({ key: "k" })).toBeUndefined();
      });

      it("rolls back when a statement fails half way, with a typed error carrying the SQL state", async () => {
        const error = await expectCode(
          store.transaction(async (tx) => {
            await tx.query(`INSERT INTO orders (id, qty) VALUES (${p(1)}, ${p(2)})`, ["o-1", 1]);
            await tx.query(`INSERT INTO orders (id, qty) VALUES (${p(1)}, ${p(2)})`, ["o-1", 2]);
          }),
          "QUERY_FAILED",
        );
        expect((error as { sqlState?: string }).sqlState).toMatch(/^23|SQLITE_CONSTRAINT/);
        expect(await countOrders(store)).toBe(0);
      });

      it("a statement error caught inside the transaction never turns into a reported success for writes that were not kept", async () => {
        // The common "insert, ignore the duplicate" pattern, 20 times. PostgreSQL aborts the
        // transaction at the failed statement and answers COMMIT with ROLLBACK; SQLite keeps the
        // transaction. Either way: the call resolves only if every write that did not fail exists.
        await store.query(`INSERT INTO orders (id, qty) VALUES (${p(1)}, ${p(2)})`, ["taken", 1]);
        let resolved = 0;
        for (let i = 0; i < 20; i++) {
          const outcome = await store
            .transaction(async (tx) => {
              await tx.query(`INSERT INTO orders (id, qty) VALUES (${p(1)}, ${p(2)})`, [`a-${i}`, 1]);
              await tx
                .query(`INSERT INTO orders (id, qty) VALUES (${p(1)}, ${p(2)})`, ["taken", 2])
                .catch(() => undefined); // caught, and the transaction goes on
              await tx.state.set(`after-${i}`, i).catch(() => undefined);
              return "done";
            })
            .then(
              (value) => ({ value }),
              (error: unknown) => ({ error }),
            );
          const kept = Number(
            (
              await store.query<{ n: number | string }>(
                `SELECT COUNT(*) AS n FROM orders WHERE id = ${p(1)}`,
                [`a-${i}`],
              )
            ).rows[0]?.n,
          );
          const stateKept = (await store.state.get(`after-${i}`)) !== undefined;
          if ("value" in outcome) {
            resolved++;
            expect({ i, kept, stateKept }).toEqual({ i, kept: 1, stateKept: true });
          } else {
            expect(isPatchbayError(outcome.error, "TRANSACTION_ROLLED_BACK"), String(outcome.error)).toBe(
              true,
            );
            expect((outcome.error as Error).cause, "the caught statement's error is the cause").toBeDefined();
            expect({ i, kept, stateKept }).toEqual({ i, kept: 0, stateKept: false });
          }
        }
        // PostgreSQL can never commit these; SQLite always does (its statement-level rollback).
        expect(resolved).toBe(harness.statementErrorAbortsTransaction ? 0 : 20);
      });

      it("the same in a lazy transaction (the bus handler's ctx.tx): its call rejects unless the writes were kept", async () => {
        await store.query(`INSERT INTO orders (id, qty) VALUES (${p(1)}, ${p(2)})`, ["taken", 1]);
        const outcome = await store
          .lazyTransaction(async (tx) => {
            await tx.query(`INSERT INTO orders (id, qty) VALUES (${p(1)}, ${p(2)})`, ["lazy", 1]);
            await tx
              .query(`INSERT INTO orders (id, qty) VALUES (${p(1)}, ${p(2)})`, ["taken", 2])
              .catch(() => undefined);
          })
          .then(
            () => "resolved",
            (e: unknown) => (isPatchbayError(e, "TRANSACTION_ROLLED_BACK") ? "rolled back" : String(e)),
          );
        expect(await countOrders(store)).toBe(outcome === "resolved" ? 2 : 1);
        expect(outcome).toBe(harness.statementErrorAbortsTransaction ? "rolled back" : "resolved");
      });

      it("a transaction handle used after its transaction ended is rejected, not run outside it", async () => {
        let leaked: Parameters<Parameters<SqlStore["transaction"]>[0]>[0] | undefined;
        await store.transaction(async (tx) => {
          leaked = tx;
          await Promise.resolve();
        });
        await expectCode(
          leaked!.query(`INSERT INTO orders (id, qty) VALUES (${p(1)}, ${p(2)})`, ["late", 1]),
          "STORE_CLOSED",
        );
        await expectCode(leaked!.state.set("late", 1), "STORE_CLOSED");
        expect(await countOrders(store)).toBe(0);
      });

      it("calling the store itself inside its transaction is rejected with TRANSACTION_NESTED", async () => {
        await store.transaction(async (tx) => {
          await tx.state.set("a", 1);
          await expectCode(store.state.get("a"), "TRANSACTION_NESTED");
          await expectCode(
            store.transaction(() => Promise.resolve()),
            "TRANSACTION_NESTED",
          );
        });
        expect((await store.state.get("a"))?.value).toBe(1);
      });

      it("50 concurrent read-modify-write transactions lose no update", async () => {
        await store.state.set("counter", 0);
        const increment = async () => {
          for (;;) {
            try {
              await store.transaction(async (tx) => {
                const current = await tx.state.get<number>("counter");
                await tx.state.set("counter", (current?.value ?? 0) + 1, {
                  expectedVersion: current?.version ?? 0,
                });
                await tx.query(`INSERT INTO orders (id, qty) VALUES (${p(1)}, 1)`, [
                  `o-${current?.version ?? 0}`,
                ]);
              });
              return;
            } catch (e) {
              if (!isPatchbayError(e) || !e.retryable) throw e;
            }
          }
        };
        await Promise.all(Array.from({ length: 50 }, increment));
        expect((await store.state.get("counter"))?.value).toBe(50);
        expect(await countOrders(store)).toBe(50);
      });

      it("another store never sees a transaction's uncommitted writes", async () => {
        const other = make();
        await other.open();
        let release!: () => void;
        const released = new Promise<void>((r) => (release = r));
        let written!: () => void;
        const wasWritten = new Promise<void>((r) => (written = r));
        const tx = store.transaction(async (t) => {
          await t.state.set("visible", "uncommitted");
          written();
          await released;
        });
        await wasWritten;
        // On PostgreSQL the read returns at once; on SQLite (one writer, WAL readers) it also
        // returns the committed snapshot. Either way it must not see the uncommitted value.
        const seen = await Promise.race([
          other.state.get("visible").then((e) => e?.value ?? "absent"),
          new Promise<string>((r) => setTimeout(() => r("waited"), 500)),
        ]);
        release();
        await tx;
        expect(["absent", "waited"]).toContain(seen);
        expect((await other.state.get("visible"))?.value).toBe("uncommitted");
      });

      it.skipIf(!harness.child)(
        "a process killed with SIGKILL inside a transaction leaves nothing half-applied",
        async () => {
          await store.query("CREATE TABLE crash_rows (id INTEGER PRIMARY KEY)");
          await store.close();
          const child = runChild(
            { ...harness.child, config: target.config, action: "hang-in-transaction" },
            /inside/,
          );
          await child.reached;
          child.proc.kill("SIGKILL");
          await child.exited;
          const after = make();
          const rows = await after.query<{ n: number | string }>("SELECT COUNT(*) AS n FROM crash_rows");
          expect(Number(rows.rows[0]?.n)).toBe(0);
          expect(await after.state.get("crash.checkpoint")).toBeUndefined();
          // The database is writable again: the dead process's lock is gone.
          await after.state.set("crash.checkpoint", { rows: 0 });
          expect((await after.state.get("crash.checkpoint"))?.version).toBe(1);
        },
      );
    });

    describe("lazy transactions", () => {
      beforeEach(async () => {
        await store.query(
          `CREATE TABLE orders (id ${harness.keyText ?? "TEXT"} PRIMARY KEY, qty INTEGER NOT NULL)`,
        );
      });
      const countOrders = async (s: SqlStore) =>
        Number((await s.query<{ n: number | string }>("SELECT COUNT(*) AS n FROM orders")).rows[0]?.n);
      const insert = (tx: { query: SqlStore["query"] }, id: string) =>
        tx.query(`INSERT INTO orders (id, qty) VALUES (${p(1)}, ${p(2)})`, [id, 1]);

      it("opens nothing when fn never uses tx, yet still refuses nested store calls", async () => {
        const hooks: string[] = [];
        const result = await store.lazyTransaction(
          async () => {
            await expectCode(store.state.get("a"), "TRANSACTION_NESTED");
            return 7;
          },
          {
            onOpen: () => Promise.resolve(void hooks.push("open")),
            beforeCommit: () => Promise.resolve(void hooks.push("commit")),
          },
        );
        expect(result).toEqual({ value: 7, opened: false });
        expect(hooks).toEqual([]);
      });

      it("opens on first use with onOpen first, and commits fn's and beforeCommit's writes together", async () => {
        const order: string[] = [];
        const committed: string[] = [];
        const result = await store.lazyTransaction(
          async (tx) => {
            order.push("fn");
            await insert(tx, "o-1");
            tx.afterCommit(() => committed.push("o-1"));
            return "done";
          },
          {
            onOpen: async (tx) => {
              order.push("open");
              await tx.state.set("opened", true);
            },
            beforeCommit: async (tx) => {
              order.push("before-commit");
              await insert(tx, "o-2");
            },
          },
        );
        expect(result).toEqual({ value: "done", opened: true });
        expect(order).toEqual(["fn", "open", "before-commit"]);
        expect(committed).toEqual(["o-1"]);
        expect(await countOrders(store)).toBe(2);
        expect((await store.state.get("opened"))?.value).toBe(true);
      });

      it("rolls back onOpen's and fn's writes when fn throws, and rethrows fn's error", async () => {
        const boom = new Error("boom");
        const thrown = await store
          .lazyTransaction(
            async (tx) => {
              await insert(tx, "o-1");
              throw boom;
            },
            {
              onOpen: (tx) => tx.state.set("opened", true).then(() => undefined),
              beforeCommit: (tx) => insert(tx, "o-2").then(() => undefined),
            },
          )
          .catch((e: unknown) => e);
        expect(thrown).toBe(boom);
        expect(await countOrders(store)).toBe(0);
        expect(await store.state.get("opened")).toBeUndefined();
      });

      it("when fn throws without ever using tx, the call rethrows fn's error and opens nothing", async () => {
        const boom = new Error("boom before any query");
        const thrown = await store
          .lazyTransaction(() => Promise.reject(boom), {
            onOpen: (tx) => insert(tx, "o-1").then(() => undefined),
          })
          .catch((e: unknown) => e);
        expect(thrown).toBe(boom);
        expect(await countOrders(store)).toBe(0);
      });

      /** A lazy transaction whose fn swallows its query's error: what fn saw, and how the call ended. */
      const swallowing = async (options: LazyTransactionOptions) => {
        let seenByFn: unknown;
        const thrown = await store
          .lazyTransaction(async (tx) => {
            seenByFn = await insert(tx, "o-1").catch((e: unknown) => e);
            return "swallowed";
          }, options)
          .catch((e: unknown) => e);
        return { seenByFn, thrown };
      };

      it("a failing onOpen fails every tx call and the whole call, even when fn swallows the error", async () => {
        const refused = new Error("already processed");
        const { seenByFn, thrown } = await swallowing({
          onOpen: async (tx) => {
            await tx.state.set("opened", true);
            throw refused;
          },
        });
        expect(seenByFn).toBe(refused);
        expect(thrown).toBe(refused);
        expect(await countOrders(store)).toBe(0);
        expect(await store.state.get("opened")).toBeUndefined();
      });

      // Quotes, backslashes, a placeholder, braces and commas, non-ASCII: values that must arrive
      // exactly as sent, however the backend sends the first statement (with BEGIN on PostgreSQL).
      const tricky = `it's "quoted" \\ back\\slash $1 ? {a,b} ünï 🎉 E'x'`;

      it("runs the first statement first: check gets its rows, and its write commits with fn's", async () => {
        const seen: unknown[] = [];
        const result = await store.lazyTransaction(
          async (tx) => {
            await insert(tx, "o-1");
            return "done";
          },
          {
            first: {
              statement: sql`INSERT INTO orders (id, qty) VALUES (${tricky}, ${7}) RETURNING id, qty`,
              check: (rows) => void seen.push(...rows),
            },
          },
        );
        expect(result).toEqual({ value: "done", opened: true });
        expect(seen.map((r) => ({ ...(r as object) }))).toEqual([{ id: tricky, qty: 7 }]);
        const { rows } = await store.query<{ id: string }>("SELECT id FROM orders ORDER BY qty DESC");
        expect(rows.map((r) => r.id)).toEqual([tricky, "o-1"]);
      });

      it("a check that throws rolls back first's and fn's writes and fails the call, even when fn swallows it", async () => {
        const duplicate = new Error("already processed");
        const { seenByFn, thrown } = await swallowing({
          first: {
            statement: sql`INSERT INTO orders (id, qty) VALUES (${"o-open"}, ${1}) RETURNING id`,
            check: () => {
              throw duplicate;
            },
          },
        });
        expect(seenByFn).toBe(duplicate);
        expect(thrown).toBe(duplicate);
        expect(await countOrders(store)).toBe(0);
      });

      it("runLast in beforeCommit: the statement commits last, with the transaction, values exact", async () => {
        const result = await store.lazyTransaction(
          async (tx) => {
            await insert(tx, "o-1");
            return "done";
          },
          {
            beforeCommit: async (tx) => {
              await runLast(tx, store.dialect, sql`INSERT INTO orders (id, qty) VALUES (${tricky}, ${9})`);
              await insert(tx, "o-2"); // a statement after it still runs before it
            },
          },
        );
        expect(result).toEqual({ value: "done", opened: true });
        const { rows } = await store.query<{ id: string }>("SELECT id FROM orders ORDER BY id");
        expect(rows.map((r) => r.id).sort()).toEqual(["o-1", "o-2", tricky].sort());
      });

      it("runLast: a failing statement rolls back the whole transaction and fails the call, typed", async () => {
        await store.query(`INSERT INTO orders (id, qty) VALUES (${p(1)}, ${p(2)})`, ["taken", 1]);
        const thrown = await store
          .lazyTransaction((tx) => insert(tx, "o-1"), {
            beforeCommit: (tx) =>
              runLast(tx, store.dialect, sql`INSERT INTO orders (id, qty) VALUES (${"taken"}, ${2})`),
          })
          .catch((e: unknown) => e);
        expect(isPatchbayError(thrown, "QUERY_FAILED")).toBe(true);
        expect(await countOrders(store)).toBe(1); // "taken" only: o-1 rolled back
        // The same in a plain transaction; the store stays usable afterwards.
        const again = await store
          .transaction(async (tx) => {
            await insert(tx, "o-2");
            await runLast(tx, store.dialect, sql`INSERT INTO orders (id, qty) VALUES (${"taken"}, ${3})`);
          })
          .catch((e: unknown) => e);
        expect(isPatchbayError(again, "QUERY_FAILED")).toBe(true);
        expect(await countOrders(store)).toBe(1);
        await store.transaction((tx) =>
          runLast(tx, store.dialect, sql`DELETE FROM orders WHERE id = ${"taken"}`),
        );
        expect(await countOrders(store)).toBe(0);
      });

      it("runLast: nothing of it is applied when fn fails", async () => {
        const failure = new Error("handler failed");
        const thrown = await store
          .transaction(async (tx) => {
            await runLast(tx, store.dialect, sql`INSERT INTO orders (id, qty) VALUES (${"held"}, ${1})`);
            throw failure;
          })
          .catch((e: unknown) => e);
        expect(thrown).toBe(failure);
        expect(await countOrders(store)).toBe(0);
      });

      it("when onOpen fails and fn throws something else, the call fails with onOpen's error", async () => {
        const refused = new Error("already processed");
        const thrown = await store
          .lazyTransaction(
            async (tx) => {
              await insert(tx, "o-1").catch(() => {
                throw new Error("the handler's own wrapping error");
              });
            },
            { onOpen: () => Promise.reject(refused) },
          )
          .catch((e: unknown) => e);
        expect(thrown).toBe(refused);
        expect(await countOrders(store)).toBe(0);
      });

      it("a tx handle used after the lazy transaction ended is rejected", async () => {
        let leaked: Parameters<Parameters<SqlStore["lazyTransaction"]>[0]>[0] | undefined;
        await store.lazyTransaction(async (tx) => {
          leaked = tx;
          await Promise.resolve();
        });
        await expectCode(insert(leaked!, "late"), "STORE_CLOSED");
        expect(await countOrders(store)).toBe(0);
      });

      it("20 concurrent lazy transactions, half of them writing, all commit their own rows", async () => {
        const results = await Promise.all(
          Array.from({ length: 20 }, (_, i) =>
            store.lazyTransaction(async (tx) => {
              await new Promise((r) => setTimeout(r, 1));
              if (i % 2 === 0) await insert(tx, `o-${i}`);
              return i;
            }),
          ),
        );
        expect(results.filter((r) => r.opened).map((r) => r.value)).toEqual([
          0, 2, 4, 6, 8, 10, 12, 14, 16, 18,
        ]);
        expect(await countOrders(store)).toBe(10);
      });
    });

    describe("state", () => {
      it("round-trips JSON values and counts versions", async () => {
        const value = { a: [1, 2.5, "three", null, true], nested: { ü: "ünïcödé ✓", empty: {} } };
        const first = await store.state.set("cp/one", value);
        expect(first.version).toBe(1);
        const second = await store.state.set("cp/one", "plain string");
        expect(second.version).toBe(2);
        expect((await store.state.get("cp/one"))?.value).toBe("plain string");
        await store.state.set("cp/two", value);
        expect((await store.state.get("cp/two"))?.value).toEqual(value);
        expect(await store.state.get("missing")).toBeUndefined();
      });

      it("compare-and-set writes only at the expected version", async () => {
        await store.state.set("k", 1, { expectedVersion: 0 });
        await expectCode(store.state.set("k", 2, { expectedVersion: 0 }), "STATE_VERSION_CONFLICT");
        await expectCode(store.state.set("k", 2, { expectedVersion: 7 }), "STATE_VERSION_CONFLICT");
        expect(await store.state.get("k")).toMatchObject({ value: 1, version: 1 });
        await store.state.set("k", 2, { expectedVersion: 1 });
        expect(await store.state.get("k")).toMatchObject({ value: 2, version: 2 });
      });

      it("lists by prefix literally (no LIKE wildcards) and deletes", async () => {
        for (const k of ["sync/a%", "sync/a_b", "sync/ab", "sync/b", "syncx", "other"])
          await store.state.set(k, k);
        expect((await store.state.list("sync/a")).map((e) => e.key)).toEqual([
          "sync/a%",
          "sync/a_b",
          "sync/ab",
        ]);
        expect((await store.state.list("sync/a%")).map((e) => e.key)).toEqual(["sync/a%"]);
        expect(await store.state.delete("sync/b")).toBe(true);
        expect(await store.state.delete("sync/b")).toBe(false);
        expect((await store.state.list("sync/")).length).toBe(3);
      });

      it("rejects bad keys and non-JSON values with INVALID_ARGUMENT and writes nothing", async () => {
        await expectCode(store.state.set("", 1), "INVALID_ARGUMENT");
        await expectCode(store.state.set("x".repeat(513), 1), "INVALID_ARGUMENT");
        await expectCode(store.state.set("k", undefined), "INVALID_ARGUMENT");
        await expectCode(store.state.set("k", { when: new Date() }), "INVALID_ARGUMENT");
        await expectCode(store.state.set("k", { n: Number.NaN }), "INVALID_ARGUMENT");
        expect(await store.state.list("")).toEqual([]);
      });
    });

    describe("idempotency", () => {
      let clock: FakeClock;
      let ids: SqlStore;
      beforeEach(() => {
        clock = new FakeClock(Date.UTC(2026, 0, 1));
        ids = make({ clock });
      });

      it("the first claim wins; repeats are in flight, completed, or a mismatch", async () => {
        const claim = await ids.idempotency.claim({ key: "pay-1", fingerprint: "POST /pay {1}" });
        expect(claim).toMatchObject({ outcome: "claimed", replaced: false });
        expect(await ids.idempotency.claim({ key: "pay-1", fingerprint: "POST /pay {1}" })).toMatchObject({
          outcome: "in_flight",
        });
        expect(await ids.idempotency.claim({ key: "pay-1", fingerprint: "POST /pay {2}" })).toMatchObject({
          outcome: "mismatch",
        });
        if (claim.outcome !== "claimed") throw new Error("unreachable");
        await ids.idempotency.complete({ key: "pay-1" }, claim.token, { status: 201, body: { id: 7 } });
        const again = await ids.idempotency.claim({ key: "pay-1", fingerprint: "POST /pay {1}" });
        expect(again.outcome).toBe("completed");
        expect(again.outcome === "completed" && again.record.response).toEqual({
          status: 201,
          body: { id: 7 },
        });
        // Scopes are separate key spaces.
        expect(
          (await ids.idempotency.claim({ scope: "client-b", key: "pay-1", fingerprint: "x" })).outcome,
        ).toBe("claimed");
      });

      it("of 20 concurrent claims of one key exactly one is claimed", async () => {
        const stores = [ids, make({ clock }), make({ clock })];
        const claims = await Promise.all(
          Array.from({ length: 20 }, (_, i) =>
            stores[i % 3]!.idempotency.claim({ key: "race", fingerprint: "same" }),
          ),
        );
        expect(claims.filter((c) => c.outcome === "claimed")).toHaveLength(1);
        expect(claims.filter((c) => c.outcome === "in_flight")).toHaveLength(19);
      });

      it("an expired record can be claimed afresh, even with another request", async () => {
        const first = await ids.idempotency.claim({ key: "k", fingerprint: "a", ttl: "1h" });
        if (first.outcome !== "claimed") throw new Error("first claim failed");
        await ids.idempotency.complete({ key: "k" }, first.token, "r1");
        await clock.advance(59 * 60_000);
        expect((await ids.idempotency.claim({ key: "k", fingerprint: "b", ttl: "1h" })).outcome).toBe(
          "mismatch",
        );
        await clock.advance(60_000);
        const reused = await ids.idempotency.claim({ key: "k", fingerprint: "b", ttl: "1h" });
        expect(reused).toMatchObject({ outcome: "claimed", replaced: true });
        // The old holder's token is dead.
        await expectCode(
          ids.idempotency.complete({ key: "k" }, first.token, "late"),
          "IDEMPOTENCY_NOT_OWNER",
        );
      });

      it("a holder that completes after its ttl ran out (nobody took over) is replayed for a whole ttl, never run again", async () => {
        const slow = await ids.idempotency.claim({ key: "slow", fingerprint: "f", ttl: "1m", lease: "30s" });
        if (slow.outcome !== "claimed") throw new Error("first claim failed");
        // The handler runs past the ttl, renewing its lease all along.
        for (let i = 0; i < 4; i++) {
          await clock.advance(20_000);
          await ids.idempotency.renew({ key: "slow" }, slow.token, "30s");
        }
        await ids.idempotency.complete({ key: "slow" }, slow.token, "r1");
        await clock.advance(59_000);
        // A retry of the completed request gets its response: the handler must not run twice.
        expect(await ids.idempotency.claim({ key: "slow", fingerprint: "f", ttl: "1m" })).toMatchObject({
          outcome: "completed",
          record: { response: "r1" },
        });
        await clock.advance(1_000);
        expect((await ids.idempotency.claim({ key: "slow", fingerprint: "f", ttl: "1m" })).outcome).toBe(
          "claimed",
        );
      });

      it("an in-flight claim whose holder died is taken over after its lease, and the dead holder cannot complete", async () => {
        const dead = await ids.idempotency.claim({ key: "k", fingerprint: "f", lease: "30s" });
        if (dead.outcome !== "claimed") throw new Error("first claim failed");
        await clock.advance(29_000);
        expect((await ids.idempotency.claim({ key: "k", fingerprint: "f" })).outcome).toBe("in_flight");
        await clock.advance(1_000);
        const next = await ids.idempotency.claim({ key: "k", fingerprint: "f" });
        expect(next).toMatchObject({ outcome: "claimed", replaced: true });
        await expectCode(
          ids.idempotency.complete({ key: "k" }, dead.token, "stale"),
          "IDEMPOTENCY_NOT_OWNER",
        );
        expect((await ids.idempotency.get({ key: "k" }))?.status).toBe("in_flight");
      });

      it("a holder that renews its lease is not taken over; once it stops, the lease runs out; a stale token cannot renew", async () => {
        const live = await ids.idempotency.claim({ key: "k", fingerprint: "f", lease: "30s" });
        if (live.outcome !== "claimed") throw new Error("first claim failed");
        for (let i = 0; i < 4; i++) {
          await clock.advance(20_000);
          await ids.idempotency.renew({ key: "k" }, live.token, "30s");
        }
        await clock.advance(29_000);
        expect((await ids.idempotency.claim({ key: "k", fingerprint: "f" })).outcome).toBe("in_flight");
        await clock.advance(1_000);
        const next = await ids.idempotency.claim({ key: "k", fingerprint: "f" });
        expect(next).toMatchObject({ outcome: "claimed", replaced: true });
        await expectCode(ids.idempotency.renew({ key: "k" }, live.token, "30s"), "IDEMPOTENCY_NOT_OWNER");
        if (next.outcome !== "claimed") throw new Error("unreachable");
        await ids.idempotency.complete({ key: "k" }, next.token, "done");
        await expectCode(ids.idempotency.renew({ key: "k" }, next.token), "IDEMPOTENCY_NOT_OWNER");
        expect((await ids.idempotency.get({ key: "k" }))?.status).toBe("complete");
      });

      it("release lets the key be retried; purge removes only expired records", async () => {
        const c = await ids.idempotency.claim({ key: "k", fingerprint: "f" });
        if (c.outcome !== "claimed") throw new Error("claim failed");
        await ids.idempotency.release({ key: "k" }, c.token);
        expect((await ids.idempotency.claim({ key: "k", fingerprint: "f" })).outcome).toBe("claimed");
        await ids.idempotency.claim({ key: "short", fingerprint: "f", ttl: "1m" });
        await clock.advance(2 * 60_000);
        expect(await ids.idempotency.purgeExpired()).toBe(1);
        expect(await ids.idempotency.get({ key: "short" })).toBeUndefined();
        expect(await ids.idempotency.get({ key: "k" })).toBeDefined();
      });

      it("rejects bad input with typed errors", async () => {
        await expectCode(ids.idempotency.claim({ key: "", fingerprint: "f" }), "INVALID_ARGUMENT");
        await expectCode(ids.idempotency.claim({ key: "k", fingerprint: "" }), "INVALID_ARGUMENT");
        await expectCode(
          ids.idempotency.claim({ key: "k", fingerprint: "f", ttl: "soon" }),
          "DURATION_INVALID",
        );
        // A lease of 0 would let every concurrent claim take the key over: two holders at once.
        await expectCode(ids.idempotency.claim({ key: "k", fingerprint: "f", lease: 0 }), "INVALID_ARGUMENT");
        expect(await ids.idempotency.get({ key: "k" })).toBeUndefined();
      });
    });

    describe("lifecycle", () => {
      it("close waits for running transactions, is safe twice, and later use is STORE_CLOSED", async () => {
        let finished = false;
        const running = store.transaction(async (tx) => {
          await new Promise((r) => setTimeout(r, 50));
          await tx.state.set("late", true);
          finished = true;
        });
        await new Promise((r) => setTimeout(r, 5));
        await Promise.all([store.close(), store.close()]);
        expect(finished).toBe(true);
        await running;
        await expectCode(store.state.get("late"), "STORE_CLOSED");
        await expectCode(
          store.transaction(() => Promise.resolve()),
          "STORE_CLOSED",
        );
        const reopened = make();
        expect((await reopened.state.get("late"))?.value).toBe(true);
      });

      it("a malformed statement is QUERY_FAILED and the store keeps working", async () => {
        await expectCode(store.query("SELEC nonsense"), "QUERY_FAILED");
        await store.state.set("still", "ok");
        expect((await store.state.get("still"))?.value).toBe("ok");
      });
    });
  });
}
