import { assertMigrationList, type Migration } from "../../store/migrations.js";
import { postgresSyncMigration } from "./sync-schema.js";

/**
 * PostgreSQL schema, numbered. `{{schema}}` is replaced by the quoted schema name. Keys use the
 * "C" collation so prefix range scans and ordering are byte-wise, as on SQLite.
 */
export const postgresMigrations: readonly Migration[] = [
  {
    version: 1,
    name: "state-and-idempotency",
    sql: `
      CREATE TABLE {{schema}}.state (
        key text COLLATE "C" PRIMARY KEY,
        value jsonb NOT NULL,
        version integer NOT NULL,
        updated_at bigint NOT NULL
      );

      CREATE TABLE {{schema}}.idempotency (
        scope text NOT NULL,
        key text NOT NULL,
        fingerprint text NOT NULL,
        status text NOT NULL CHECK (status IN ('in_flight', 'complete')),
        response jsonb,
        token text NOT NULL,
        generation integer NOT NULL,
        created_at bigint NOT NULL,
        locked_until bigint NOT NULL,
        expires_at bigint NOT NULL,
        PRIMARY KEY (scope, key)
      );
      CREATE INDEX idempotency_expires_at ON {{schema}}.idempotency (expires_at);
    `,
  },
  postgresSyncMigration(2),
];
assertMigrationList(postgresMigrations);
