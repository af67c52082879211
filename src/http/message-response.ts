/**
 * The 200 that carries a message. Its header block is built once per message (and default content
 * type) and shared by every subscriber it goes to, as is the body Buffer: fan-out writes, it does not
 * rebuild.
 */
import type { ServerResponse } from 'node:http';
import { cursorHeaders } from '../cursor.js';
import type { StoredMessage } from '../store/channel-store.js';

/** Flat `[name, value, name, value, ...]`, the form `writeHead` takes without building an object. */
export type RawHeaders = string[];

const cache = new WeakMap<StoredMessage, Map<string, RawHeaders>>();

/** Headers of the 200 for `message`: Last-Modified, Etag, Content-Type, Vary, Cache-Control, Content-Length. */
let lastMessage: StoredMessage | undefined;
let lastKey = '';
let lastHeaders: RawHeaders = [];

export function messageHeaders(message: StoredMessage, defaultContentType: string | undefined): RawHeaders {
  const key = message.contentType ? '' : (defaultContentType ?? '');
  // A fan-out asks for the same message thousands of times in a row.
  if (message === lastMessage && key === lastKey) return lastHeaders;
  const headers = lookupHeaders(message, key, defaultContentType);
  lastMessage = message;
  lastKey = key;
  lastHeaders = headers;
  return headers;
}

function lookupHeaders(message: StoredMessage, key: string, defaultContentType: string | undefined): RawHeaders {
  let byDefault = cache.get(message);
  const hit = byDefault?.get(key);
  if (hit) return hit;
  const { lastModified, etag } = cursorHeaders(message.id);
  const contentType = message.contentType ?? defaultContentType;
  const headers: RawHeaders = ['Last-Modified', lastModified, 'Etag', etag];
  if (contentType) headers.push('Content-Type', contentType);
  headers.push(
    'Vary', 'If-None-Match, If-Modified-Since',
    // no-transform: compression middleware and proxies must pass messages through untouched.
    'Cache-Control', 'no-cache, no-transform',
    'Content-Length', String(message.data.length),
  );
  if (!byDefault) cache.set(message, (byDefault = new Map()));
  byDefault.set(key, headers);
  return headers;
}

/** The loss signal of a long-poll answer (docs/transports.md). */
export const MISSED_HEADER = 'X-Push-Relay-Missed';

/**
 * Answers with `message`; the caller answers each request once. `missed`: the client's cursor was
 * older than the message before this one (it lost some).
 */
export function sendMessage(res: ServerResponse, message: StoredMessage, defaultContentType: string | undefined, missed = false): void {
  // `destroyed` is an own field; `headersSent` would be a getter through Express's swapped prototype
  // chain, which costs microseconds per delivery there.
  if (res.destroyed) return;
  const shared = messageHeaders(message, defaultContentType);
  // A copy for this one answer: the shared array goes to every other subscriber of the message.
  res.writeHead(200, missed ? [...shared, MISSED_HEADER, '1'] : shared);
  res.end(message.data);
}
