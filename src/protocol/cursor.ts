/**
 * The subscriber cursor codec: `If-Modified-Since` + `If-None-Match` <-> message id, and the
 * `Last-Modified` + `Etag` a 200 carries.
 *
 * Deliberately not `etag`/`fresh`: those hash content and honour `Cache-Control`, while the protocol
 * uses the two headers as a position in the channel's queue and must ignore caching directives.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { compareIds, parseId, WHOLE_SECOND, type Cursor, type MessageId } from './message-id.js';

/**
 * Reads the cursor of a subscriber request (docs/protocol.md):
 * - no or invalid `If-Modified-Since`: undefined (the oldest stored message is wanted);
 * - `If-Modified-Since: T` and `If-None-Match: tag`: the message `(T, tag)` was the last one received;
 *   the tag may be quoted or `W/`-prefixed, a list keeps its first entry, anything else counts as 0;
 * - `If-Modified-Since: T` alone: every message of second T was received (HTTP's own meaning).
 */
export function readCursor(ifModifiedSince: string | undefined, ifNoneMatch: string | string[] | undefined): Cursor | undefined {
  if (!ifModifiedSince) return undefined;
  const time = parseHttpSecond(ifModifiedSince);
  if (time < 0) return undefined;
  if (ifNoneMatch === undefined) return { time, tag: WHOLE_SECOND };
  return { time, tag: readTag(Array.isArray(ifNoneMatch) ? (ifNoneMatch[0] ?? '') : ifNoneMatch) };
}

let lastDateText = '';
let lastDateSecond = -1;

/**
 * The unix second of an HTTP date, -1 if it is not one. The last one is remembered: the subscribers
 * of a channel come back with the same `If-Modified-Since`, thousands of times a second.
 */
function parseHttpSecond(text: string): number {
  if (text !== lastDateText) {
    const ms = Date.parse(text);
    lastDateSecond = Number.isFinite(ms) && ms >= 0 ? Math.floor(ms / 1000) : -1;
    lastDateText = text;
  }
  return lastDateSecond;
}

/** `0`, `"0"`, `W/"0"`, `"0", "1"` -> 0; garbage -> 0; huge -> clamped. */
export function readTag(value: string): number {
  let s = value.trim();
  const comma = s.indexOf(',');
  if (comma >= 0) s = s.slice(0, comma).trim();
  if (s.startsWith('W/') || s.startsWith('w/')) s = s.slice(2);
  if (s.length >= 2 && s.startsWith('"') && s.endsWith('"')) s = s.slice(1, -1);
  if (!/^\d{1,20}$/.test(s)) return 0;
  return Math.min(Number(s), WHOLE_SECOND);
}

let cachedSecond = -1;
let cachedDate = '';

/** IMF-fixdate of a unix second (`Sun, 22 Nov 2026 10:52:42 GMT`), cached: most messages share seconds. */
export function httpDate(time: number): string {
  if (time !== cachedSecond) {
    cachedSecond = time;
    cachedDate = new Date(time * 1000).toUTCString();
  }
  return cachedDate;
}

/** The `Last-Modified` / `Etag` pair that names `id` (the Etag unquoted, as the module and Nchan send it). */
export function cursorHeaders(id: MessageId): { lastModified: string; etag: string } {
  return { lastModified: httpDate(id.time), etag: String(id.tag) };
}

/**
 * The loss signal: true when the subscriber's cursor is older than the message sent right before
 * `message`, so it never got that one (expired, trimmed, or never stored). No cursor, no signal.
 * The first message of a channel's history (`seq` 1) names as previous the instant before it, so
 * that a cursor of a history the store lost gets the signal; a cursor at the epoch
 * (`If-Modified-Since: Thu, 01 Jan 1970 00:00:00 GMT`, `0:0`), which push-module clients send to
 * mean "from the start", missed nothing before that first message.
 */
export function missedBefore(cursor: MessageId | undefined, message: { previousId: MessageId | undefined; seq?: number | undefined }): boolean {
  if (cursor === undefined || message.previousId === undefined) return false;
  if (cursor.time === 0 && message.seq === 1) return false;
  return compareIds(cursor, message.previousId) < 0;
}

/**
 * A cursor ahead of every id a channel has given: not a position in its history (a fabricated one,
 * an id from a clock that ran ahead, a client's own clock). Read as it is, its subscriber would skip
 * every message published until the channel's ids pass it, while publishers get 201 (Nchan does).
 * The relay answers it with the next message published, with the loss signal (the subscription
 * adds it), by moving the cursor back:
 * - to `newest`, the channel's newest id, when the cursor is after it;
 * - when the channel has given no id (missing, never published, its history lost) and the cursor's
 *   second is after the store's current second `nowSecond`, to the start of the second before
 *   (a first message's previous id is in its own second, see firstId()).
 * Returns undefined when the cursor is not ahead (the common case) or there is none.
 */
export function cursorAhead(cursor: MessageId | undefined, newest: MessageId | undefined, nowSecond: number): MessageId | undefined {
  if (cursor === undefined) return undefined;
  if (newest !== undefined) return compareIds(cursor, newest) > 0 ? newest : undefined;
  return cursor.time > nowSecond ? { time: nowSecond - 1, tag: 0 } : undefined;
}

/** Query arguments read as the cursor when the request has no cursor headers (cursorArguments). */
export interface CursorArgumentNames {
  time?: string | undefined;
  tag?: string | undefined;
  eventId?: string | undefined;
}
const DEFAULT_ARGUMENTS: CursorArgumentNames = { eventId: 'last_event_id' };

/** A non-empty query argument of `url`. */
function argument(url: string | undefined, name: string | undefined): string | undefined {
  if (!name || !url) return undefined;
  const q = url.indexOf('?');
  if (q < 0) return undefined;
  return new URLSearchParams(url.slice(q + 1)).get(name)?.trim() || undefined;
}

/** The text of an EventSource-style id: the `Last-Event-ID` header, else its query argument (`last_event_id`). */
export function eventIdText(headers: IncomingHttpHeaders, url: string | undefined, args: CursorArgumentNames = DEFAULT_ARGUMENTS): string | undefined {
  const header = headers['last-event-id'];
  if (typeof header === 'string' && header.trim()) return header.trim();
  return argument(url, args.eventId);
}

/**
 * `If-Modified-Since` and `If-None-Match`, or, when the request has neither, the query arguments
 * named for them (push_stream_last_received_message_time / _tag), read with the same rules.
 */
export function cursorValues(headers: IncomingHttpHeaders, url: string | undefined, args: CursorArgumentNames = DEFAULT_ARGUMENTS): { ims: string | undefined; inm: string | string[] | undefined } {
  const ims = headers['if-modified-since'];
  const inm = headers['if-none-match'];
  if (ims !== undefined || inm !== undefined || (!args.time && !args.tag)) return { ims, inm };
  const time = argument(url, args.time);
  if (time === undefined) return { ims: undefined, inm: undefined };
  // Beside a time, an empty tag is tag 0: pushstream.js sends `tag=` for it (0 is falsy in
  // JavaScript; the Push Stream Module's own tags start at 1). A tag left out is none.
  const tag = args.tag === undefined ? undefined : new URLSearchParams(url!.slice(url!.indexOf('?') + 1)).get(args.tag)?.trim();
  return { ims: time, inm: tag === '' ? '0' : tag ?? undefined };
}

/**
 * The cursor of a streaming subscriber: an EventSource `Last-Event-ID` header or `last_event_id` query
 * argument (`time:tag`, as `id:` lines carry it), else `If-Modified-Since` / `If-None-Match`.
 */
export function readStreamCursor(headers: IncomingHttpHeaders, url: string | undefined, args: CursorArgumentNames = DEFAULT_ARGUMENTS): Cursor | undefined {
  const text = eventIdText(headers, url, args);
  const id = text ? parseId(text) : undefined;
  if (id) return id;
  const { ims, inm } = cursorValues(headers, url, args);
  return readCursor(ims, inm);
}

/**
 * The cursor of a long-poll or interval-poll: `If-Modified-Since` / `If-None-Match` (the protocol's
 * cursor, which a polling client sends back from each answer); without either, an id as a stream
 * takes it (`Last-Event-ID`, `last_event_id`, as Nchan reads them), else a request `Etag: time:tag`
 * header (what NchanSubscriber sends on its first poll after a page reload).
 */
export function readPollCursor(headers: IncomingHttpHeaders, url: string | undefined, args: CursorArgumentNames = DEFAULT_ARGUMENTS): Cursor | undefined {
  const { ims, inm } = cursorValues(headers, url, args);
  if (ims !== undefined || inm !== undefined) return readCursor(ims, inm);
  const text = eventIdText(headers, url, args) ?? requestEtag(headers);
  return text ? parseId(text) : undefined;
}

/** A request `Etag` header (not a standard request header; NchanSubscriber's), trimmed. */
export function requestEtag(headers: IncomingHttpHeaders): string | undefined {
  const etag = headers.etag;
  return typeof etag === 'string' && etag.trim() ? etag.trim() : undefined;
}
