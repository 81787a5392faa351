import { describe, expect, it } from "vitest";
import type { Clock } from "./clock.js";
import { isPatchbayError } from "./errors.js";
import { isUuid, uuidv7, uuidv7Time } from "./ids.js";

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new Error("expected a throw");
}

const fixedClock = (ms: number): Clock => ({ now: () => ms, sleep: () => Promise.resolve() });

describe("uuidv7", () => {
  it("generates 10,000 unique ids in a tight loop that sort in generation order", () => {
    const ids: string[] = [];
    for (let i = 0; i < 10_000; i++) ids.push(uuidv7());
    expect(new Set(ids).size).toBe(10_000);
    expect([...ids].sort()).toEqual(ids);
    for (let i = 1; i < ids.length; i++) expect((ids[i] as string) > (ids[i - 1] as string)).toBe(true);
  });

  it("sets version 7 and variant 10 on every id", () => {
    for (let i = 0; i < 1_000; i++) {
      const id = uuidv7();
      expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      expect(isUuid(id, 7)).toBe(true);
    }
  });

  it("encodes the clock's millisecond as the 48-bit timestamp", () => {
    const ms = Date.UTC(2025, 5, 15, 12, 30, 45, 123);
    expect(uuidv7Time(uuidv7(fixedClock(ms)))).toBe(ms);
    expect(uuidv7(fixedClock(0x0123456789ab)).slice(0, 13)).toBe("01234567-89ab");
  });

  it("stays ordered within one frozen millisecond by moving 1 ms ahead when the counter overflows", () => {
    const ms = Date.UTC(2025, 0, 1);
    const clock = fixedClock(ms);
    const ids = Array.from({ length: 10_000 }, () => uuidv7(clock));
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(10_000);
    const last = uuidv7Time(ids.at(-1) as string);
    expect(last).toBeGreaterThan(ms); // > 4096 ids cannot fit in one millisecond's counter
    expect(last).toBeLessThan(ms + 10);
  });

  it("keeps order when the clock goes backwards", () => {
    let now = Date.UTC(2025, 0, 1, 0, 0, 10);
    const clock: Clock = { now: () => now, sleep: () => Promise.resolve() };
    const before = uuidv7(clock);
    now -= 5_000;
    const after = uuidv7(clock);
    expect(after > before).toBe(true);
  });

  it("rejects a clock outside the 48-bit range with INVALID_ARGUMENT", () => {
    expect(
      isPatchbayError(
        thrown(() => uuidv7(fixedClock(-1))),
        "INVALID_ARGUMENT",
      ),
    ).toBe(true);
    expect(
      isPatchbayError(
        thrown(() => uuidv7(fixedClock(2 ** 48))),
        "INVALID_ARGUMENT",
      ),
    ).toBe(true);
  });
});

describe("isUuid", () => {
  it("accepts canonical UUIDs in either case and checks the version when asked", () => {
    expect(isUuid("550e8400-e29b-41d4-a716-446655440000")).toBe(true);
    expect(isUuid("550E8400-E29B-41D4-A716-446655440000", 4)).toBe(true);
    expect(isUuid("550e8400-e29b-41d4-a716-446655440000", 7)).toBe(false);
    expect(isUuid("550e8400e29b41d4a716446655440000")).toBe(false);
    expect(isUuid("not-a-uuid")).toBe(false);
    expect(isUuid(42)).toBe(false);
  });
});

describe("uuidv7Time", () => {
  it("rejects ids that are not UUIDv7 with INVALID_ARGUMENT", () => {
    const v4 = thrown(() => uuidv7Time("550e8400-e29b-41d4-a716-446655440000"));
    expect(isPatchbayError(v4, "INVALID_ARGUMENT")).toBe(true);
    expect(
      isPatchbayError(
        thrown(() => uuidv7Time("nope")),
        "INVALID_ARGUMENT",
      ),
    ).toBe(true);
  });
});
