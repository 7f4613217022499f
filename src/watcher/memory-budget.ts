// One memory budget for the watcher process, in bytes of object JSON: list items read and parsed
// but not yet committed, objects waiting in the batcher and the batch being written. Lists wait
// for room (their socket stops being read, so the API server is pushed back); the batcher never
// waits here (its own BATCH_MAX_BYTES bounds it) but its bytes count, so lists leave it room.
// Deadlock-free by construction: whoever waits holds nothing that only a waiter could release.

interface Waiter {
  bytes: number;
  resolve: () => void;
  reject: (err: unknown) => void;
}

export class MemoryBudget {
  private usedBytes = 0;
  private peak = 0;
  private readonly queue: Waiter[] = [];

  constructor(readonly limitBytes: number) {}

  get used(): number {
    return this.usedBytes;
  }

  /** Most bytes held at once since the start (for /metrics and the benchmark). */
  get peakBytes(): number {
    return this.peak;
  }

  /** Room for `bytes` now? (Waiters first: no overtaking.) A request over the whole limit fits an idle budget. */
  private fits(bytes: number): boolean {
    return this.usedBytes + bytes <= this.limitBytes || this.usedBytes === 0;
  }

  /** Takes `bytes` if they fit now, without waiting. */
  tryAcquire(bytes: number): boolean {
    if (this.queue.length > 0 || !this.fits(bytes)) return false;
    this.add(bytes);
    return true;
  }

  /** Waits (first come, first served) until `bytes` fit. Rejects if `signal` aborts first. */
  acquire(bytes: number, signal?: AbortSignal): Promise<void> {
    if (this.tryAcquire(bytes)) return Promise.resolve();
    if (signal?.aborted) return Promise.reject(signal.reason ?? new Error('aborted'));
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = { bytes, resolve, reject };
      const onAbort = (): void => {
        const i = this.queue.indexOf(waiter);
        if (i >= 0) this.queue.splice(i, 1);
        reject(signal?.reason ?? new Error('aborted'));
        this.wake();
      };
      waiter.resolve = () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.queue.push(waiter);
    });
  }

  /** Counts bytes that are already held (the batcher's): never waits, may go over the limit. */
  force(bytes: number): void {
    this.add(bytes);
  }

  release(bytes: number): void {
    this.usedBytes = Math.max(0, this.usedBytes - bytes);
    this.wake();
  }

  private add(bytes: number): void {
    this.usedBytes += bytes;
    if (this.usedBytes > this.peak) this.peak = this.usedBytes;
  }

  private wake(): void {
    while (this.queue.length > 0 && this.fits(this.queue[0]!.bytes)) {
      const w = this.queue.shift()!;
      this.add(w.bytes);
      w.resolve();
    }
  }
}
