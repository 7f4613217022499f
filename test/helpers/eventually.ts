// Await a condition by polling, with a deadline: the tests' only way to wait (no fixed sleeps).

/**
 * The shortest deadline of any wait. A deadline is a hang guard, never a timing assertion (speed is
 * the benchmark's business), and the machine may be loaded: six watcher processes starting at once
 * on 2 busy cores took 25 s to print their first log line. So a wait fails after at least this long.
 */
export const MIN_GUARD_MS = Number(process.env.TEST_MIN_GUARD_MS ?? 90_000);

/**
 * Calls `fn` until it returns something other than false/undefined without throwing; returns that.
 * After the deadline (`timeoutMs`, at least MIN_GUARD_MS) rethrows the last error (or a timeout
 * error naming `what`).
 */
export async function eventually<T>(fn: () => T | Promise<T>, timeoutMs = 15_000, what = 'condition', intervalMs = 50): Promise<Exclude<T, false | undefined>> {
  timeoutMs = Math.max(timeoutMs, MIN_GUARD_MS);
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown = null;
  for (;;) {
    try {
      const value = await fn();
      if (value !== false && value !== undefined) return value as Exclude<T, false | undefined>;
      lastError = null;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      if (lastError instanceof Error) {
        lastError.message = `${what} not met within ${timeoutMs} ms: ${lastError.message}`;
        throw lastError;
      }
      throw new Error(`${what} not met within ${timeoutMs} ms`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
