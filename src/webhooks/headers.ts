/** Request headers as frameworks hand them over: a fetch `Headers`, or Node's lower-cased record. */
export type HeaderSource =
  { get(name: string): string | null } | Readonly<Record<string, string | readonly string[] | undefined>>;

/** The first value of header `name` (case-insensitive), or undefined. */
export function headerValue(headers: HeaderSource, name: string): string | undefined {
  if (typeof (headers as { get?: unknown }).get === "function") {
    return (headers as { get(name: string): string | null }).get(name) ?? undefined;
  }
  const record = headers as Readonly<Record<string, string | readonly string[] | undefined>>;
  let value = record[name];
  if (value === undefined) {
    const wanted = name.toLowerCase();
    for (const [k, v] of Object.entries(record)) {
      if (k.toLowerCase() === wanted) {
        value = v;
        break;
      }
    }
  }
  return typeof value === "string" ? value : value?.[0];
}

/** Bytes of a raw body given as text or bytes. */
export function bodyBytes(rawBody: string | Uint8Array): Buffer {
  return typeof rawBody === "string"
    ? Buffer.from(rawBody, "utf8")
    : Buffer.from(rawBody.buffer, rawBody.byteOffset, rawBody.byteLength);
}
