/**
 * Drivers are optional peer dependencies: an adapter imports its driver when it first connects,
 * never when its entry point is imported, so `patchbay/postgres` loads without `pg` and a missing
 * driver is a typed error at `open()` with the command that installs it.
 */
import { DriverMissingError } from "../core/errors.js";

/** What {@link driverLoader} needs to know about one driver package. */
export interface DriverSpec<T> {
  /** The package, e.g. `"pg"`. */
  driver: string;
  /** The versions the adapter works with, e.g. `">= 8.11"`. */
  range: string;
  /** Who needs it, for the message, e.g. `"the PostgreSQL store (patchbay/postgres)"`. */
  neededBy: string;
  /** The dynamic import, written in the adapter's own folder (`() => import("pg")`). */
  load: () => Promise<T>;
}

/** True when `e` says the package `name` itself could not be found (not one of its dependencies). */
function isMissing(e: unknown, name: string): boolean {
  const { code, message } = (e ?? {}) as { code?: unknown; message?: unknown };
  const notFound =
    code === "ERR_MODULE_NOT_FOUND" ||
    code === "MODULE_NOT_FOUND" ||
    (typeof message === "string" && /cannot find (package|module)/i.test(message));
  return notFound && typeof message === "string" && message.includes(`'${name}'`);
}

/**
 * A function that imports the driver once and returns it; while it is not installed, each call
 * rejects with {@link DriverMissingError} (`DRIVER_MISSING`, `hint: "npm install <driver>"`), so
 * a driver installed later is found by the next attempt.
 */
export function driverLoader<T>(spec: DriverSpec<T>): () => Promise<T> {
  let loaded: Promise<T> | undefined;
  return () =>
    (loaded ??= spec.load().catch((e: unknown) => {
      loaded = undefined;
      const hint = `npm install ${spec.driver}`;
      const why = isMissing(e, spec.driver)
        ? "which is not installed"
        : `which could not be loaded (${(e as Error)?.message ?? String(e)})`;
      throw new DriverMissingError(
        `${spec.neededBy} needs the package "${spec.driver}" (${spec.range}), ${why}: ${hint}`,
        spec.driver,
        hint,
        { cause: e },
      );
    }));
}
