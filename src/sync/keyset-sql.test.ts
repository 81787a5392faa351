import { describe, expect, it } from "vitest";
import { countQuery, pageQuery, type KeysetDialect } from "./keyset-sql.js";

const pg: KeysetDialect = { quote: "double", placeholder: (n) => `$${n}`, rowValues: true };
const my: KeysetDialect = { quote: "backtick", placeholder: () => "?", rowValues: false };

describe("keyset paging SQL", () => {
  it("pages with a row-value comparison after the last row, in cursor-then-key order, never OFFSET", () => {
    const q = pageQuery(pg, {
      from: '"public"."orders"',
      select: "*",
      order: ["updated_at", "id"],
      after: ["2026-01-01 00:00:00+00", 42],
      firstUntil: "2026-01-02 00:00:00+00",
      limit: 500,
    });
    expect(q.text).toBe(
      'SELECT * FROM "public"."orders" WHERE "updated_at" <= $1 AND ("updated_at", "id") > ($2, $3) ORDER BY "updated_at" ASC, "id" ASC LIMIT $4',
    );
    expect(q.params).toEqual(["2026-01-02 00:00:00+00", "2026-01-01 00:00:00+00", 42, 500]);
    expect(q.text).not.toMatch(/OFFSET/i);
  });

  it("spells the comparison out for MySQL so InnoDB ranges it", () => {
    const q = pageQuery(my, {
      from: "`orders`",
      select: "*",
      order: ["updated_at", "id"],
      after: ["t", 7],
      limit: 10,
    });
    expect(q.text).toBe(
      "SELECT * FROM `orders` WHERE (`updated_at` > ? OR (`updated_at` = ? AND (`id` > ?))) ORDER BY `updated_at` ASC, `id` ASC LIMIT ?",
    );
    expect(q.params).toEqual(["t", "t", 7, 10]);
  });

  it("reads the lookback window: from a start on the first column up to and including the checkpoint", () => {
    const q = pageQuery(my, {
      from: "`t`",
      select: "*",
      order: ["u", "id"],
      firstFrom: "s",
      upTo: ["c", 9],
      limit: 5,
    });
    expect(q.text).toContain("`u` >= ? AND NOT (`u` > ? OR (`u` = ? AND (`id` > ?)))");
    expect(q.params).toEqual(["s", "c", "c", 9, 5]);
  });

  it("numbers its placeholders after the user query's own parameters", () => {
    const q = pageQuery(
      pg,
      {
        from: "(SELECT * FROM t WHERE tenant = $1) pb_src",
        select: "*",
        order: ["id"],
        after: [3],
        limit: 2,
      },
      ["acme"],
    );
    expect(q.text).toBe(
      'SELECT * FROM (SELECT * FROM t WHERE tenant = $1) pb_src WHERE "id" > $2 ORDER BY "id" ASC LIMIT $3',
    );
    expect(q.params).toEqual(["acme", 3, 2]);
  });

  it("counts over the same conditions", () => {
    const q = countQuery(pg, { from: '"t"', order: ["id"], after: [3] });
    expect(q.text).toBe('SELECT count(*) AS v FROM "t" WHERE "id" > $1');
  });
});
