/**
 * Values that may come now or later. The request path answers at once when it can (MemoryStore,
 * resolvers and authorize hooks that return plain values): a Promise, and the turn of the event loop
 * it waits, are paid only where something is really awaited.
 */

export type MaybePromise<T> = T | Promise<T>;

/** Whether `value` is a Promise or another thenable (what a hook or a store may return). */
export function isPromiseLike<T>(value: T | PromiseLike<T>): value is PromiseLike<T> {
  return value !== null && typeof value === 'object' && typeof (value as { then?: unknown }).then === 'function';
}
