import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { isPatchbayError } from "./errors.js";
import { createLogger, silentLogger, type Logger } from "./logger.js";

function capture() {
  const lines: Record<string, unknown>[] = [];
  return {
    lines,
    destination: { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) },
  };
}

describe("createLogger", () => {
  const saved = process.env.PATCHBAY_LOG_LEVEL;
  afterEach(() => {
    if (saved === undefined) delete process.env.PATCHBAY_LOG_LEVEL;
    else process.env.PATCHBAY_LOG_LEVEL = saved;
  });

  it("writes JSON lines with fields, message, name and child bindings", () => {
    const { lines, destination } = capture();
    const logger = createLogger({ name: "shop", level: "info", destination });
    logger.info({ orderId: "o-1" }, "order created");
    logger.child({ component: "relay" }).warn("lagging");
    logger.debug("not written at info");
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({ level: 30, name: "shop", orderId: "o-1", msg: "order created" });
    expect(lines[1]).toMatchObject({ level: 40, name: "shop", component: "relay", msg: "lagging" });
  });

  it("defaults to info, or the PATCHBAY_LOG_LEVEL environment variable", () => {
    delete process.env.PATCHBAY_LOG_LEVEL;
    const first = capture();
    createLogger({ destination: first.destination }).debug("hidden");
    expect(first.lines).toHaveLength(0);

    process.env.PATCHBAY_LOG_LEVEL = "DEBUG";
    const second = capture();
    createLogger({ destination: second.destination }).debug("shown");
    expect(second.lines).toMatchObject([{ level: 20, msg: "shown" }]);
  });

  it("rejects an unknown level with INVALID_ARGUMENT naming where it came from", () => {
    process.env.PATCHBAY_LOG_LEVEL = "loud";
    let caught: unknown;
    try {
      createLogger();
    } catch (e) {
      caught = e;
    }
    expect(isPatchbayError(caught, "INVALID_ARGUMENT")).toBe(true);
    expect((caught as { argument: string }).argument).toBe("PATCHBAY_LOG_LEVEL");
  });

  it("accepts a pino logger wherever a Logger is expected", () => {
    const { lines, destination } = capture();
    const logger: Logger = pino({ level: "trace" }, destination);
    logger.trace({ a: 1 }, "ok");
    expect(lines).toMatchObject([{ a: 1, msg: "ok" }]);
  });
});

describe("silentLogger", () => {
  it("accepts every call and returns itself as a child", () => {
    silentLogger.error(new Error("ignored"), "nothing happens");
    silentLogger.info("nothing");
    expect(silentLogger.child({ a: 1 })).toBe(silentLogger);
  });
});
