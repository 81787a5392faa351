/**
 * Data sync (ETL): pipelines from a source to a destination, full / incremental / append, with
 * checkpoints that commit with the rows. Database sources and destinations live in their
 * adapters (`patchbay/postgres`, `patchbay/sqlite`, `patchbay/mysql`); files and HTTP APIs here.
 */
export type {
  ColumnSample,
  DestinationBatch,
  DestinationCapabilities,
  DestinationContext,
  DestinationSession,
  EncodedRows,
  JsonValue,
  QuarantinedRow,
  QuarantineRecord,
  ReadMode,
  ReadRequest,
  Row,
  RowEncoding,
  SourceBatch,
  SourceCapabilities,
  SourceCursor,
  SyncDestination,
  SyncSource,
  WriteMode,
  WriteResult,
} from "./contracts.js";
export {
  SyncCursorError,
  SyncDestinationBusyError,
  SyncDestinationMissingError,
  SyncLockedError,
  SyncLockLostError,
  SyncQuarantineLimitError,
  SyncDestinationChangedError,
  SyncSchemaDriftError,
  SyncSourceChangedError,
  SyncSourceError,
} from "./errors.js";
export { parseExactJson } from "./json.js";
export { pipeline, type Pipeline, type PipelineOptions, type PipelineStatus } from "./pipeline.js";
export type { PipelineCheckpoint, RunOptions, SyncMode, SyncProgress, SyncRunReport } from "./run.js";
export type { RunStatus, SyncRunRecord } from "./runs.js";
export type { DriftPolicy, Transform, TransformContext, TransformResult } from "./transform.js";
export type { LeaseInfo } from "./lock.js";
export type { CursorType, SqlSourceOptions } from "./keyset.js";
export type { SqlDestinationOptions } from "./sql-destination.js";
export {
  ndjsonSource,
  csvSource,
  parseCsvRecord,
  type NdjsonSourceOptions,
  type CsvSourceOptions,
} from "./files.js";
export { ndjsonDestination, type NdjsonDestinationOptions } from "./ndjson-destination.js";
export { httpSource, type HttpSourceOptions, type PagePick } from "./http-source.js";
