import { randomBytes } from "node:crypto";
import { InvalidArgumentError } from "../core/errors.js";

/** The Standard Webhooks secret prefix. */
export const SECRET_PREFIX = "whsec_";
const MIN_BYTES = 24;
const MAX_BYTES = 64;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/**
 * A new endpoint secret in the Standard Webhooks format: `whsec_` + base64 of `bytes` random
 * bytes (24–64; default 32).
 *
 * @example const secret = generateSecret(); // "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw..."
 */
export function generateSecret(bytes = 32): string {
  if (!Number.isInteger(bytes) || bytes < MIN_BYTES || bytes > MAX_BYTES) {
    throw new InvalidArgumentError(
      `a webhook secret has ${MIN_BYTES} to ${MAX_BYTES} random bytes, got ${bytes}`,
      "bytes",
    );
  }
  return SECRET_PREFIX + randomBytes(bytes).toString("base64");
}

/**
 * The HMAC key of a Standard Webhooks secret: the bytes after `whsec_`, base64-decoded (a secret
 * without the prefix is read as base64 too, as the reference libraries do). Throws
 * {@link InvalidArgumentError} for anything else, so a typo never signs with a wrong key.
 */
export function secretKey(secret: string, argument = "secret"): Buffer {
  if (typeof secret !== "string") throw new InvalidArgumentError(`${argument} must be a string`, argument);
  const body = secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret;
  if (body.length === 0 || body.length % 4 !== 0 || !BASE64.test(body)) {
    throw new InvalidArgumentError(
      `${argument} must be "whsec_" followed by base64 (the Standard Webhooks format)`,
      argument,
    );
  }
  return Buffer.from(body, "base64");
}

/**
 * Checks a secret given for an endpoint: the Standard Webhooks format with 24–64 key bytes.
 * Returns it unchanged.
 */
export function assertEndpointSecret(secret: string, argument = "secret"): string {
  if (typeof secret !== "string" || !secret.startsWith(SECRET_PREFIX)) {
    throw new InvalidArgumentError(`${argument} must start with "${SECRET_PREFIX}"`, argument);
  }
  const key = secretKey(secret, argument);
  if (key.length < MIN_BYTES || key.length > MAX_BYTES) {
    throw new InvalidArgumentError(
      `${argument} must hold ${MIN_BYTES} to ${MAX_BYTES} bytes of key, got ${key.length}`,
      argument,
    );
  }
  return secret;
}
