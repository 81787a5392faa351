/**
 * The idle wait of a polling loop that can be told there is work: `sleep(ms)` resolves after
 * `ms`, or at once when `wake()` is called during it. A `wake()` with no sleep in progress is a
 * no-op (the loop is busy and will look for work anyway).
 */
export function wakeableSleep() {
  let wakeUp: (() => void) | undefined;
  return {
    wake(): void {
      wakeUp?.();
    },
    sleep(ms: number): Promise<void> {
      return new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          wakeUp = undefined;
          resolve();
        };
        const timer = setTimeout(done, ms);
        wakeUp = done;
      });
    },
  };
}
