/**
 * Protocol answers raised as errors (400 no channel id, 403, 405, 409, 413, 507, ...). They carry
 * their status, a sentence for the body, a machine-readable `type` and any headers, and are written
 * directly by `answerError`. Every other error (a throwing resolver or hook, a broken store) goes to
 * the app's `next(err)`.
 */
import createError from 'http-errors';

// Symbol.for, not Symbol(): the `push-relay/redis` entry point is a separate bundle with its own copy of
// this module, and its stores' errors must still be recognised by the main entry's relay.
const PROTOCOL = Symbol.for('push-relay.protocolError');

export interface ProtocolError extends createError.HttpError {
  [PROTOCOL]: true;
  headers?: Record<string, string>;
}

export function protocolError(status: number, message: string, type: string, headers?: Record<string, string>): ProtocolError {
  const err = createError(status, message, { type, expose: true }) as ProtocolError;
  err[PROTOCOL] = true;
  if (headers) err.headers = headers;
  return err;
}

export function isProtocolError(err: unknown): err is ProtocolError {
  return typeof err === 'object' && err !== null && (err as Partial<ProtocolError>)[PROTOCOL] === true;
}

export const methodNotAllowed = (allow: string) =>
  protocolError(405, `push-relay: method not allowed here; allowed: ${allow}`, 'method.not.allowed', { Allow: allow });
