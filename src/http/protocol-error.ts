/**
 * Protocol answers raised as errors (400 no channel id, 403, 405, 409, 413, 507, ...). They carry
 * their status, a sentence for the body, a machine-readable `type` and any headers, and are written
 * directly by `answerError`. Every other error (a throwing resolver or hook, a broken store) goes to
 * the app's `next(err)`.
 */
import createError from 'http-errors';

const PROTOCOL = Symbol('push-relay protocol answer');

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
