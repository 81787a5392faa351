import { assertMigrationList, type Migration } from "../../store/migrations.js";
import { mysqlBusMigration, mysqlBusPausedGroupsMigration } from "./bus-schema.js";
import { mysqlSagaMigration } from "./saga-schema.js";
import { mysqlSyncMigration } from "./sync-schema.js";
import { mysqlWebhooksMigration } from "./webhooks-schema.js";

/**
 * The binary collations without padding, MariaDB's then MySQL's (8.0.17+): the first the server
 * has is the tables' collation. `utf8mb4_bin` pads: it compares `"k"` and `"k "` as equal, so two
 * such state keys, idempotency keys or message ids would be one row (a message dropped as a
 * duplicate). It is the fallback on a server with neither.
 */
export const NO_PAD_COLLATIONS = ["utf8mb4_nopad_bin", "utf8mb4_0900_bin"] as const;

/**
 * The table options of every Patchbay table on MariaDB/MySQL: InnoDB (row locks, `SKIP LOCKED`),
 * utf8mb4 (every character, emoji included) and a binary collation without padding
 * ({@link NO_PAD_COLLATIONS}), so keys compare and sort byte-wise and case-sensitively as on
 * PostgreSQL ("C") and SQLite: `"A"` and `"a"`, `"a"` and `"a "` are two idempotency keys, not one.
 */
export const tableOptions = (collation: string) =>
  `ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=${collation}`;

/**
 * The MariaDB/MySQL schema, numbered: one migration per module, each table in its final shape
 * (this adapter started after the others' later column additions). `{{t}}` is replaced by the
 * table prefix, `{{options}}` by {@link tableOptions}.
 *
 * DDL commits on its own in MySQL, so a migration is not one transaction: every statement is
 * `CREATE TABLE IF NOT EXISTS` with its indexes inside, and a migration interrupted half way is
 * completed by running it again. Key columns are `VARCHAR(255)` (ids, groups, names; `VARCHAR(512)`
 * for state keys): an index entry holds at most 3072 bytes, 768 utf8mb4 characters.
 */
export const mysqlMigrations: readonly Migration[] = [
  {
    version: 1,
    name: "state-and-idempotency",
    sql: `
      CREATE TABLE IF NOT EXISTS {{t}}state (
        \`key\` VARCHAR(512) NOT NULL PRIMARY KEY,
        value JSON NOT NULL,
        version INT NOT NULL,
        updated_at BIGINT NOT NULL
      ) {{options}};

      CREATE TABLE IF NOT EXISTS {{t}}idempotency (
        scope VARCHAR(255) NOT NULL,
        \`key\` VARCHAR(255) NOT NULL,
        fingerprint TEXT NOT NULL,
        status VARCHAR(16) NOT NULL CHECK (status IN ('in_flight', 'complete')),
        response JSON,
        token VARCHAR(64) NOT NULL,
        generation INT NOT NULL,
        created_at BIGINT NOT NULL,
        locked_until BIGINT NOT NULL,
        expires_at BIGINT NOT NULL,
        PRIMARY KEY (scope, \`key\`),
        INDEX idempotency_expires_at (expires_at)
      ) {{options}};
    `,
  },
  mysqlSyncMigration(2),
  mysqlBusMigration(3),
  mysqlSagaMigration(4),
  mysqlWebhooksMigration(5),
  mysqlBusPausedGroupsMigration(6),
];
assertMigrationList(mysqlMigrations);

/** Splits a migration into its statements (Patchbay's own DDL: no `;` inside a statement). */
export function statements(ddl: string): string[] {
  return ddl
    .split(/;\s*(?:\n|$)/)
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}
