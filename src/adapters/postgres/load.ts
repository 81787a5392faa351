/**
 * The PostgreSQL drivers, `pg` and (for the sync source and destination) `pg-copy-streams`,
 * imported when first needed, and the part of their API this adapter uses, declared here as
 * structural types: Patchbay's published types name no driver type, so an app's strict `tsc`
 * needs neither `@types/pg` nor `@types/pg-copy-streams`. The loaders below check, at our
 * compile time, that the real modules fit these types.
 */
import type { Readable, Writable } from "node:stream";
import { driverLoader } from "../load-driver.js";

/** What a statement returns (the parts Patchbay reads). */
export interface PgResult<Row = Record<string, unknown>> {
  rows: Row[];
  rowCount: number | null;
  /** The command tag: `"COMMIT"`, `"ROLLBACK"`, `"INSERT"`, ... */
  command: string;
  fields: ReadonlyArray<{ name: string }>;
}

/** Reads a column's text as a JS value (`pg`'s type parsers). */
export interface PgTypeParsers {
  getTypeParser(oid: number, format?: "text" | "binary"): unknown;
}

/** A statement given as an object (`pg`'s `QueryConfig`). */
export interface PgQueryConfig {
  text: string;
  values?: unknown[];
  /** A named prepared statement. */
  name?: string;
  types?: PgTypeParsers;
}

/** Something `query()` hands the connection and returns as is (a COPY stream). */
export interface PgSubmittable {
  submit(connection: never): void;
}

/** Runs statements: a pool, a pooled client or a client. */
export interface PgQueryable {
  query<T extends PgSubmittable>(stream: T): T;
  query<Row = Record<string, unknown>>(
    textOrConfig: string | PgQueryConfig,
    values?: unknown[],
  ): Promise<PgResult<Row>>;
}

/** A client checked out of a pool (`pg.PoolClient`). */
export interface PgPoolClient extends PgQueryable {
  /** Back to the pool; with an error, the connection is destroyed instead. */
  release(err?: Error | boolean): void;
}

/**
 * A `pg` pool, as the `pool` option takes it: any `new pg.Pool(...)` (`pg` ≥ 8.11). Declared
 * here so that Patchbay's types do not need `@types/pg`.
 */
export interface PgPoolLike extends PgQueryable {
  connect(): Promise<PgPoolClient>;
  end(): Promise<void>;
  on(event: "error", listener: (err: Error) => void): unknown;
}

/** A single connection (`pg.Client`), for LISTEN. */
export interface PgClient extends PgQueryable {
  connect(): Promise<unknown>;
  end(): Promise<void>;
  on(event: "notification", listener: (message: { channel: string; payload?: string }) => void): unknown;
  on(event: "error", listener: (err: Error) => void): unknown;
  on(event: "end", listener: () => void): unknown;
}

/** The `pg` module. */
export interface PgModule {
  Pool: new (config?: Record<string, unknown>) => PgPoolLike;
  Client: new (config?: object) => PgClient;
  types: PgTypeParsers;
}

/** A COPY stream (`pg-copy-streams`'s queries). */
export interface PgCopyStreams {
  to: (text: string) => PgSubmittable & Readable;
  from: (text: string) => PgSubmittable & Writable;
}

const pgLoader = driverLoader<PgModule>({
  driver: "pg",
  range: ">= 8.11",
  neededBy: "patchbay/postgres",
  // Typed against `@types/pg` here: the compiler checks that `pg` fits PgModule.
  load: async () => (await import("pg")).default,
});

let loaded: PgModule | undefined;

/** Imports `pg` (once); `DRIVER_MISSING` with `npm install pg` when it is not installed. */
export async function loadPg(): Promise<PgModule> {
  return (loaded = await pgLoader());
}

/** `pg`, for code that only runs once {@link loadPg} resolved (a pool exists). */
export function loadedPg(): PgModule {
  if (!loaded) throw new Error("patchbay/postgres: pg is used before it was loaded");
  return loaded;
}

/**
 * Imports `pg-copy-streams` (once), which only the sync source and destination use (COPY);
 * `DRIVER_MISSING` with `npm install pg-copy-streams` when it is not installed.
 */
export const loadCopyStreams = driverLoader<PgCopyStreams>({
  driver: "pg-copy-streams",
  range: ">= 6",
  neededBy: "the PostgreSQL sync source and destination (COPY, in patchbay/postgres)",
  load: async () => (await import("pg-copy-streams")).default,
});
