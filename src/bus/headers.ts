/** A JSON object (not an array, not null). */
export const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** Message headers as the bus writes them: an object of strings. */
export const isHeaders = (v: unknown): v is Record<string, string> =>
  isRecord(v) && Object.values(v).every((h) => typeof h === "string");
