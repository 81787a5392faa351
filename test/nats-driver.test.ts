/**
 * The NATS transport's drivers: when `@nats-io/transport-node` or `@nats-io/jetstream` cannot be
 * found, connecting fails with a typed `DRIVER_MISSING` whose hint installs both packages. The
 * absence is simulated by a loader failing as Node's resolver does (the real absence, in an app
 * without the packages, is checked by `.ci/pack-check`).
 */
import { describe, expect, it } from "vitest";
import {
  loadJetstream,
  loadNats,
  loadNatsDrivers,
  NATS_INSTALL_HINT,
  type JetstreamModule,
  type NatsModule,
} from "../src/adapters/nats/load.js";
import { driverLoader } from "../src/adapters/load-driver.js";
import { isPatchbayError } from "../src/core/errors.js";

/** A loader for `name` that fails the way `import()` does when the package is not installed. */
function absent<T>(name: string) {
  return driverLoader<T>({
    driver: name,
    range: ">= 3.0",
    neededBy: "the NATS JetStream transport (patchbay/nats)",
    load: () =>
      Promise.reject(
        Object.assign(
          new Error(`Cannot find package '${name}' imported from /app/node_modules/patchbay/dist/x.js`),
          {
            code: "ERR_MODULE_NOT_FOUND",
          },
        ),
      ),
  });
}

async function failure(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => {
      throw new Error("expected a failure");
    },
    (e: unknown) => e,
  );
}

describe("NATS driver loading", () => {
  it("loads both installed packages", async () => {
    const [natsModule, jsModule] = await loadNatsDrivers();
    expect(typeof natsModule.connect).toBe("function");
    expect(typeof jsModule.jetstream).toBe("function");
  });

  it.each([
    ["neither package", true, true, "@nats-io/transport-node"],
    ["@nats-io/transport-node", true, false, "@nats-io/transport-node"],
    ["@nats-io/jetstream", false, true, "@nats-io/jetstream"],
  ])("without %s: DRIVER_MISSING naming both packages", async (_what, noNats, noJs, driver) => {
    const e = await failure(
      loadNatsDrivers({
        nats: noNats ? absent<NatsModule>("@nats-io/transport-node") : loadNats,
        jetstream: noJs ? absent<JetstreamModule>("@nats-io/jetstream") : loadJetstream,
      }),
    );
    expect(isPatchbayError(e, "DRIVER_MISSING")).toBe(true);
    if (!isPatchbayError(e, "DRIVER_MISSING")) return;
    expect(e.driver).toBe(driver);
    expect(e.hint).toBe(NATS_INSTALL_HINT);
    expect(e.hint).toBe("npm install @nats-io/transport-node @nats-io/jetstream");
    expect(e.message).toContain(e.hint);
    expect(e.message).toContain("patchbay/nats");
    expect(e.retryable).toBe(false);
  });

  it("passes a failure that is not a missing package through unchanged", async () => {
    const boom = new Error("boom");
    const e = await failure(loadNatsDrivers({ nats: () => Promise.reject(boom), jetstream: loadJetstream }));
    expect(e).toBe(boom);
  });
});
