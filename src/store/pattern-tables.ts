/**
 * The tables of Patchbay's patterns (the bus's local queue, inbox, dead letters and outbox;
 * sagas; outbound webhooks) as migrations for a store written outside this repository. The
 * shipped adapters keep their own, tuned files; these are the same tables in their current
 * shape, in portable SQL, from a small map of the database's column types.
 */
import { quoteColumn, type SqlDialect } from "./dialect.js";
import type { Migration } from "./migrations.js";

/** A database's column types, for {@link patternMigrations}. Each is what follows a column's name. */
export interface ColumnTypes {
  /** Text of any length (`TEXT`; MySQL: `LONGTEXT`, as a message body may be 1 MiB). */
  text: string;
  /** Text in a key or an index (ids, group names, states). Default `text`; MySQL needs a length: `VARCHAR(255)`. */
  keyText?: string;
  /** A 32-bit integer. */
  integer: string;
  /** A 64-bit integer: every timestamp (ms since the epoch), counters. */
  bigint: string;
  /** A floating-point number. */
  real: string;
  /** Bytes (`BLOB`, `bytea`). */
  bytes: string;
  /** A JSON value as the dialect's `encodeJson` writes it (`TEXT`, `jsonb`, `JSON`). */
  json: string;
  /**
   * A primary key the database numbers itself, increasing with each insert: the whole
   * definition after the name (`INTEGER PRIMARY KEY AUTOINCREMENT`, `bigserial PRIMARY KEY`,
   * `BIGINT AUTO_INCREMENT PRIMARY KEY`).
   */
  serialKey: string;
  /** Written after each `CREATE TABLE (...)`: table options (`ENGINE=InnoDB`). Default none. */
  tableOptions?: string;
  /** An index's name from its short one (`bus_jobs_due`), unique in the database. Default `patchbay_<name>`. */
  indexName?: (name: string) => string;
}

/** A column: its name, its type in {@link ColumnTypes} (`keyText`: in a key or index), and `null` when it may hold NULL. */
type Column = readonly [
  name: string,
  type: keyof Omit<ColumnTypes, "tableOptions" | "indexName">,
  null?: "null",
];

interface Table {
  name: string;
  columns: readonly Column[];
  /** `PRIMARY KEY (...)`, `UNIQUE (...)`, `CHECK (...)`: written as they are. */
  constraints?: readonly string[];
  indexes?: Readonly<Record<string, readonly string[]>>;
  /** Columns with a default (rows queued before a column existed, on the shipped stores). */
  defaults?: Readonly<Record<string, string>>;
}

const busTables: readonly Table[] = [
  {
    name: "bus_bindings",
    columns: [
      ["grp", "keyText"],
      ["pattern", "keyText"],
    ],
    constraints: ["PRIMARY KEY (grp, pattern)"],
  },
  {
    name: "bus_jobs",
    columns: [
      ["id", "serialKey"],
      ["grp", "keyText"],
      ["message_id", "keyText"],
      ["type", "text"],
      ["key", "text", "null"],
      ["body", "text"],
      ["headers", "json"],
      ["attempt", "integer"],
      ["fresh", "integer"],
      ["run_at", "bigint"],
      ["first_failed_at", "bigint", "null"],
      ["last_error", "json", "null"],
      ["created_at", "bigint"],
    ],
    constraints: ["UNIQUE (grp, message_id)"],
    indexes: { bus_jobs_due: ["grp", "run_at", "id"] },
    defaults: { attempt: "0", fresh: "0" },
  },
  {
    name: "bus_inbox",
    columns: [
      ["grp", "keyText"],
      ["message_id", "keyText"],
      ["processed_at", "bigint"],
    ],
    constraints: ["PRIMARY KEY (message_id, grp)"],
    indexes: { bus_inbox_processed_at: ["processed_at"] },
  },
  {
    name: "bus_dead_letters",
    columns: [
      ["grp", "keyText"],
      ["message_id", "keyText"],
      ["type", "text"],
      ["key", "text", "null"],
      ["body", "text"],
      ["body_bytes", "bytes", "null"],
      ["headers", "json"],
      ["error", "json"],
      ["attempts", "integer"],
      ["first_failed_at", "bigint"],
      ["last_failed_at", "bigint"],
      ["transport", "text", "null"],
    ],
    constraints: ["PRIMARY KEY (grp, message_id)"],
    indexes: {
      bus_dead_letters_failed: ["last_failed_at", "grp", "message_id"],
      bus_dead_letters_group: ["grp", "last_failed_at", "message_id"],
    },
  },
  {
    name: "bus_outbox",
    columns: [
      ["id", "serialKey"],
      ["message_id", "text"],
      ["type", "text"],
      ["key", "text", "null"],
      ["body", "text"],
      ["headers", "json"],
      ["deliver_at", "bigint"],
      ["created_at", "bigint"],
    ],
  },
  {
    name: "bus_paused_groups",
    columns: [
      ["grp", "keyText"],
      ["paused_at", "bigint"],
      ["paused_by", "text", "null"],
    ],
    constraints: ["PRIMARY KEY (grp)"],
  },
];

const sagaTables: readonly Table[] = [
  {
    name: "saga_instances",
    columns: [
      ["id", "keyText"],
      ["name", "text"],
      ["version", "integer"],
      ["input", "json"],
      ["status", "keyText"],
      ["step", "integer"],
      ["attempt", "integer"],
      ["claim", "integer"],
      ["owner", "text", "null"],
      ["run_at", "bigint"],
      ["deadline", "bigint", "null"],
      ["last_delay", "bigint", "null"],
      ["reason", "json", "null"],
      ["failure", "json", "null"],
      ["note", "text", "null"],
      ["created_at", "bigint"],
      ["updated_at", "bigint"],
    ],
    constraints: [
      "PRIMARY KEY (id)",
      "CHECK (status IN ('running', 'completed', 'compensating', 'compensated', 'failed', 'resolved'))",
    ],
    indexes: {
      saga_instances_due: ["run_at"],
      saga_instances_status: ["status", "created_at"],
      saga_instances_created: ["created_at", "id"],
    },
  },
  {
    name: "saga_steps",
    columns: [
      ["saga_id", "keyText"],
      ["idx", "integer"],
      ["phase", "keyText"],
      ["name", "text"],
      ["status", "text"],
      ["result", "json", "null"],
      ["error", "json", "null"],
      ["attempts", "integer"],
      ["started_at", "bigint"],
      ["finished_at", "bigint", "null"],
      ["note", "text", "null"],
    ],
    constraints: [
      "PRIMARY KEY (saga_id, idx, phase)",
      "CHECK (phase IN ('run', 'compensate'))",
      "CHECK (status IN ('running', 'retrying', 'succeeded', 'failed', 'skipped'))",
    ],
  },
];

const webhookTables: readonly Table[] = [
  {
    name: "webhook_endpoints",
    columns: [
      ["id", "keyText"],
      ["url", "text"],
      ["description", "text"],
      ["events", "json"],
      ["status", "text"],
      ["disabled_reason", "text", "null"],
      ["disabled_at", "bigint", "null"],
      ["secret", "text"],
      ["previous_secret", "text", "null"],
      ["previous_secret_until", "bigint", "null"],
      ["concurrency", "integer"],
      ["rate_limit", "real", "null"],
      ["rate_tokens", "real"],
      ["rate_at", "bigint"],
      ["claimed_at", "bigint"],
      ["failing_since", "bigint", "null"],
      ["last_success_at", "bigint", "null"],
      ["last_failure_at", "bigint", "null"],
      ["created_at", "bigint"],
      ["updated_at", "bigint"],
    ],
    constraints: ["PRIMARY KEY (id)", "CHECK (status IN ('enabled', 'disabled'))"],
  },
  {
    name: "webhook_messages",
    columns: [
      ["id", "keyText"],
      ["event_type", "text"],
      ["payload", "text"],
      ["traceparent", "text", "null"],
      ["created_at", "bigint"],
    ],
    constraints: ["PRIMARY KEY (id)"],
  },
  {
    name: "webhook_deliveries",
    columns: [
      ["seq", "serialKey"],
      ["endpoint_id", "keyText"],
      ["message_id", "keyText"],
      ["status", "keyText"],
      ["claims", "integer"],
      ["attempts", "integer"],
      ["round_start", "integer"],
      ["next_attempt_at", "bigint"],
      ["last_status", "integer", "null"],
      ["last_error", "json", "null"],
      ["created_at", "bigint"],
      ["updated_at", "bigint"],
      ["delivered_at", "bigint", "null"],
    ],
    constraints: [
      "UNIQUE (endpoint_id, message_id)",
      "CHECK (status IN ('pending', 'sending', 'delivered', 'failed'))",
    ],
    indexes: {
      webhook_deliveries_due: ["endpoint_id", "next_attempt_at", "seq"],
      webhook_deliveries_updated: ["endpoint_id", "status", "updated_at"],
      webhook_deliveries_message: ["message_id"],
    },
  },
  {
    name: "webhook_attempts",
    columns: [
      ["id", "serialKey"],
      ["endpoint_id", "keyText"],
      ["message_id", "keyText"],
      ["attempt", "integer"],
      ["started_at", "bigint"],
      ["latency_ms", "integer", "null"],
      ["status", "integer", "null"],
      ["outcome", "text"],
      ["response_excerpt", "text", "null"],
      ["error", "json", "null"],
    ],
    constraints: ["CHECK (outcome IN ('succeeded', 'failed', 'unknown'))"],
    indexes: {
      webhook_attempts_delivery: ["endpoint_id", "message_id", "attempt"],
      webhook_attempts_started: ["started_at"],
    },
  },
];

/** A table's DDL: `CREATE TABLE` and its indexes. */
function ddl(dialect: Pick<SqlDialect, "table" | "quote">, types: ColumnTypes, table: Table): string {
  const q = (name: string) => quoteColumn(dialect as SqlDialect, name);
  const columns = table.columns.map(([name, type, nullable]) => {
    const written = type === "keyText" ? (types.keyText ?? types.text) : types[type];
    const notNull = type === "serialKey" || nullable ? "" : " NOT NULL";
    const given = table.defaults?.[name];
    return `${q(name)} ${written}${notNull}${given === undefined ? "" : ` DEFAULT ${given}`}`;
  });
  const lines = [...columns, ...(table.constraints ?? [])].join(",\n  ");
  const options = types.tableOptions ? ` ${types.tableOptions}` : "";
  const indexName = types.indexName ?? ((name: string) => `patchbay_${name}`);
  const indexes = Object.entries(table.indexes ?? {}).map(
    ([name, on]) =>
      `CREATE INDEX ${indexName(name)} ON ${dialect.table(table.name)} (${on.map(q).join(", ")});`,
  );
  return [`CREATE TABLE ${dialect.table(table.name)} (\n  ${lines}\n)${options};`, ...indexes].join("\n");
}

/**
 * The migrations that make the tables of the bus (local queue, inbox, dead letters, outbox),
 * sagas and outbound webhooks, numbered from `firstVersion`, for a store adapter's migration
 * list: the statements of your `dialect.roles` run on these tables. Put them after your own
 * migrations; a later Patchbay release that changes these tables appends to this list (it never
 * changes a migration it shipped), so keep them last and number your own after them from then
 * on. Each migration is several statements: your `MigrationTx.exec` runs them as one script.
 *
 * @example
 * const migrations = [...myMigrations, ...patternMigrations(dialect, types, myMigrations.length + 1)];
 */
export function patternMigrations(
  dialect: Pick<SqlDialect, "table" | "quote">,
  types: ColumnTypes,
  firstVersion: number,
): Migration[] {
  const modules: Array<[name: string, tables: readonly Table[]]> = [
    ["event-bus", busTables],
    ["sagas", sagaTables],
    ["webhooks", webhookTables],
  ];
  return modules.map(([name, tables], i) => ({
    version: firstVersion + i,
    name,
    sql: tables.map((t) => ddl(dialect, types, t)).join("\n\n"),
  }));
}
