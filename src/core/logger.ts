import { pino, type DestinationStream } from "pino";
import { InvalidArgumentError } from "./errors.js";

/** Log levels, most to least severe; `"silent"` turns logging off. */
export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

/** One of {@link LOG_LEVELS}. */
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Logs a message, or an object of fields with an optional message (pino's call signature). */
export interface LogFn {
  (msg: string): void;
  (obj: object, msg?: string): void;
}

/**
 * The structured logger Patchbay writes to. Shaped like pino, so a pino logger (or any logger
 * with this shape) can be passed in as it is.
 *
 * @example logger.info({ eventId, attempt }, "handler failed; retrying");
 */
export interface Logger {
  trace: LogFn;
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
  fatal: LogFn;
  /** A logger that adds `bindings` to every line, e.g. `{ component: "outbox-relay" }`. */
  child(bindings: Record<string, unknown>): Logger;
}

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  /** Minimum level written. Default: env `PATCHBAY_LOG_LEVEL`, else `"info"`. */
  level?: LogLevel;
  /** Added to every line as `name`. */
  name?: string;
  /** Where JSON lines go. Default: stdout. */
  destination?: DestinationStream;
}

function isLogLevel(value: string): value is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(value);
}

/**
 * A pino logger writing JSON lines. The level comes from `options.level`, else the
 * `PATCHBAY_LOG_LEVEL` environment variable, else `"info"`; an unknown level throws
 * {@link InvalidArgumentError} rather than silently logging at the wrong level.
 *
 * @example const logger = createLogger({ name: "shop" }); logger.info({ orderId }, "order created");
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const fromEnv = process.env.PATCHBAY_LOG_LEVEL?.trim().toLowerCase();
  const level: string = options.level ?? (fromEnv || "info");
  if (!isLogLevel(level)) {
    const argument = options.level === undefined ? "PATCHBAY_LOG_LEVEL" : "options.level";
    throw new InvalidArgumentError(
      `${argument} must be one of ${LOG_LEVELS.join(", ")}; got ${JSON.stringify(level)}`,
      argument,
    );
  }
  const pinoOptions = { level, ...(options.name === undefined ? {} : { name: options.name }) };
  return options.destination === undefined ? pino(pinoOptions) : pino(pinoOptions, options.destination);
}

const noop: LogFn = () => {};

/** A logger that drops everything: the default wherever a logger is optional. */
export const silentLogger: Logger = {
  trace: noop,
  debug: noop,
  info: noop,
  warn: noop,
  error: noop,
  fatal: noop,
  child: () => silentLogger,
};
