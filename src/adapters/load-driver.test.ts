import { describe, expect, it, vi } from "vitest";
import { isPatchbayError } from "../core/errors.js";
import { driverLoader } from "./load-driver.js";

// A package that is not installed, named through a variable so the compiler does not look for it.
const absent = "patchbay-test-no-such-driver";

describe("driverLoader", () => {
  it("turns a driver that is not installed into DRIVER_MISSING with the npm command", async () => {
    const load = driverLoader({
      driver: absent,
      range: ">= 1",
      neededBy: "patchbay/example",
      load: () => import(absent),
    });
    const error: unknown = await load().catch((e: unknown) => e);
    expect(isPatchbayError(error, "DRIVER_MISSING")).toBe(true);
    if (!isPatchbayError(error, "DRIVER_MISSING")) return;
    expect(error.driver).toBe(absent);
    expect(error.hint).toBe(`npm install ${absent}`);
    expect(error.retryable).toBe(false);
    expect(error.message).toBe(
      `patchbay/example needs the package "${absent}" (>= 1), which is not installed: npm install ${absent}`,
    );
    expect(error.cause).toBeInstanceOf(Error);
  });

  it("says when an installed driver fails to load, keeping its error as the cause", async () => {
    const broken = new Error("Cannot find package 'some-dependency' imported from driver/index.js");
    const load = driverLoader({
      driver: "driver",
      range: ">= 1",
      neededBy: "patchbay/example",
      load: () => Promise.reject(broken),
    });
    const error: unknown = await load().catch((e: unknown) => e);
    expect(isPatchbayError(error, "DRIVER_MISSING")).toBe(true);
    expect((error as Error).message).toContain(`which could not be loaded (${broken.message})`);
    expect((error as Error).cause).toBe(broken);
  });

  it("imports once, and tries again after a failure", async () => {
    const module = { ok: true };
    const importer = vi.fn<() => Promise<typeof module>>().mockRejectedValueOnce(new Error("boom"));
    importer.mockResolvedValue(module);
    const load = driverLoader({ driver: "driver", range: ">= 1", neededBy: "x", load: importer });
    await expect(load()).rejects.toMatchObject({ code: "DRIVER_MISSING" });
    expect(await load()).toBe(module);
    expect(await load()).toBe(module);
    expect(importer).toHaveBeenCalledTimes(2);
  });
});
