/**
 * The NDJSON file destination. A file has no transactions, so exactness comes from the checkpoint
 * in the Store holding the file's committed length: each batch is appended and synced, then the
 * checkpoint records the new length; a run that finds the file longer than its checkpoint (a
 * crash between the two) cuts the unfinished batch off before writing. Replace mode writes a
 * staging file and renames it over the target: readers see the old file or the new one.
 */
import { constants } from "node:fs";
import { open, rename, rm, stat, truncate } from "node:fs/promises";
import { dirname } from "node:path";
import { InvalidArgumentError, isPatchbayError } from "../core/errors.js";
import type { DestinationSession, JsonValue, SyncDestination, WriteMode } from "./contracts.js";
import { SyncDestinationChangedError, SyncLockLostError } from "./errors.js";
import { specialDouble } from "./exact.js";
import { toJsonSafe } from "./json.js";

/** Options of {@link ndjsonDestination}. */
export interface NdjsonDestinationOptions {
  /** The file to write (created if missing). Quarantined rows go to `<path>.quarantine.ndjson`. */
  path: string;
  /** `"append"` (default): add each run's rows; `"replace"` (with mode `"full"`): the file becomes the run's rows. */
  write?: Extract<WriteMode, "append" | "replace">;
}

interface FileCheckpoint {
  checkpoint: JsonValue;
  owner: string;
  /** Committed length of the file (of the staging file while replacing). */
  bytes: number;
  quarantineBytes: number;
  staging: boolean;
}

const size = async (path: string) => {
  try {
    return (await stat(path)).size;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw e;
  }
};

/** Appends `text`, syncs it to disk, returns the new length. */
async function appendSynced(path: string, text: string): Promise<number> {
  const handle = await open(path, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT, 0o644);
  try {
    await handle.write(text);
    await handle.datasync();
    return (await handle.stat()).size;
  } finally {
    await handle.close();
  }
}

/** Makes `path` exactly `bytes` long (cutting off an unfinished batch); fails if it is shorter. */
async function cutTo(path: string, bytes: number, what: string): Promise<void> {
  const current = (await size(path)) ?? 0;
  if (current < bytes) {
    throw new SyncDestinationChangedError(
      `${what} ${path} is ${current} bytes but ${bytes} were committed to it; it was truncated or replaced: reset the pipeline`,
    );
  }
  if (current > bytes) await truncate(path, bytes);
}

async function syncDir(path: string): Promise<void> {
  const dir = await open(dirname(path), constants.O_RDONLY);
  try {
    await dir.sync();
  } catch {
    // Some filesystems cannot sync a directory; the rename is still atomic.
  } finally {
    await dir.close();
  }
}

/**
 * Writes rows as newline-delimited JSON (dates as ISO strings, bytes as base64).
 *
 * @example ndjsonDestination({ path: "exports/orders.ndjson" })
 */
export function ndjsonDestination(options: NdjsonDestinationOptions): SyncDestination {
  const path = options.path;
  if (typeof path !== "string" || path.length === 0)
    throw new InvalidArgumentError("path must be a file path", "path");
  const write = options.write ?? "append";
  if (write !== "append" && write !== "replace") {
    throw new InvalidArgumentError(
      `a file destination writes "append" or "replace" (no key to merge on)`,
      "write",
    );
  }
  const quarantinePath = `${path}.quarantine.ndjson`;
  const stagePath = `${path}.staging`;
  return {
    description: `ndjson file ${path} (${write})`,
    write,
    key: [],
    capabilities: { transactional: false, columns: false },
    close: () => Promise.resolve(),

    open(context): Promise<DestinationSession> {
      const key = `sync/${context.pipeline}/ndjson:${path}`;
      let version = 0;
      let state: FileCheckpoint = {
        checkpoint: null,
        owner: context.runId,
        bytes: 0,
        quarantineBytes: 0,
        staging: false,
      };
      const target = () => (state.staging ? stagePath : path);
      const save = async (next: FileCheckpoint) => {
        try {
          version = (await context.state.set(key, next, { expectedVersion: version })).version;
          state = next;
        } catch (e) {
          if (!isPatchbayError(e, "STATE_VERSION_CONFLICT")) throw e;
          throw new SyncLockLostError(
            context.pipeline,
            `run ${context.runId} was fenced out of ${path} by a newer run`,
          );
        }
      };
      return Promise.resolve({
        readCheckpoint: async () =>
          (await context.state.get<FileCheckpoint>(key))?.value.checkpoint ?? undefined,

        async claim() {
          const stored = await context.state.get<FileCheckpoint>(key);
          version = stored?.version ?? 0;
          // The first run appends after whatever the files already hold.
          const base = stored?.value ?? {
            ...state,
            bytes: (await size(path)) ?? 0,
            quarantineBytes: (await size(quarantinePath)) ?? 0,
          };
          await save({ ...base, owner: context.runId });
          // A crash after an append but before its checkpoint left an unfinished batch: cut it off.
          if (state.bytes > 0 || (await size(target())) !== undefined)
            await cutTo(target(), state.bytes, "file");
          if (state.quarantineBytes > 0 || (await size(quarantinePath)) !== undefined) {
            await cutTo(quarantinePath, state.quarantineBytes, "quarantine file");
          }
          return state.checkpoint ?? undefined;
        },

        columns: () => Promise.resolve(undefined),
        evolve: () => Promise.resolve(),

        async beginReplace(resume) {
          if (resume && state.staging && (await size(stagePath)) !== undefined) return true;
          await rm(stagePath, { force: true });
          await save({ ...state, staging: true, bytes: 0 });
          return false;
        },

        async write(batch) {
          let { bytes, quarantineBytes } = state;
          // JSON has no NaN or infinities (they would be written as null).
          const quarantine = [...batch.quarantine];
          const rows = batch.rows.filter((row) => {
            for (const [name, value] of Object.entries(row)) {
              const special = specialDouble(value);
              if (special === undefined) continue;
              quarantine.push({
                reason: "value",
                error: {
                  code: "SYNC_VALUE_INEXACT",
                  message: `column ${JSON.stringify(name)} (JSON) has no number ${special}`,
                },
                row: toJsonSafe(row),
              });
              return false;
            }
            return true;
          });
          if (rows.length > 0) {
            bytes = await appendSynced(
              target(),
              rows.map((r) => JSON.stringify(toJsonSafe(r))).join("\n") + "\n",
            );
          }
          if (quarantine.length > 0) {
            const lines = quarantine.map((q) =>
              JSON.stringify({ pipeline: context.pipeline, runId: context.runId, ...q }),
            );
            quarantineBytes = await appendSynced(quarantinePath, lines.join("\n") + "\n");
          }
          await save({ ...state, checkpoint: batch.checkpoint, bytes, quarantineBytes });
          return {
            written: rows.length,
            deleted: 0,
            quarantined: quarantine.length - batch.quarantine.length,
          };
        },

        async commitReplace(checkpoint) {
          if ((await size(stagePath)) === undefined) await appendSynced(stagePath, "");
          await rename(stagePath, path);
          await syncDir(path);
          const bytes = (await size(path)) ?? 0;
          await save({ ...state, checkpoint, bytes, staging: false });
          return { written: 0, deleted: 0 };
        },

        async reset() {
          await rm(stagePath, { force: true });
          await context.state.delete(key);
        },

        close: () => Promise.resolve(),
      });
    },
  };
}
