/**
 * Calls `fn` and returns its outcome as a promise: a synchronous throw becomes a rejection, a
 * returned promise is passed on as it is (no extra promise or turn). For wrappers on hot paths
 * that would otherwise be `async` only to catch a synchronous throw. Internal.
 */
export function invoke<T>(fn: () => T | PromiseLike<T>): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (e) {
    // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- the caller's own error, passed through
    return Promise.reject(e);
  }
}
