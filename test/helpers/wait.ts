/** Waiting for things in tests: for an event or for a condition, always with a deadline. */

/** Polls `check` until it returns a value other than undefined/false; fails after `timeout` ms. */
export async function waitFor<T>(what: string, check: () => T | undefined | false | Promise<T | undefined | false>, timeout = 5000): Promise<T> {
  // performance.now(): a test that mocks Date still gets its deadline.
  const deadline = performance.now() + timeout;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      last = err;
    }
    if (performance.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Resolves when the wall clock enters its next whole second (plus a margin), for tests about tags. */
export async function nextSecond(margin = 20): Promise<number> {
  const now = Date.now();
  const target = (Math.floor(now / 1000) + 1) * 1000 + margin;
  await new Promise((r) => setTimeout(r, target - now));
  return Math.floor(Date.now() / 1000);
}

/** Rejects if `promise` is not settled within `ms`, naming `what`. */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
    }),
  ]);
}
