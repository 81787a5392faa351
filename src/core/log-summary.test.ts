import { describe, expect, it } from "vitest";
import { FakeClock } from "../testing/fake-clock.js";
import { summarizedWarn } from "./log-summary.js";
import { createLogger } from "./logger.js";

/** A debug-level logger whose JSON lines are kept. */
function recordingLogger() {
  const lines: Array<{ level: number; msg: string; [field: string]: unknown }> = [];
  const logger = createLogger({
    level: "debug",
    destination: { write: (line: string) => void lines.push(JSON.parse(line) as (typeof lines)[number]) },
  });
  const warns = () => lines.filter((l) => l.level === 40);
  const debugs = () => lines.filter((l) => l.level === 20);
  return { logger, lines, warns, debugs };
}

const MSG = "step refused by an open circuit breaker";

describe("summarizedWarn", () => {
  it("1000 occurrences in one interval: one warn line, the rest at debug; the next interval's warn counts them", async () => {
    const clock = new FakeClock();
    const { logger, lines, warns, debugs } = recordingLogger();
    const refused = summarizedWarn(logger, clock);
    const started = clock.now();
    for (let n = 1; n <= 1000; n++) {
      refused("pay/charge", { attempt: n }, MSG);
      await clock.advance(9); // 1000 of them over 9 s
    }
    expect(warns()).toEqual([expect.objectContaining({ msg: MSG, attempt: 1, count: 1 })]);
    expect(warns()[0]).not.toHaveProperty("since");
    expect(debugs()).toHaveLength(999);
    expect(debugs()[998]).toMatchObject({ msg: MSG, attempt: 1000 });
    expect(lines).toHaveLength(1000); // every occurrence logged once

    await clock.advance("1s"); // 10 s after the warn line
    refused("pay/charge", { attempt: 1001 }, MSG);
    expect(warns()).toHaveLength(2);
    expect(warns()[1]).toMatchObject({
      msg: MSG,
      attempt: 1001,
      count: 1000, // the 999 at debug since the last warn line, and this one
      since: new Date(started).toISOString(),
    });
    refused("pay/charge", { attempt: 1002 }, MSG);
    expect(warns()).toHaveLength(2);
  });

  it("keeps an interval per key, on the clock", async () => {
    const clock = new FakeClock();
    const { logger, warns } = recordingLogger();
    const refused = summarizedWarn(logger, clock, 1000);
    refused("a", {}, MSG);
    refused("b", {}, MSG);
    refused("a", {}, MSG);
    expect(warns().map((l) => l.count)).toEqual([1, 1]);
    await clock.advance(999);
    refused("a", {}, MSG);
    expect(warns()).toHaveLength(2);
    await clock.advance(1);
    refused("a", {}, MSG);
    refused("b", {}, MSG);
    expect(warns().map((l) => l.count)).toEqual([1, 1, 3, 1]);
  });
});
