/**
 * How the bus splits its multi-row INSERTs (queue rows, outbox rows): at most 500 rows — under
 * every driver's parameter limit — and about 2 MiB of body and header text, so that a batch of
 * messages each under `maxMessageBytes` never makes one statement over a server's packet limit
 * (MariaDB's `max_allowed_packet`, 16 MiB by default, refuses such a statement and closes the
 * connection). A text of n characters is at most 3n bytes in UTF-8: 6 MiB at most per statement.
 */
const MAX_ROWS = 500;
const MAX_CHARS = 2 * 1024 * 1024;

/** Splits `items` into insert chunks in order; `charsOf` is an item's text length. Never an empty chunk. */
export function insertChunks<T>(items: readonly T[], charsOf: (item: T) => number): T[][] {
  const chunks: T[][] = [];
  let current: T[] = [];
  let chars = 0;
  for (const item of items) {
    const size = charsOf(item);
    if (current.length > 0 && (current.length >= MAX_ROWS || chars + size > MAX_CHARS)) {
      chunks.push(current);
      current = [];
      chars = 0;
    }
    current.push(item);
    chars += size;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

/** The text length of a value written in a row (a string, or JSON text; 0 otherwise). */
export const textLength = (value: unknown): number => (typeof value === "string" ? value.length : 0);
