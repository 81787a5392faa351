/**
 * A dead letter made storable in any column: the text a store refused (a NUL character, which
 * PostgreSQL's text and jsonb cannot hold; a lone surrogate) replaced by U+FFFD, and values JSON
 * cannot hold (bigints, cycles) made JSON. Used only after the store refused the letter as it was.
 */

import { storableText as storable } from "../core/storable-text.js";

/** A JSON value with every string (keys too) {@link storable} and no value JSON cannot hold. */
function storableJson(value: unknown): Record<string, unknown> {
  try {
    const text = JSON.stringify(value, (_k, v: unknown) =>
      typeof v === "bigint" ? String(v) : typeof v === "string" ? storable(v) : v,
    );
    const out = JSON.parse(text) as unknown;
    const record: Record<string, unknown> = {};
    if (typeof out === "object" && out !== null) {
      for (const [k, v] of Object.entries(out)) record[storable(k)] = v;
    }
    return record;
  } catch (e) {
    // A cycle, a throwing toJSON: what can be said of it.
    return { name: "Unserializable", message: storable(String((e as Error).message)) };
  }
}

/** A dead letter whose text the store refused, made storable and marked as such. */
export function storableLetter<
  L extends {
    messageId: string;
    type: string;
    key: string | undefined;
    headers: Record<string, string>;
    error: Record<string, unknown>;
  },
>(letter: L, refused: unknown): L {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(letter.headers)) headers[storable(k)] = storable(String(v));
  return {
    ...letter,
    messageId: storable(letter.messageId),
    type: storable(letter.type),
    key: letter.key === undefined ? undefined : storable(letter.key),
    headers,
    error: {
      ...storableJson(letter.error),
      // The original text had characters the store refused: they read U+FFFD here.
      sanitized: storable(refused instanceof Error ? refused.message : String(refused)),
    },
  };
}
