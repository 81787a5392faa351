/**
 * Every error Patchbay raises is a {@link PatchbayError}: a stable string `code` to branch on, the
 * `cause` that led to it, a `retryable` flag that retry policies read, and domain data as fields.
 *
 * Branch on codes with {@link isPatchbayError} rather than `instanceof`: two copies of the
 * package in one process (a common npm accident) would make `instanceof` lie.
 */

const BRAND = Symbol.for("patchbay.error");

/** Options every Patchbay error accepts. */
export interface PatchbayErrorOptions {
  /** The error that led to this one. */
  cause?: unknown;
  /** Whether trying the same thing again may succeed. Defaults to `false`. */
  retryable?: boolean;
}

/**
 * Base class of every error Patchbay raises.
 *
 * @example
 * try { await store.state.set(key, value, { expectedVersion: 3 }); }
 * catch (e) { if (isPatchbayError(e, "STATE_VERSION_CONFLICT")) reload(); else throw e; }
 */
export class PatchbayError extends Error {
  /** Stable, machine-readable reason, e.g. `"SCHEMA_INVALID"`. */
  readonly code: string;
  /** Whether trying the same operation again may succeed. */
  readonly retryable: boolean;

  constructor(code: string, message: string, options: PatchbayErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retryable = options.retryable ?? false;
    Object.defineProperty(this, BRAND, { value: true });
  }

  override get name(): string {
    return this.constructor.name;
  }

  /** A plain, JSON-safe view for logs, dead letters and API responses. */
  toJSON(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(this)) out[k] = v;
    out.name = this.name;
    out.code = this.code;
    out.message = this.message;
    out.retryable = this.retryable;
    if (this.cause !== undefined) {
      out.cause =
        this.cause instanceof Error ? { name: this.cause.name, message: this.cause.message } : this.cause;
    }
    return out;
  }
}

/**
 * Maps each error code to the class that carries it, so {@link isPatchbayError} narrows to the
 * right fields (`attribute`, `issues`, ...). Modules add their codes by declaration merging.
 */
export interface PatchbayErrorCodes {
  INVALID_ARGUMENT: InvalidArgumentError;
  DURATION_INVALID: DurationError;
  NON_RETRYABLE: NonRetryableError;
  ENVELOPE_INVALID: EnvelopeError;
  SCHEMA_INVALID: SchemaValidationError;
  EVENT_VERSION_UNKNOWN: UnknownEventVersionError;
  DRIVER_MISSING: DriverMissingError;
}

/**
 * True when `e` is a Patchbay error, and (when given) carries the `code`; narrows to the class
 * of that code. Works across duplicated package copies.
 *
 * @example if (isPatchbayError(e, "ENVELOPE_INVALID")) console.log(e.attribute);
 */
export function isPatchbayError<C extends keyof PatchbayErrorCodes>(
  e: unknown,
  code: C,
): e is PatchbayErrorCodes[C];
export function isPatchbayError(e: unknown, code?: string): e is PatchbayError;
export function isPatchbayError(e: unknown, code?: string): e is PatchbayError {
  if (typeof e !== "object" || e === null || !(BRAND in e)) return false;
  return code === undefined || (e as unknown as PatchbayError).code === code;
}

/** An argument or option that can never be right. Not retryable. */
export class InvalidArgumentError extends PatchbayError {
  constructor(
    message: string,
    /** The argument or option at fault, e.g. `"options.ttl"`. */
    readonly argument: string,
    options: PatchbayErrorOptions = {},
  ) {
    super("INVALID_ARGUMENT", message, options);
  }
}

/** A duration string or number that cannot be read (e.g. `"5 parsecs"`, `-1`). */
export class DurationError extends PatchbayError {
  constructor(
    message: string,
    readonly input: unknown,
  ) {
    super("DURATION_INVALID", message);
  }
}

/** An error that must never be retried, whatever the policy says. Throw it from handlers. */
export class NonRetryableError extends PatchbayError {
  constructor(message: string, options: Omit<PatchbayErrorOptions, "retryable"> = {}) {
    super("NON_RETRYABLE", message, { ...options, retryable: false });
  }
}

/**
 * A CloudEvents envelope that breaks the CloudEvents 1.0 rules: a missing or empty required
 * attribute, a bad `specversion`, a `time` that is not RFC 3339, a bad extension name or value, a
 * body that is not JSON. `attribute` names the attribute at fault (`"time"`, `"extension:FooBar"`,
 * `"(body)"` for an unreadable message body, `"(envelope)"` when the value is not an object).
 */
export class EnvelopeError extends PatchbayError {
  constructor(
    message: string,
    /** The attribute at fault, e.g. `"specversion"`, `"extension:FooBar"`, `"(body)"`. */
    readonly attribute: string,
    options: Omit<PatchbayErrorOptions, "retryable"> = {},
  ) {
    super("ENVELOPE_INVALID", message, options);
  }
}

/** One problem a schema found, with its path flattened to a string such as `"items[0].sku"`. */
export interface SchemaIssue {
  /** Where the problem is: `"items[0].sku"`; `""` for the value itself. */
  readonly path: string;
  /** What is wrong, in the schema library's words. */
  readonly message: string;
}

/** Event data that does not match its event's schema. Not retryable: the same data fails again. */
export class SchemaValidationError extends PatchbayError {
  constructor(
    message: string,
    /** The event type whose schema rejected the data, e.g. `"order.created"`. */
    readonly eventType: string,
    /** The event version whose schema rejected the data. */
    readonly version: number,
    /** Every problem the schema reported. */
    readonly issues: readonly SchemaIssue[],
    options: Omit<PatchbayErrorOptions, "retryable"> = {},
  ) {
    super("SCHEMA_INVALID", message, options);
  }
}

/**
 * An event carries a `dataversion` its definition cannot read: newer than the definition, or an
 * older version with no upcaster path to the current one. Not retryable on this code version.
 */
export class UnknownEventVersionError extends PatchbayError {
  constructor(
    message: string,
    /** The event type, e.g. `"order.created"`. */
    readonly eventType: string,
    /** The version the event carries. */
    readonly version: number,
    /** The version the definition reads (its current version). */
    readonly knownVersion: number,
  ) {
    super("EVENT_VERSION_UNKNOWN", message);
  }
}

/**
 * An adapter was opened without its driver package (`pg`, `amqplib`, `mysql2`,
 * `pg-copy-streams`): not installed next to `patchbay`, or installed but unable to load (the
 * original error is the `cause`). Drivers are optional peer dependencies, loaded when a store,
 * transport, source or destination first connects; `hint` is the command that installs the one
 * missing. Not retryable: trying again fails the same way until it is installed.
 *
 * @example if (isPatchbayError(e, "DRIVER_MISSING")) console.error(e.hint); // "npm install pg"
 */
export class DriverMissingError extends PatchbayError {
  constructor(
    message: string,
    /** The package that is missing, e.g. `"pg"`. */
    readonly driver: string,
    /** The command that installs it, e.g. `"npm install pg"`. */
    readonly hint: string,
    options: Omit<PatchbayErrorOptions, "retryable"> = {},
  ) {
    super("DRIVER_MISSING", message, { ...options, retryable: false });
  }
}
