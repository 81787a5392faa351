/**
 * The core of Patchbay: errors, durations, the clock, ids, the CloudEvents envelope, event
 * contracts with schemas and versions, and logging. Imports no driver.
 */
export * from "./errors.js";
export * from "./duration.js";
export * from "./clock.js";
export * from "./ids.js";
export * from "./envelope.js";
export * from "./schema.js";
export * from "./events.js";
export * from "./logger.js";
export * from "./lifecycle.js";
