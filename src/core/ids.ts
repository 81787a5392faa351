import { randomFillSync } from "node:crypto";
import { systemClock, type Clock } from "./clock.js";
import { InvalidArgumentError } from "./errors.js";

/**
 * Per-clock generator state. Ids from one clock are strictly increasing; keying by clock keeps a
 * {@link FakeClock} in tests from pushing the system clock's ids into the future (or vice versa).
 */
interface V7State {
  /** Timestamp (ms) of the last id; may run ahead of the clock after a counter rollover. */
  ms: number;
  /** The 12-bit `rand_a` counter of the last id. */
  counter: number;
}

const states = new WeakMap<Clock, V7State>();

const POOL_SIZE = 4096;
const pool = new Uint8Array(POOL_SIZE);
let poolOffset = POOL_SIZE;

/** `n` cryptographically random bytes, served from a pool refilled in bulk (much faster per id). */
function randomBytes(n: number): Uint8Array {
  if (poolOffset + n > POOL_SIZE) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const out = pool.subarray(poolOffset, poolOffset + n);
  poolOffset += n;
  return out;
}

/** A random counter seed in 0..2047: the top bit stays 0 so a millisecond has room for >= 2048 ids. */
function seedCounter(): number {
  const b = randomBytes(2);
  return (((b[0] as number) << 8) | (b[1] as number)) & 0x7ff;
}

const HEX: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

/**
 * A new RFC 9562 UUIDv7: 48-bit Unix-ms timestamp, version 7, a 12-bit counter in `rand_a`, variant
 * `10`, 62 random bits.
 *
 * Ids from the same clock are strictly increasing, so they sort (as strings, too) in generation
 * order: within one millisecond the counter (seeded randomly per millisecond) increments; when it
 * overflows, the timestamp is moved 1 ms ahead of the clock (RFC 9562 §6.2, counter rollover).
 * If the clock goes backwards the last timestamp is kept, so order still holds.
 *
 * @example const id = uuidv7(); // "01920a1e-8f3b-7c41-9a2d-5e6f7a8b9c0d"
 */
export function uuidv7(clock: Clock = systemClock): string {
  const now = Math.floor(clock.now());
  if (!Number.isFinite(now) || now < 0 || now >= 2 ** 48) {
    throw new InvalidArgumentError(`clock.now() must be ms since the epoch in 0..2^48, got ${now}`, "clock");
  }
  let state = states.get(clock);
  if (state === undefined) {
    state = { ms: now, counter: seedCounter() };
    states.set(clock, state);
  } else if (now > state.ms) {
    state.ms = now;
    state.counter = seedCounter();
  } else if (state.counter < 0xfff) {
    state.counter += 1;
  } else {
    state.ms += 1;
    state.counter = seedCounter();
  }
  return format(state.ms, state.counter, randomBytes(8));
}

function format(ms: number, counter: number, rand: Uint8Array): string {
  const high = Math.floor(ms / 2 ** 16); // top 32 bits of the 48-bit timestamp
  const low = ms % 2 ** 16;
  const b = (i: number) => HEX[rand[i] as number] as string;
  return (
    high.toString(16).padStart(8, "0") +
    "-" +
    low.toString(16).padStart(4, "0") +
    "-" +
    (0x7000 | counter).toString(16) +
    "-" +
    HEX[0x80 | ((rand[0] as number) & 0x3f)] +
    b(1) +
    "-" +
    b(2) +
    b(3) +
    b(4) +
    b(5) +
    b(6) +
    b(7)
  );
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * True when `s` is a UUID in its canonical 8-4-4-4-12 hex form (any case). With `version`, also
 * checks the version nibble and the RFC 9562 variant (`10xx`).
 *
 * @example isUuid(uuidv7(), 7) === true; isUuid("nope") === false
 */
export function isUuid(s: unknown, version?: number): s is string {
  if (typeof s !== "string" || !UUID.test(s)) return false;
  if (version === undefined) return true;
  return parseInt(s.charAt(14), 16) === version && /[89ab]/i.test(s.charAt(19));
}

/**
 * The timestamp (ms since the epoch) inside a UUIDv7. Throws {@link InvalidArgumentError} when
 * `id` is not a UUIDv7.
 *
 * @example uuidv7Time(uuidv7(clock)) === clock.now()
 */
export function uuidv7Time(id: string): number {
  if (!isUuid(id, 7)) throw new InvalidArgumentError(`not a UUIDv7: ${JSON.stringify(id)}`, "id");
  return parseInt(id.slice(0, 8) + id.slice(9, 13), 16);
}
