/**
 * A logical replication connection over `pg`: a `pg.Client` opened with `replication: 'database'`,
 * the replication commands as simple queries, and `START_REPLICATION` driven as a CopyBoth stream
 * through `pg`'s submittable interface (the same hook `pg-copy-streams` uses).
 *
 * Written here rather than taken from `pg-logical-replication` (whose 2.5.0 was seen acknowledging
 * on a timer even with automatic acknowledgement off) or `postgres`' `subscribe` (a temporary slot:
 * changes made while disconnected are gone): the position confirmed to the server must be exactly
 * the one the destination stored, and nothing else.
 */
import { loadPg, type PgClient } from "../load.js";
import { startupOptions, UTC_OUTPUT_SETTINGS, withStartupOptions } from "../lazy-pool.js";
import { CdcNoSlotsError, CdcStreamError, CdcWalLevelError } from "./errors.js";
import { formatLsn, parseLsn } from "./lsn.js";

/** Microseconds between the Unix epoch and PostgreSQL's (2000-01-01). */
const PG_EPOCH_US = 946_684_800_000_000n;

/** The part of `pg`'s connection a CopyBoth stream drives. */
interface PgWire {
  query(text: string): void;
  sendCopyFromChunk(chunk: Buffer): void;
  endCopyFrom(): void;
  stream: { pause(): void; resume(): void };
}

/** What the server sends on a replication stream. */
export type ReplicationFrame =
  | { kind: "xlog"; start: bigint; end: bigint; data: Buffer }
  | { kind: "keepalive"; end: bigint; replyRequested: boolean };

/** A running `START_REPLICATION`. */
export interface ReplicationStream {
  /** Confirms `lsn` as flushed (the slot may drop WAL before it). Never called with more than what is stored. */
  ack(lsn: bigint): void;
  /** Sends the current position now (the answer to a keepalive that asks for one). */
  reply(): void;
  /** Stop reading from the socket until {@link resume} (back-pressure). */
  pause(): void;
  resume(): void;
  /** Ends the stream (CopyDone); resolves when the server has finished it. */
  stop(): Promise<void>;
  /** Resolves when the stream ends, rejects with the server's error. */
  readonly done: Promise<void>;
}

/** A replication command's failure as a Patchbay error: the setup errors by the server's code and words. */
export function toCdcError(e: unknown, what: string): Error {
  const err = e as { code?: string; message?: string };
  const message = err.message ?? String(e);
  if (/wal_level/.test(message)) {
    const level = /wal_level\s*>=\s*logical/.test(message) ? "replica" : "unknown";
    return new CdcWalLevelError(level);
  }
  if (
    err.code === "53400" ||
    /replication slots are in use|number of requested standby connections|max_wal_senders/.test(message)
  ) {
    return new CdcNoSlotsError(`${what}: ${message}`, { cause: e });
  }
  return new CdcStreamError(`${what}: ${message}`, { cause: e });
}

class CopyBoth {
  wire: PgWire | undefined;
  private settled = false;
  private resolve!: () => void;
  private reject!: (e: unknown) => void;
  readonly done = new Promise<void>((res, rej) => {
    this.resolve = res;
    this.reject = rej;
  });
  private error: unknown;

  constructor(
    private readonly text: string,
    private readonly onFrame: (frame: ReplicationFrame) => void,
  ) {
    this.done.catch(() => undefined);
  }

  submit(connection: PgWire): void {
    this.wire = connection;
    connection.query(this.text);
  }

  handleCopyData(msg: { chunk: Buffer }): void {
    const c = msg.chunk;
    if (c[0] === 0x77 /* w */) {
      this.onFrame({
        kind: "xlog",
        start: c.readBigUInt64BE(1),
        end: c.readBigUInt64BE(9),
        // A copy: pg's parser may reuse the bytes under `chunk` once more data arrives, and
        // frames wait in a queue before they are decoded.
        data: Buffer.from(c.subarray(25)),
      });
    } else if (c[0] === 0x6b /* k */) {
      this.onFrame({ kind: "keepalive", end: c.readBigUInt64BE(1), replyRequested: c[17] === 1 });
    }
  }

  handleError(e: unknown): void {
    this.error ??= e;
    this.finish();
  }

  handleReadyForQuery(): void {
    this.finish();
  }

  private finish(): void {
    if (this.settled) return;
    this.settled = true;
    if (this.error !== undefined) this.reject(this.error);
    else this.resolve();
  }

  handleCommandComplete(): void {}
  handleEmptyQuery(): void {}
  handleRowDescription(): void {}
  handleDataRow(): void {}
  handlePortalSuspended(): void {}
  handleCopyInResponse(): void {}
}

/** A replication session: slot commands and one stream. */
export class ReplicationConnection {
  private constructor(private readonly client: PgClient) {}

  static async open(url: string | undefined): Promise<ReplicationConnection> {
    const pg = await loadPg();
    const client = new pg.Client({
      ...withStartupOptions(url ?? process.env.PATCHBAY_PG_URL, startupOptions(UTC_OUTPUT_SETTINGS)),
      replication: "database",
    });
    client.on("error", () => undefined);
    try {
      await client.connect();
    } catch (e) {
      await client.end().catch(() => undefined);
      throw toCdcError(e, "replication connection");
    }
    return new ReplicationConnection(client);
  }

  /**
   * Creates a durable logical slot (pgoutput) and exports its snapshot: the snapshot's data is the
   * state just before `consistentPoint`, where streaming starts. The snapshot stays usable until
   * this connection runs its next command. A `temporary` slot is only there for its snapshot and
   * its exact consistent point: the server drops it when this connection ends.
   */
  async createSlot(
    slot: string,
    options: { temporary?: boolean } = {},
  ): Promise<{ consistentPoint: bigint; snapshot: string }> {
    try {
      const { rows } = await this.client.query<{ consistent_point: string; snapshot_name: string }>(
        `CREATE_REPLICATION_SLOT "${slot}"${options.temporary ? " TEMPORARY" : ""} LOGICAL pgoutput EXPORT_SNAPSHOT`,
      );
      const row = rows[0];
      if (!row) throw new Error("no answer");
      return { consistentPoint: parseLsn(row.consistent_point), snapshot: row.snapshot_name };
    } catch (e) {
      throw toCdcError(e, `create replication slot ${JSON.stringify(slot)}`);
    }
  }

  /** Streams the slot's changes from `lsn` (decoded by pgoutput, protocol 1, with logical messages). */
  start(
    slot: string,
    publication: string,
    lsn: bigint,
    onFrame: (frame: ReplicationFrame) => void,
  ): ReplicationStream {
    const text = `START_REPLICATION SLOT "${slot}" LOGICAL ${formatLsn(lsn)} (proto_version '1', publication_names '"${publication}"', messages 'true')`;
    const copy = new CopyBoth(text, onFrame);
    this.client.query(copy as never);
    let acked = lsn;
    const sendStatus = (reply = false) => {
      const wire = copy.wire;
      if (!wire) return;
      const b = Buffer.alloc(34);
      b[0] = 0x72; // r
      // written = flushed = applied = the stored position: never more.
      b.writeBigUInt64BE(acked, 1);
      b.writeBigUInt64BE(acked, 9);
      b.writeBigUInt64BE(acked, 17);
      b.writeBigInt64BE(BigInt(Date.now()) * 1000n - PG_EPOCH_US, 25);
      b[33] = reply ? 1 : 0;
      try {
        wire.sendCopyFromChunk(b);
      } catch {
        // The connection is gone: `done` reports it.
      }
    };
    // The server drops a receiver silent for wal_sender_timeout (60 s by default).
    const timer = setInterval(() => sendStatus(), 10_000);
    timer.unref();
    const done = copy.done.then(
      () => clearInterval(timer),
      (e: unknown) => {
        clearInterval(timer);
        throw toCdcError(e, "replication stream");
      },
    );
    done.catch(() => undefined);
    let stopping: Promise<void> | undefined;
    return {
      ack(next) {
        if (next <= acked) return;
        acked = next;
        sendStatus();
      },
      reply: () => sendStatus(),
      pause: () => copy.wire?.stream.pause(),
      resume: () => copy.wire?.stream.resume(),
      done,
      stop() {
        stopping ??= (async () => {
          sendStatus();
          try {
            copy.wire?.endCopyFrom();
            copy.wire?.stream.resume();
          } catch {
            // already closed
          }
          await Promise.race([done.catch(() => undefined), new Promise((r) => setTimeout(r, 2000).unref())]);
        })();
        return stopping;
      },
    };
  }

  /** Closes the session (a stream on it ends with it). */
  async end(): Promise<void> {
    await this.client.end().catch(() => undefined);
  }
}
