// Await a condition by polling, with a deadline: the tests' only way to wait (no fixed sleeps).

/**
 * Calls `fn` until it returns something other than false/undefined without throwing; returns that.
 * After `timeoutMs` rethrows the last error (or a timeout error naming `what`).
 */
export async function eventually<T>(fn: () => T | Promise<T>, timeoutMs = 15_000, what = 'condition', intervalMs = 50): Promise<Exclude<T, false | undefined>> {
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
