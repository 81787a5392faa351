/**
 * Who runs in this process: deliveries seen for the first time run side by side; a redelivered
 * one (a suspect: its last delivery ended without a settle, most likely because its process died)
 * runs alone, once every other running delivery of the process has finished, and no new one
 * starts or is pulled meanwhile. So when a process dies during a suspect's run, that suspect is
 * what killed it, and the messages merely in flight beside a poison message are not blamed.
 *
 * One per process (every consumer of every NATS transport shares it): a crash cuts them all.
 */
export class RunGate {
  private running = 0;
  private alone = false;
  private suspects = 0;
  private waiters = new Set<() => void>();

  /** A suspect waits to run or runs: pull nothing new (it would only wait). */
  get closed(): boolean {
    return this.alone || this.suspects > 0;
  }

  /** Resolves at the next change (or {@link wake}). */
  changed(): Promise<void> {
    return new Promise((resolve) => this.waiters.add(resolve));
  }

  /** Wakes every waiter (they look again: a consumer stopping, a wait running out). */
  wake(): void {
    const waiters = [...this.waiters];
    this.waiters.clear();
    for (const w of waiters) w();
  }

  /**
   * Runs beside the others once no suspect waits or runs. Resolves to the release (idempotent),
   * or undefined when `stillWanted` turned false meanwhile.
   */
  async beside(stillWanted: () => boolean): Promise<(() => void) | undefined> {
    while (this.closed) {
      if (!stillWanted()) return undefined;
      await this.changed();
    }
    if (!stillWanted()) return undefined;
    this.running++;
    return this.once(() => this.running--);
  }

  /**
   * Runs alone once the others finished. After `maxWaitMs` it stops waiting for them: the release
   * comes with `alone: false` (the run is not alone, a crash during it proves nothing).
   * Undefined when `stillWanted` turned false meanwhile.
   */
  async apart(
    stillWanted: () => boolean,
    maxWaitMs: number,
  ): Promise<{ alone: boolean; release: () => void } | undefined> {
    const deadline = Date.now() + maxWaitMs;
    this.suspects++;
    try {
      while (this.alone || this.running > 0) {
        if (!stillWanted()) return undefined;
        const left = deadline - Date.now();
        if (left <= 0) {
          if (this.alone) {
            // Another suspect runs alone: it will be done (or past its own cap) soon.
            await this.changed();
            continue;
          }
          this.running++;
          return { alone: false, release: this.once(() => this.running--) };
        }
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          this.changed(),
          new Promise<void>((r) => {
            timer = setTimeout(r, left);
          }),
        ]);
        clearTimeout(timer);
      }
      if (!stillWanted()) return undefined;
      this.alone = true;
      return { alone: true, release: this.once(() => (this.alone = false)) };
    } finally {
      this.suspects--;
      this.wake();
    }
  }

  private once(fn: () => void): () => void {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      fn();
      this.wake();
    };
  }
}

/** The process's gate. */
export const runGate = new RunGate();
