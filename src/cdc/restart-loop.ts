import { isPatchbayError } from "../core/errors.js";
import type { Logger } from "../core/logger.js";
import { errorInfo } from "../sync/json.js";

/**
 * Runs `run` until `signal` aborts, again `restartMs` after each retryable failure (a dropped
 * replication connection). Resolves with the first non-retryable error, or `undefined` once
 * stopped. An error that is not a `PatchbayError` (a decoder fault) counts as retryable.
 */
export async function runRestarting(
  run: (options: { signal: AbortSignal }) => Promise<unknown>,
  options: { signal: AbortSignal; restartMs: number; logger: Logger; what: string },
): Promise<unknown> {
  const { signal, restartMs, logger, what } = options;
  while (!signal.aborted) {
    try {
      await run({ signal });
    } catch (e) {
      const retryable = isPatchbayError(e) ? e.retryable : true;
      logger.error({ error: errorInfo(e), retryable }, `${what}: run failed`);
      if (!retryable) return e;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, restartMs);
        signal.addEventListener("abort", () => (clearTimeout(t), resolve()), { once: true });
      });
    }
  }
  return undefined;
}
