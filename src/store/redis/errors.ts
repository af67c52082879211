/**
 * Redis failures as protocol answers: an unreachable (or too slow) Redis is 503 with a clear body and
 * Retry-After, Redis out of memory is 507. Anything else (a bug) stays as it is and reaches next(err).
 */
import { storeFull, storeUnavailable } from '../../protocol/answers.js';

/** Reply prefixes meaning "this Redis cannot serve now, retry". */
const UNAVAILABLE_REPLIES = ['LOADING', 'MASTERDOWN', 'READONLY', 'TRYAGAIN', 'CLUSTERDOWN', 'BUSY'];
/** node-redis error classes meaning the connection is not there. */
const UNAVAILABLE_ERRORS = new Set([
  'ClientOfflineError',
  'ClientClosedError',
  'SocketClosedUnexpectedlyError',
  'ConnectionTimeoutError',
  'SocketTimeoutError',
  'TimeoutError',
  'CommandTimeoutDuringMaintenanceError',
  'SocketTimeoutDuringMaintenanceError',
  'ReconnectStrategyError',
  'DisconnectsClientError',
  'AbortError',
  // sentinel-adapter.ts
  'SentinelSwitchError',
]);

export const unavailable = storeUnavailable;

export function toStoreError(err: unknown): unknown {
  if (!(err instanceof Error)) return err;
  const message = err.message;
  if (message.startsWith('OOM')) {
    return storeFull(`Redis is out of memory (maxmemory reached): ${message}`);
  }
  if (UNAVAILABLE_ERRORS.has(err.constructor.name) || UNAVAILABLE_REPLIES.some((p) => message.startsWith(p)) || isSocketError(err)) {
    return unavailable(message || err.constructor.name);
  }
  return err;
}

function isSocketError(err: Error): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return typeof code === 'string' && /^(ECONN|EPIPE|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN)/.test(code);
}
