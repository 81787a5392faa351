/**
 * Whether a reader's JSON Schema accepts everything a writer's JSON Schema allows, judged the
 * way schema registries do (Confluent's JSON Schema rules, simplified): required fields, types,
 * enums, bounds, closed objects. What it cannot judge (`anyOf`, `$ref`, ...) counts as breaking
 * when it changed.
 */
type Schema = Record<string, unknown>;

/** One reason a reader cannot read what a writer writes. */
export interface SchemaIncompatibility {
  /** `required-field` | `type-narrowed` | `enum-value-removed` | `closed-object` | `unanalysed`. */
  rule: "required-field" | "type-narrowed" | "enum-value-removed" | "closed-object" | "unanalysed";
  /** Where, as a JSON path into the data (`items[].sku`); `""` for the root. */
  path: string;
  detail: string;
}

const isObject = (v: unknown): v is Schema => typeof v === "object" && v !== null && !Array.isArray(v);
const json = (v: unknown) => JSON.stringify(v);
const UNANALYSED = ["anyOf", "oneOf", "allOf", "not", "$ref", "if", "patternProperties"];

function typesOf(s: Schema): Set<string> | undefined {
  if (s.type !== undefined) return new Set(Array.isArray(s.type) ? (s.type as string[]) : [s.type as string]);
  const values = valuesOf(s);
  if (values === undefined) return undefined;
  return new Set(
    values.map((v) =>
      v === null ? "null" : Array.isArray(v) ? "array" : Number.isInteger(v) ? "integer" : typeof v,
    ),
  );
}
function valuesOf(s: Schema): unknown[] | undefined {
  if ("const" in s) return [s.const];
  return Array.isArray(s.enum) ? s.enum : undefined;
}
const accepts = (reader: Set<string>, t: string) =>
  reader.has(t) || (t === "integer" && reader.has("number"));

const LOWER = ["minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties"];
const UPPER = ["maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties"];
const EXACT = ["pattern", "format", "multipleOf"];

/** Every way `reader` rejects data `writer` allows, walking objects and arrays. */
export function schemaIncompatibilities(reader: Schema, writer: Schema, path = ""): SchemaIncompatibility[] {
  const out: SchemaIncompatibility[] = [];
  const at = path === "" ? "(root)" : path;
  if (UNANALYSED.some((k) => k in reader || k in writer)) {
    if (json(reader) !== json(writer)) {
      out.push({
        rule: "unanalysed",
        path,
        detail: `${at}: a union/reference changed; not analysed, so counted as breaking`,
      });
    }
    return out;
  }
  const rt = typesOf(reader);
  const wt = typesOf(writer);
  if (rt !== undefined) {
    const lost = wt === undefined ? ["any"] : [...wt].filter((t) => !accepts(rt, t));
    if (lost.length > 0) {
      out.push({
        rule: "type-narrowed",
        path,
        detail: `${at}: the reader takes ${[...rt].join("|")}, the writer may send ${lost.join("|")}`,
      });
      return out;
    }
  }
  const rv = valuesOf(reader);
  if (rv !== undefined) {
    const wv = valuesOf(writer);
    if (wv === undefined)
      out.push({ rule: "type-narrowed", path, detail: `${at}: the reader takes only ${json(rv)}` });
    else {
      const removed = wv.filter((v) => !rv.some((r) => json(r) === json(v)));
      if (removed.length > 0) {
        out.push({
          rule: "enum-value-removed",
          path,
          detail: `${at}: ${removed.map(json).join(", ")} no longer accepted`,
        });
      }
    }
  }
  for (const k of LOWER) {
    const r = reader[k];
    const w = writer[k];
    if (typeof r === "number" && (typeof w !== "number" || w < r)) {
      out.push({
        rule: "type-narrowed",
        path,
        detail: `${at}: ${k} ${typeof w === "number" ? `raised from ${w} to ${r}` : `${r} added`}`,
      });
    }
  }
  for (const k of UPPER) {
    const r = reader[k];
    const w = writer[k];
    if (typeof r === "number" && (typeof w !== "number" || w > r)) {
      out.push({
        rule: "type-narrowed",
        path,
        detail: `${at}: ${k} ${typeof w === "number" ? `lowered from ${w} to ${r}` : `${r} added`}`,
      });
    }
  }
  for (const k of EXACT) {
    if (reader[k] !== undefined && json(reader[k]) !== json(writer[k])) {
      out.push({
        rule: "type-narrowed",
        path,
        detail: `${at}: ${k} ${json(reader[k])} (the writer's: ${json(writer[k]) ?? "none"})`,
      });
    }
  }
  const rp = isObject(reader.properties) ? reader.properties : {};
  const wp = isObject(writer.properties) ? writer.properties : {};
  const rr = new Set(Array.isArray(reader.required) ? (reader.required as string[]) : []);
  const wr = new Set(Array.isArray(writer.required) ? (writer.required as string[]) : []);
  const child = (name: string) => (path === "" ? name : `${path}.${name}`);
  for (const name of rr) {
    const hasDefault = isObject(rp[name]) && "default" in rp[name];
    if (!wr.has(name) && !hasDefault) {
      out.push({
        rule: "required-field",
        path: child(name),
        detail: `${child(name)}: the reader requires it, the writer ${name in wp ? "may leave it out" : "does not send it"}`,
      });
    }
  }
  for (const [name, w] of Object.entries(wp)) {
    const r = rp[name];
    if (isObject(r) && isObject(w)) out.push(...schemaIncompatibilities(r, w, child(name)));
    else if (r === undefined && reader.additionalProperties === false) {
      out.push({
        rule: "closed-object",
        path: child(name),
        detail: `${child(name)}: the reader's object is closed (additionalProperties: false)`,
      });
    }
  }
  if (isObject(reader.items) && isObject(writer.items)) {
    out.push(...schemaIncompatibilities(reader.items, writer.items, `${path}[]`));
  }
  return out;
}
