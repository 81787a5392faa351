/**
 * Keyset paging SQL, one dialect-neutral builder: `WHERE (cursor..., key...) > (last row) ORDER
 * BY cursor..., key... LIMIT n`. Never `OFFSET`: a position is a row's values, so rows changing,
 * arriving or leaving elsewhere in the table cannot shift it.
 */
import { quoteName, type QuoteStyle } from "./identifiers.js";

/** How the SQL is spelt for one backend (shared by SQL sources and destinations). */
export interface KeysetDialect {
  readonly quote: QuoteStyle;
  /** The n-th (1-based) placeholder: `$n` or `?`. */
  placeholder(n: number): string;
  /**
   * Row values (`(a, b) > ($1, $2)`) are used when the backend turns them into an index range
   * (PostgreSQL, SQLite); otherwise the comparison is spelt out (MySQL/MariaDB, whose optimizer
   * ranges the expanded form instead).
   */
  readonly rowValues: boolean;
}

/** A statement under construction: text parts and their parameters, numbered after `offset`. */
export class SqlBuilder {
  readonly params: unknown[] = [];
  constructor(
    private readonly dialect: KeysetDialect,
    private readonly offset = 0,
    /** Inline values as literals instead (for statements that take no parameters, like COPY). */
    private readonly literal?: (value: unknown) => string,
  ) {}

  /** A placeholder bound to `value` (or, in literal mode, the escaped literal). */
  param(value: unknown): string {
    if (this.literal) return this.literal(value);
    this.params.push(value);
    return this.dialect.placeholder(this.offset + this.params.length);
  }

  col(name: string): string {
    return quoteName(name, this.dialect.quote, "column");
  }

  /** `(columns) > (values)` in keyset order (`>`), or its negation (`<=`). */
  tupleCompare(columns: readonly string[], values: readonly unknown[], op: ">" | "<="): string {
    if (this.dialect.rowValues) {
      const cols = columns.map((c) => this.col(c)).join(", ");
      const vals = values.map((v) => this.param(v)).join(", ");
      return columns.length === 1 ? `${cols} ${op} ${vals}` : `(${cols}) ${op} (${vals})`;
    }
    const greater = this.expandedGreater(columns, values, 0);
    return op === ">" ? greater : `NOT ${greater}`;
  }

  /** `(a > x OR (a = x AND (b > y ...)))`. */
  private expandedGreater(columns: readonly string[], values: readonly unknown[], i: number): string {
    const column = this.col(columns[i] as string);
    if (i === columns.length - 1) return `(${column} > ${this.param(values[i])})`;
    return `(${column} > ${this.param(values[i])} OR (${column} = ${this.param(values[i])} AND ${this.expandedGreater(columns, values, i + 1)}))`;
  }
}

/** What one keyset page reads. */
export interface PageSpec {
  /** `"orders"` quoted already, or `(user query) AS pb_src`. */
  from: string;
  /** Quoted select list, or `*`. */
  select: string;
  /** Paging order: cursor columns, then the key columns. */
  order: readonly string[];
  /** Read after this position (values of `order`), or from the start. */
  after?: readonly unknown[] | undefined;
  /** Read up to and including this position. */
  upTo?: readonly unknown[] | undefined;
  /** `order[0] >= from` (the lookback window's start). */
  firstFrom?: unknown;
  /** `order[0] <= until` (the run's upper bound). */
  firstUntil?: unknown;
  limit: number;
}

/** The conditions of a page, shared by the page query and the count. */
function conditions(b: SqlBuilder, spec: Omit<PageSpec, "limit" | "select" | "from">): string[] {
  const where: string[] = [];
  const first = spec.order[0] as string;
  if (spec.firstFrom !== undefined) where.push(`${b.col(first)} >= ${b.param(spec.firstFrom)}`);
  if (spec.firstUntil !== undefined) where.push(`${b.col(first)} <= ${b.param(spec.firstUntil)}`);
  if (spec.upTo) where.push(b.tupleCompare(spec.order, spec.upTo, "<="));
  if (spec.after) where.push(b.tupleCompare(spec.order, spec.after, ">"));
  return where;
}

/** `SELECT ... WHERE ... ORDER BY ... LIMIT n` for one page. */
export function pageQuery(
  dialect: KeysetDialect,
  spec: PageSpec,
  userParams: readonly unknown[] = [],
  literal?: (value: unknown) => string,
): { text: string; params: unknown[] } {
  const b = new SqlBuilder(dialect, userParams.length, literal);
  const where = conditions(b, spec);
  const order = spec.order.map((c) => `${b.col(c)} ASC`).join(", ");
  const text =
    `SELECT ${spec.select} FROM ${spec.from}` +
    (where.length ? ` WHERE ${where.join(" AND ")}` : "") +
    ` ORDER BY ${order} LIMIT ${b.param(spec.limit)}`;
  return { text, params: [...userParams, ...b.params] };
}

/** `SELECT count(*) AS v ...` over the same conditions. */
export function countQuery(
  dialect: KeysetDialect,
  spec: Omit<PageSpec, "limit" | "select">,
  userParams: readonly unknown[] = [],
): { text: string; params: unknown[] } {
  const b = new SqlBuilder(dialect, userParams.length);
  const where = conditions(b, spec);
  const text =
    `SELECT count(*) AS v FROM ${spec.from}` + (where.length ? ` WHERE ${where.join(" AND ")}` : "");
  return { text, params: [...userParams, ...b.params] };
}
