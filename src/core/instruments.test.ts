import { afterEach, describe, expect, it } from "vitest";
import { measure, measuring, onMeasurement, statusClass } from "./instruments.js";

describe("measurements", () => {
  const stops: Array<() => void> = [];
  afterEach(() => {
    for (const stop of stops.splice(0)) stop();
  });

  it("reach every listener until it stops listening, and a throwing listener harms no one", () => {
    const seen: string[] = [];
    stops.push(
      onMeasurement(() => {
        throw new Error("broken exporter");
      }),
    );
    const stop = onMeasurement((name, value, labels) =>
      seen.push(`${name} ${value} ${JSON.stringify(labels)}`),
    );
    expect(measuring()).toBe(true);
    measure("bus.delivered", 1, { group: "billing" });
    stop();
    measure("bus.delivered", 1, { group: "billing" });
    expect(seen).toEqual(['bus.delivered 1 {"group":"billing"}']);
  });

  it("name HTTP status classes, and 'none' when there was no response", () => {
    expect([200, 301, 404, 503, undefined, 42].map(statusClass)).toEqual([
      "2xx",
      "3xx",
      "4xx",
      "5xx",
      "none",
      "none",
    ]);
  });
});
