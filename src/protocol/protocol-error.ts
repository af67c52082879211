/**
 * The error type of protocol answers (answers.ts builds every one): status, a sentence for the body,
 * a machine-readable `type` and any headers. `answerError` writes them directly; every other error
 * (a throwing resolver or hook, a broken store) goes to the app's `next(err)`.
 */
import createError from 'http-errors';

// Symbol.for, not Symbol(): the `push-relay/redis` entry point is a separate bundle with its own copy of
// this module, and its stores' errors must still be recognised by the main entry's relay.
const PROTOCOL = Symbol.for('push-relay.protocolError');

/** An `http-errors` error (its own type is not part of push-relay's published types). */
export interface ProtocolError extends Error {
  readonly [PROTOCOL]: true;
  readonly status: number;
  readonly statusCode: number;
  /** Machine-readable, e.g. `channel.id.missing`. */
  readonly type: string;
  /** The message is safe to show to the client (always true). */
  readonly expose: boolean;
  readonly headers?: Record<string, string>;
}

export function protocolError(status: number, message: string, type: string, headers?: Record<string, string>): ProtocolError {
  return Object.assign(createError(status, message, { type, expose: true }), { [PROTOCOL]: true as const }, headers ? { headers } : {}) as ProtocolError;
}

export function isProtocolError(err: unknown): err is ProtocolError {
  return typeof err === 'object' && err !== null && (err as Partial<ProtocolError>)[PROTOCOL] === true;
}
