/**
 * A decoder of the `pgoutput` logical replication protocol (version 1): the messages PostgreSQL's
 * built-in output plugin sends inside each XLogData frame. Pure: bytes in, messages out.
 * https://www.postgresql.org/docs/current/protocol-logicalrep-message-formats.html
 */
import { setField } from "../../../core/fields.js";

/** A column of a relation, as the Relation message describes it. */
export interface RelationColumn {
  name: string;
  typeOid: number;
  /** Part of the replica identity (the key sent with updates and deletes). */
  key: boolean;
}

/** A table as the stream describes it (sent before its first change, and again after DDL). */
export interface Relation {
  id: number;
  schema: string;
  table: string;
  /** `d` default (primary key), `n` nothing, `f` full, `i` index. */
  replicaIdentity: string;
  columns: RelationColumn[];
}

/**
 * A tuple: column name to its text value, `null` for NULL. A column whose value is an unchanged
 * TOASTed value (`u`: the server did not send it) is absent.
 */
export type Tuple = Record<string, string | null>;

export type PgOutputMessage =
  | { tag: "begin"; finalLsn: bigint; commitTime: bigint; xid: number }
  | { tag: "commit"; commitLsn: bigint; endLsn: bigint; commitTime: bigint }
  | { tag: "relation"; relation: Relation }
  | { tag: "insert"; relation: Relation; new: Tuple }
  | { tag: "update"; relation: Relation; old: Tuple | undefined; new: Tuple }
  | { tag: "delete"; relation: Relation; old: Tuple }
  | { tag: "truncate"; relations: Relation[] }
  | { tag: "message"; prefix: string; content: Buffer; lsn: bigint; transactional: boolean }
  | { tag: "other"; code: string };

/** Reads one message at a time; keeps the relations it was told about. */
export class PgOutputDecoder {
  readonly relations = new Map<number, Relation>();
  private buf: Buffer = Buffer.alloc(0);
  private at = 0;

  decode(data: Buffer): PgOutputMessage {
    this.buf = data;
    this.at = 1;
    const code = String.fromCharCode(data[0] as number);
    switch (code) {
      case "B":
        return { tag: "begin", finalLsn: this.u64(), commitTime: this.u64(), xid: this.u32() };
      case "C": {
        this.at += 1; // flags
        return { tag: "commit", commitLsn: this.u64(), endLsn: this.u64(), commitTime: this.u64() };
      }
      case "R": {
        const id = this.u32();
        const schema = this.str();
        const table = this.str();
        const replicaIdentity = String.fromCharCode(this.u8());
        const n = this.u16();
        const columns: RelationColumn[] = [];
        for (let i = 0; i < n; i++) {
          const flags = this.u8();
          const name = this.str();
          const typeOid = this.u32();
          this.u32(); // typmod
          columns.push({ name, typeOid, key: (flags & 1) === 1 });
        }
        const relation = { id, schema, table, replicaIdentity, columns };
        this.relations.set(id, relation);
        return { tag: "relation", relation };
      }
      case "I": {
        const relation = this.relation();
        this.at += 1; // 'N'
        return { tag: "insert", relation, new: this.tuple(relation) };
      }
      case "U": {
        const relation = this.relation();
        const kind = String.fromCharCode(this.u8());
        let old: Tuple | undefined;
        if (kind === "K" || kind === "O") {
          old = this.tuple(relation);
          this.at += 1; // 'N'
        }
        return { tag: "update", relation, old, new: this.tuple(relation) };
      }
      case "D": {
        const relation = this.relation();
        this.at += 1; // 'K' or 'O'
        return { tag: "delete", relation, old: this.tuple(relation) };
      }
      case "T": {
        const n = this.u32();
        this.at += 1; // options
        const relations: Relation[] = [];
        for (let i = 0; i < n; i++) relations.push(this.relationById(this.u32()));
        return { tag: "truncate", relations };
      }
      case "M": {
        const transactional = this.u8() === 1;
        const lsn = this.u64();
        const prefix = this.str();
        const length = this.u32();
        const content = this.buf.subarray(this.at, this.at + length);
        return { tag: "message", prefix, content, lsn, transactional };
      }
      default:
        return { tag: "other", code };
    }
  }

  private relation(): Relation {
    return this.relationById(this.u32());
  }

  private relationById(id: number): Relation {
    const relation = this.relations.get(id);
    if (!relation) throw new Error(`pgoutput: change for relation ${id} before its Relation message`);
    return relation;
  }

  private tuple(relation: Relation): Tuple {
    const n = this.u16();
    const tuple: Tuple = {};
    for (let i = 0; i < n; i++) {
      const name = relation.columns[i]?.name ?? `column_${i}`;
      const kind = String.fromCharCode(this.u8());
      if (kind === "n") setField(tuple, name, null);
      else if (kind === "t" || kind === "b") {
        const length = this.u32();
        setField(tuple, name, this.buf.toString("utf8", this.at, this.at + length));
        this.at += length;
      }
      // 'u': an unchanged TOASTed value, not sent: left out, never turned into NULL.
    }
    return tuple;
  }

  private u8(): number {
    return this.buf.readUInt8(this.at++);
  }
  private u16(): number {
    const v = this.buf.readUInt16BE(this.at);
    this.at += 2;
    return v;
  }
  private u32(): number {
    const v = this.buf.readUInt32BE(this.at);
    this.at += 4;
    return v;
  }
  private u64(): bigint {
    const v = this.buf.readBigUInt64BE(this.at);
    this.at += 8;
    return v;
  }
  private str(): string {
    const end = this.buf.indexOf(0, this.at);
    const s = this.buf.toString("utf8", this.at, end);
    this.at = end + 1;
    return s;
  }
}
