import { describe, expect, it } from "vitest";
import { formatLsn, parseLsn } from "./lsn.js";
import { PgOutputDecoder } from "./pgoutput.js";

const str = (s: string) => Buffer.concat([Buffer.from(s), Buffer.from([0])]);
const u16 = (n: number) => Buffer.from([n >> 8, n & 0xff]);
const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
const text = (s: string) => Buffer.concat([Buffer.from("t"), u32(Buffer.byteLength(s)), Buffer.from(s)]);

const relation = Buffer.concat([
  Buffer.from("R"),
  u32(42),
  str("public"),
  str("items"),
  Buffer.from("d"),
  u16(3),
  Buffer.from([1]),
  str("id"),
  u32(23),
  u32(0xffffffff),
  Buffer.from([0]),
  str("name"),
  u32(25),
  u32(0xffffffff),
  Buffer.from([0]),
  str("big"),
  u32(25),
  u32(0xffffffff),
]);

describe("pgoutput decoder", () => {
  it("reads a relation, then an update whose unchanged TOAST column is left out (not NULL)", () => {
    const d = new PgOutputDecoder();
    expect(d.decode(relation)).toMatchObject({
      tag: "relation",
      relation: { schema: "public", table: "items" },
    });
    const update = Buffer.concat([
      Buffer.from("U"),
      u32(42),
      Buffer.from("N"),
      u16(3),
      text("7"),
      Buffer.from("n"),
      Buffer.from("u"),
    ]);
    const msg = d.decode(update);
    expect(msg.tag).toBe("update");
    if (msg.tag !== "update") return;
    expect(msg.new).toEqual({ id: "7", name: null });
    expect("big" in msg.new).toBe(false);
    expect(msg.relation.columns.map((c) => c.key)).toEqual([true, false, false]);
  });

  it("reads the old key of an update that changed it, and a delete's key", () => {
    const d = new PgOutputDecoder();
    d.decode(relation);
    const update = Buffer.concat([
      Buffer.from("U"),
      u32(42),
      Buffer.from("K"),
      u16(3),
      text("1"),
      Buffer.from("n"),
      Buffer.from("n"),
      Buffer.from("N"),
      u16(3),
      text("2"),
      text("x"),
      text("y"),
    ]);
    expect(d.decode(update)).toMatchObject({ old: { id: "1" }, new: { id: "2", name: "x", big: "y" } });
    const del = Buffer.concat([
      Buffer.from("D"),
      u32(42),
      Buffer.from("K"),
      u16(3),
      text("2"),
      Buffer.from("n"),
      Buffer.from("n"),
    ]);
    expect(d.decode(del)).toMatchObject({ tag: "delete", old: { id: "2" } });
  });

  it("reads begin and commit positions", () => {
    const d = new PgOutputDecoder();
    const commit = Buffer.alloc(26);
    commit.write("C", 0);
    commit.writeBigUInt64BE(0x16b3748n, 2);
    commit.writeBigUInt64BE(0x16b3780n, 10);
    expect(d.decode(commit)).toMatchObject({ tag: "commit", commitLsn: 0x16b3748n, endLsn: 0x16b3780n });
  });
});

describe("LSN", () => {
  it("round-trips PostgreSQL's text form", () => {
    expect(parseLsn("16/B374D848")).toBe(0x16b374d848n);
    expect(formatLsn(0x16b374d848n)).toBe("16/B374D848");
    expect(() => parseLsn("16-B3")).toThrow();
  });
});
