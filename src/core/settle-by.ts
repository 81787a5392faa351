/**
 * Waits for `work`, but not past `deadline` (ms since the epoch): resolves `true` when it
 * settled in time (rejecting with its error if it failed), `false` when the deadline came first.
 * Work still running then goes on unwatched: give it its own failure handling. For `stop()`s
 * bounded by one timeout across several parts. Internal.
 */
export async function settleBy(work: Promise<unknown>, deadline: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => {
    timer = setTimeout(resolve, Math.max(0, deadline - Date.now()), false);
  });
  try {
    return await Promise.race([work.then(() => true as const), late]);
  } finally {
    clearTimeout(timer);
  }
}
