import { InvalidArgumentError } from "../core/errors.js";

const SEGMENT = /^[A-Za-z0-9_-]+$/;

/**
 * Checks a subscription pattern: dot-separated segments, each a name, `*` (exactly one segment)
 * or `#` (any number of segments, including none) — the AMQP topic syntax, so patterns mean the
 * same on every transport.
 */
export function assertPattern(pattern: string): void {
  if (typeof pattern !== "string" || pattern.length === 0 || pattern.length > 255) {
    throw new InvalidArgumentError(`pattern must be a non-empty string of at most 255 characters`, "pattern");
  }
  for (const segment of pattern.split(".")) {
    if (segment !== "*" && segment !== "#" && !SEGMENT.test(segment)) {
      throw new InvalidArgumentError(
        `pattern ${JSON.stringify(pattern)} has a bad segment ${JSON.stringify(segment)}; use names, "*" (one segment) or "#" (any number)`,
        "pattern",
      );
    }
  }
}

/** Compiles a pattern into a predicate over event types. */
export function compilePattern(pattern: string): (type: string) => boolean {
  assertPattern(pattern);
  const parts = pattern.split(".");
  if (!parts.includes("#") && !parts.includes("*")) return (type) => type === pattern;
  const match = (p: number, type: string[], t: number): boolean => {
    if (p === parts.length) return t === type.length;
    const part = parts[p];
    if (part === "#") {
      for (let skip = t; skip <= type.length; skip++) if (match(p + 1, type, skip)) return true;
      return false;
    }
    if (t === type.length) return false;
    return (part === "*" || part === type[t]) && match(p + 1, type, t + 1);
  };
  return (type) => match(0, type.split("."), 0);
}

/**
 * Compiled patterns by their text. Bindings are few and long-lived, and `matchesAny` runs for
 * every message and group: compile each once. Bounded so that a process binding ever-new patterns
 * cannot grow it without end (past the bound it starts afresh).
 */
const compiled = new Map<string, (type: string) => boolean>();
const COMPILED_MAX = 1000;

/** True when `type` matches any of `patterns`. */
export function matchesAny(patterns: readonly string[], type: string): boolean {
  for (const p of patterns) {
    let match = compiled.get(p);
    if (!match) {
      if (compiled.size >= COMPILED_MAX) compiled.clear();
      compiled.set(p, (match = compilePattern(p)));
    }
    if (match(type)) return true;
  }
  return false;
}
