import { describe, expect, it } from "vitest";
import { joinWith, raw, render, sql } from "./sql.js";

describe("joinWith", () => {
  it("puts the separator between parts only, numbering the parameters in order", () => {
    const rows = [1, 2, 3].map((n) => sql`(${n}, ${`v${n}`})`);
    const statement = sql`INSERT INTO ${raw('"t"')} VALUES `;
    expect(render(joinWith(sql`, `, rows), "numbered")).toEqual({
      text: "($1, $2), ($3, $4), ($5, $6)",
      params: [1, "v1", 2, "v2", 3, "v3"],
    });
    expect(render(joinWith(sql` UNION ALL `, [statement]), "question").text).toBe('INSERT INTO "t" VALUES ');
  });
});
