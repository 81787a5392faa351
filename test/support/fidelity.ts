/**
 * The hostile fixture of the fidelity tests (issue 20; also CDC, issue 22): JSON of every shape,
 * 64-bit integers at the edges, decimals of 20+ significant digits, instants and wall-clock times
 * at microsecond precision before 1970 and after 2038, NULL beside empty, control characters,
 * binary; the per-database table definitions and readers, and the exact comparison helpers.
 */
import pg from "pg";

// ---------------------------------------------------------------------------------------------
// The fixture. Instants are UTC text (`…Z`), wall-clock times zone-less text; row i takes the
// i-th value of each list (cycling), so every value appears at least once.

const deep = `${"[".repeat(24)}{"x": [-0.0, 1E-7]}${"]".repeat(24)}`;
export const JSON_VALUES: Array<string | null> = [
  `{"big": 12345678901234567890, "tiny": 0.1000000000000000055511151231257827, "neg": -9223372036854775809, "exp": 1.5e300, "deep": {"a": [1, [2, [3, {"b": null}]]]}}`,
  `"just a string"`,
  `12345678901234567890`,
  `0.1000000000000000055511151231257827`,
  `true`,
  `null`,
  null,
  `[]`,
  `{}`,
  `""`,
  deep,
  `{ "b" : 1 , "a" : [ 1.0 , 2E+2 , -0 ] , "a" : "dup" }`,
  `{"emoji": "😀👩‍👩‍👧", "esc": "q\\" b\\\\ \\u00e9 \\n \\t \\u0001 \\/"}`,
];
export const INTEGERS = [
  "9223372036854775807",
  "-9223372036854775808",
  "-9223372036854775807",
  "9007199254740993",
  "9007199254740991",
  "-9007199254740993",
  "0",
  null,
];
export const DECIMALS = [
  "12345678901234567890.123456789012345678",
  "-0.000000000000000000000000000001",
  "99999999999999999999999999999999999.999999999999999999999999999999",
  "0",
  "1.5",
  "-12345678901234567890",
  null,
];
/** Doubles at the edges: the smallest subnormal, the largest finite, one that needs 17 digits. */
export const DOUBLES = [
  0.30000000000000004,
  5e-324,
  1.7976931348623157e308,
  -2.5,
  0.1,
  null,
  123456789.12345679,
];
/** Instants a MariaDB TIMESTAMP can hold (1970 to 2038), around New York's DST changes. */
export const INSTANTS = [
  "1970-01-01T00:00:01.000001Z",
  "2038-01-19T03:14:07.999999Z",
  "2026-03-08T07:30:00.500000Z",
  "2026-11-01T05:30:00.123456Z",
  "2026-11-01T06:30:00.123456Z",
  null,
];
/** Instants of any year (MariaDB keeps them in a DATETIME, as UTC). */
export const WIDE_INSTANTS = [
  "1969-07-20T20:17:40.000001Z",
  "1000-01-01T00:00:00.000001Z",
  "1883-11-18T16:59:59.999999Z",
  "2100-02-28T23:59:59.999999Z",
  "9999-12-31T23:59:59.999999Z",
  "2026-11-01T05:30:00.000000Z",
  null,
];
/**
 * Instants written with an offset (SQLite keeps the text) into a zone-less column elsewhere
 * (PostgreSQL timestamp, MariaDB DATETIME): they must arrive as their UTC wall-clock time.
 */
export const OFFSET_INSTANTS = [
  "2026-11-01T01:30:00.000001-04:00",
  "1969-12-31T23:00:00.5+02:00",
  "2026-03-08 02:30:00.123456+00",
  "2100-01-01T00:00:00-10:30",
  null,
];
/** Wall-clock times: one that New York skips, one it has twice. */
export const WALL_TIMES = [
  "1969-12-31 23:59:59.999999",
  "2026-03-08 02:30:00.000000",
  "2026-11-01 01:30:00.000001",
  "9999-12-31 23:59:59.999999",
  "1000-01-01 00:00:00.000000",
  "2038-01-19 03:14:08.000000",
  null,
];
export const TEXTS = [
  "",
  null,
  "😀 emoji 👩‍👩‍👧 é",
  "tab\there\nnewline\r\ncr",
  "\u0001\u0007\b\f\v\u001b\u007f\u0085\u2028",
  "back\\slash \\\\ two \\t",
  "\\N",
  "\\.",
  `'single' "double" \`tick\``,
  "x".repeat(20_000),
];
export const BOOLEANS = [true, false, null];
export const BINARIES = [
  Buffer.from(Array.from({ length: 256 }, (_, i) => i)),
  Buffer.alloc(0),
  null,
  Buffer.from("\\N"),
  Buffer.from([0]),
];

export interface FixtureRow {
  id: number;
  j: string | null;
  jb: string | null;
  i64: string | null;
  num: string | null;
  dbl: number | null;
  ts: string | null;
  tsx: string | null;
  dt: string | null;
  utc_wall: string | null;
  txt: string | null;
  flag: boolean | null;
  bin: Buffer | null;
}

const at = <T>(list: readonly T[], i: number) => list[i % list.length] as T;
export const FIXTURE: FixtureRow[] = Array.from({ length: JSON_VALUES.length }, (_, i) => ({
  id: i + 1,
  j: at(JSON_VALUES, i),
  jb: at(JSON_VALUES, i + 3),
  i64: at(INTEGERS, i),
  num: at(DECIMALS, i),
  dbl: at(DOUBLES, i),
  ts: at(INSTANTS, i),
  tsx: at(WIDE_INSTANTS, i),
  dt: at(WALL_TIMES, i),
  utc_wall: at(OFFSET_INSTANTS, i),
  txt: at(TEXTS, i),
  flag: at(BOOLEANS, i),
  bin: at(BINARIES, i),
}));
export const COLUMNS = [
  "id",
  "j",
  "jb",
  "i64",
  "num",
  "dbl",
  "ts",
  "tsx",
  "dt",
  "utc_wall",
  "txt",
  "flag",
  "bin",
] as const;

// ---------------------------------------------------------------------------------------------
// Values in one comparable form, whatever the database gave.

export type Comparable = Record<string, string | boolean | null>;

/** `-0012.3400` → `-12.34`; exact, as text. */
export function decimal(text: string): string {
  const m = /^([+-]?)(\d*)(?:\.(\d*))?$/.exec(text.trim());
  if (!m) return `not a decimal: ${text}`;
  const int = (m[2] ?? "").replace(/^0+/, "") || "0";
  const frac = (m[3] ?? "").replace(/0+$/, "");
  const body = frac ? `${int}.${frac}` : int;
  return m[1] === "-" && body !== "0" ? `-${body}` : body;
}

/** A date/time text (offset `Z`, `+02`, `-04:56:02` or none = UTC) → µs since the epoch, exact. */
export function instant(text: string): string {
  const m =
    /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?\s*(Z|[+-]\d{2}(?::?\d{2}(?::?\d{2})?)?)?$/i.exec(
      text.trim(),
    );
  if (!m) return `not an instant: ${text}`;
  const [, y, mo, d, h, mi, s, frac = "", zone = "Z"] = m;
  let offsetSeconds = 0;
  if (zone.toUpperCase() !== "Z") {
    const digits = zone.replace(/:/g, "");
    const sign = digits[0] === "-" ? -1 : 1;
    offsetSeconds =
      sign *
      (Number(digits.slice(1, 3)) * 3600 +
        Number(digits.slice(3, 5) || 0) * 60 +
        Number(digits.slice(5, 7) || 0));
  }
  const date = new Date(0);
  date.setUTCFullYear(Number(y), Number(mo) - 1, Number(d));
  date.setUTCHours(Number(h), Number(mi), Number(s), 0);
  const seconds = BigInt(date.getTime() / 1000 - offsetSeconds);
  return (seconds * 1_000_000n + BigInt(frac.padEnd(6, "0"))).toString();
}

/** A zone-less date/time text → `YYYY-MM-DD HH:MM:SS.ffffff`. */
export function wallTime(text: string): string {
  const m = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(?:\.(\d{1,6}))?$/.exec(text.trim());
  return m ? `${m[1]} ${m[2]}.${(m[3] ?? "").padEnd(6, "0")}` : `not a wall-clock time: ${text}`;
}

export function hex(value: unknown): string {
  if (value instanceof Uint8Array) return Buffer.from(value).toString("hex");
  return `not bytes: ${typeof value} ${String(value)}`;
}

export function flag(value: unknown): boolean | string {
  if (value === true || value === 1 || value === 1n || value === "1" || value === "t" || value === "true")
    return true;
  if (value === false || value === 0 || value === 0n || value === "0" || value === "f" || value === "false")
    return false;
  return `not a boolean: ${String(value)}`;
}

export const text = (value: unknown) =>
  typeof value === "string" ? value : `not text: ${typeof value} ${String(value)}`;

/** A row read back (see each reader for the SQL) in the comparable form. */
export function comparable(row: Record<string, unknown>, instantsAsMicros: boolean): Comparable {
  const or = <T>(v: unknown, f: (v: never) => T) => (v === null || v === undefined ? null : f(v as never));
  return {
    id: String(row.id),
    j: or(row.j, text),
    jb: or(row.jb, text),
    i64: or(row.i64, (v: string | bigint | number) => BigInt(v).toString()),
    num: or(row.num, (v: string | number) => decimal(String(v))),
    dbl: or(row.dbl, (v: string | number) => String(Number(v))),
    ts: or(row.ts, (v: string) => (instantsAsMicros ? String(v) : instant(v))),
    tsx: or(row.tsx, (v: string) => (instantsAsMicros ? String(v) : instant(v))),
    dt: or(row.dt, (v: string) => wallTime(v)),
    utc_wall: or(row.utc_wall, (v: string) => instant(v)),
    txt: or(row.txt, text),
    flag: or(row.flag, flag),
    bin: or(row.bin, hex),
  };
}

/** Where a value came from or went: the comparison expects what each database can give. */
export type Kind = "postgres" | "mysql" | "sqlite";

// ---------------------------------------------------------------------------------------------

/** What the fixture row must read back as, from `from` into `to`. */
export function expected(row: FixtureRow, jsonb: Map<string, string>, from: Kind, to: Kind): Comparable {
  // jsonb keeps the value, not the text: PostgreSQL's own rendering is the exact expectation.
  const viaJsonb = from === "postgres" || to === "postgres";
  return {
    id: String(row.id),
    j: row.j,
    jb: row.jb === null ? null : viaJsonb ? (jsonb.get(row.jb) ?? "missing") : row.jb,
    i64: row.i64,
    num: row.num === null ? null : decimal(row.num),
    dbl: row.dbl === null ? null : String(row.dbl),
    ts: row.ts === null ? null : instant(row.ts),
    tsx: row.tsx === null ? null : instant(row.tsx),
    dt: row.dt === null ? null : wallTime(row.dt),
    utc_wall: row.utc_wall === null ? null : instant(row.utc_wall),
    txt: row.txt,
    flag: row.flag,
    bin: row.bin === null ? null : row.bin.toString("hex"),
  };
}

export const shorten = (v: unknown) => {
  const s = JSON.stringify(v) ?? "undefined";
  return s.length > 90 ? `${s.slice(0, 60)}…(${s.length} chars)` : s;
};

/** Every value that differs, as a readable line; `[]` when the tables are equal. */
export function differences(actual: Comparable[], want: Comparable[]): string[] {
  const out: string[] = [];
  if (actual.length !== want.length) out.push(`row count ${actual.length}, expected ${want.length}`);
  const byId = new Map(actual.map((r) => [r.id, r]));
  for (const w of want) {
    const a = byId.get(w.id);
    if (!a) {
      out.push(`id ${String(w.id)}: missing`);
      continue;
    }
    for (const c of COLUMNS) {
      if (a[c] !== w[c]) out.push(`id ${String(w.id)} ${c}: got ${shorten(a[c])}, expected ${shorten(w[c])}`);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The fixture's table in each database, and the exact readers (text for everything).

/** PostgreSQL: `name` may be schema-qualified. */
export const postgresTableSql = (name: string) =>
  `CREATE TABLE ${name} (id bigint PRIMARY KEY, j json, jb jsonb, i64 bigint, num numeric, dbl double precision, ts timestamptz, tsx timestamptz, dt timestamp, utc_wall timestamp, txt text, flag boolean, bin bytea)`;

/** Inserts one fixture row ({@link postgresFixtureParams}); `utc_wall` is kept as its UTC wall-clock time. */
export const postgresInsertSql = (name: string) =>
  `INSERT INTO ${name} (${COLUMNS.join(", ")}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::timestamptz AT TIME ZONE 'UTC', $11, $12, $13)`;

export const postgresFixtureParams = (row: FixtureRow) => COLUMNS.map((c) => row[c]);

/** Reads a table whose rows then go through `comparable(row, true)`. */
export const postgresReadSql = (name: string) =>
  `SELECT id, j::text AS j, jb::text AS jb, i64::text AS i64, num::text AS num, dbl::text AS dbl,
     (extract(epoch FROM ts) * 1000000)::numeric(30,0)::text AS ts,
     (extract(epoch FROM tsx) * 1000000)::numeric(30,0)::text AS tsx,
     to_char(dt, 'YYYY-MM-DD HH24:MI:SS.US') AS dt,
     to_char(utc_wall, 'YYYY-MM-DD HH24:MI:SS.US') AS utc_wall, txt, flag, bin
   FROM ${name} ORDER BY id`;

export const mysqlTableSql = (name: string) =>
  `CREATE TABLE ${name} (id BIGINT PRIMARY KEY, j JSON, jb JSON, i64 BIGINT, num DECIMAL(65,30), dbl DOUBLE, ts TIMESTAMP(6) NULL DEFAULT NULL, tsx DATETIME(6), dt DATETIME(6), utc_wall DATETIME(6), txt LONGTEXT, flag BOOLEAN, bin LONGBLOB) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`;

/**
 * Reads a table (in a UTC session of a pool with `dateStrings`, `bigNumberStrings` and
 * `jsonStrings`) whose rows then go through `comparable(row, false)`.
 */
export const mysqlReadSql = (name: string) =>
  `SELECT id, j, jb, CAST(i64 AS CHAR) AS i64, CAST(num AS CHAR) AS num, CAST(dbl AS CHAR) AS dbl, CAST(ts AS CHAR) AS ts, CAST(tsx AS CHAR) AS tsx, CAST(dt AS CHAR) AS dt, CAST(utc_wall AS CHAR) AS utc_wall, txt, flag, bin FROM ${name} ORDER BY id`;

export const sqliteTableSql = (name: string) =>
  `CREATE TABLE ${name} (id INTEGER PRIMARY KEY, j TEXT, jb TEXT, i64 INTEGER, num TEXT, dbl REAL, ts TEXT, tsx TEXT, dt TEXT, utc_wall TEXT, txt TEXT, flag BOOLEAN, bin BLOB)`;

/** Reads a table (with `setReadBigInts(true)`) whose rows then go through `comparable(row, false)`. */
export const sqliteReadSql = (name: string) => `SELECT ${COLUMNS.join(", ")} FROM ${name} ORDER BY id`;

/**
 * Database defaults (`ALTER DATABASE … SET`) that change how PostgreSQL writes values as text,
 * how it reads a string literal, and how transactions see each other.
 */
export const HOSTILE_OUTPUT: Readonly<Record<string, string>> = {
  DateStyle: "SQL, DMY",
  IntervalStyle: "sql_standard",
  extra_float_digits: "0",
  bytea_output: "escape",
  default_transaction_isolation: "serializable",
  standard_conforming_strings: "off",
};

/** Startup options for a test's own reader: values written the standard way, whatever the database's defaults. */
export const EXACT_READER_OPTIONS = "-c extra_float_digits=3 -c DateStyle=ISO -c bytea_output=hex";

/**
 * Creates `database` (UTF-8) with its default zone at America/New_York and the given output
 * defaults, through a connection to `baseUrl`.
 */
export async function createHostileDatabase(
  baseUrl: string,
  database: string,
  settings: Readonly<Record<string, string>>,
): Promise<void> {
  const admin = new pg.Client({ connectionString: baseUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${database} TEMPLATE template0 ENCODING 'UTF8'`);
    await admin.query(`ALTER DATABASE ${database} SET timezone TO 'America/New_York'`);
    for (const [name, value] of Object.entries(settings))
      await admin.query(`ALTER DATABASE ${database} SET ${name} TO '${value}'`);
  } finally {
    await admin.end();
  }
}
