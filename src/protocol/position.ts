/**
 * A subscriber's position: one cursor per channel it reads, in the resolver's order. With one channel
 * the position is that channel's message id (`time:tag`, or Last-Modified + Etag); with several it
 * travels as one composite cursor wherever a single channel's id does (the long-poll and multipart
 * `Etag`, the EventSource `id:`, the WebSocket metadata `id:`).
 */
import type { IncomingHttpHeaders } from 'node:http';
import { cursorMismatch } from './answers.js';
import { cursorHeaders, cursorValues, eventIdText, httpDate, readCursor, readPollCursor, readStreamCursor, requestEtag, type CursorArgumentNames } from './cursor.js';
import { formatId, parseId, WHOLE_SECOND, type MessageId } from './message-id.js';

export type Cursors = Array<MessageId | undefined>;

/**
 * The composite cursor: `M<base>` then, per channel in resolver order, `.<time - base>:<tag>` or
 * `.-` (nothing received from that channel yet); `base` is the smallest time. E.g. three channels:
 * `M1795340901.0:3.2:0.-`. It starts with a letter, so a single-channel endpoint reads it as tag 0.
 */
export function formatComposite(cursors: Cursors): string {
  let base = Infinity;
  for (const c of cursors) if (c && c.time < base) base = c.time;
  if (base === Infinity) base = 0;
  let text = `M${base}`;
  for (const c of cursors) text += c ? `.${c.time - base}:${c.tag}` : '.-';
  return text;
}

const COMPOSITE = /^M(\d{1,15})((?:\.(?:-|\d{1,15}:\d{1,16}))+)$/;

/** Parses a composite cursor (quotes and `W/` allowed, as in If-None-Match); undefined if it is not one. */
export function parseComposite(value: string): Cursors | undefined {
  let s = value.trim();
  if (s.startsWith('W/') || s.startsWith('w/')) s = s.slice(2);
  if (s.length >= 2 && s.startsWith('"') && s.endsWith('"')) s = s.slice(1, -1);
  const m = COMPOSITE.exec(s);
  if (!m) return undefined;
  const base = Number(m[1]);
  return m[2]!
    .slice(1)
    .split('.')
    .map((entry) => {
      if (entry === '-') return undefined;
      const [dt, tag] = entry.split(':');
      return { time: base + Number(dt), tag: Math.min(Number(tag), WHOLE_SECOND) };
    });
}

/**
 * Where a subscriber of `count` channels resumes; undefined when the request names no position.
 * `stream`: an EventSource-style id (`Last-Event-ID` header, `last_event_id` argument) is read first.
 * With several channels: a composite cursor, or a single-channel id applied to every channel.
 * `args`: the query arguments read when the headers are absent (cursorArguments).
 */
export function readPosition(headers: IncomingHttpHeaders, url: string | undefined, stream: boolean, count: number, args?: CursorArgumentNames): Cursors | undefined {
  if (count === 1) {
    const cursor = stream ? readStreamCursor(headers, url, args) : readPollCursor(headers, url, args);
    return cursor ? [cursor] : undefined;
  }
  const { ims, inm } = cursorValues(headers, url, args);
  // Streams: the event id first. Polls: the protocol's cursor first, the event id (or Nchan's request Etag) without one.
  let text = stream || (ims === undefined && inm === undefined) ? eventIdText(headers, url, args) : undefined;
  if (!stream && text === undefined && ims === undefined && inm === undefined) text = requestEtag(headers);
  const etag = Array.isArray(inm) ? inm[0] : inm;
  const composite = text !== undefined ? parseComposite(text) : etag !== undefined ? parseComposite(etag) : undefined;
  if (composite) {
    if (composite.length !== count) throw cursorMismatch(composite.length, count);
    return composite;
  }
  const single = (text !== undefined ? parseId(text) : undefined) ?? readCursor(ims, inm);
  return single ? new Array<MessageId | undefined>(count).fill(single) : undefined;
}

/**
 * A `Last-Event-ID` (or its query argument) that names no position: a publisher's `Event-Id`, which
 * the store may find (ChannelStore.findEventId). Only asked when readPosition() found nothing.
 */
export function publisherEventId(headers: IncomingHttpHeaders, url: string | undefined, args?: CursorArgumentNames): string | undefined {
  return eventIdText(headers, url, args);
}

/** A position as one token: the message id with one channel, else the composite cursor; undefined before any. */
export function positionText(cursors: Cursors): string | undefined {
  if (cursors.length === 1) return cursors[0] ? formatId(cursors[0]) : undefined;
  return formatComposite(cursors);
}

/**
 * The `Last-Modified` / `Etag` that name a position when no message is sent (a long-poll time-out):
 * one channel, its cursor (no Etag for "all of that second"); several, the newest second and the
 * composite cursor.
 */
export function positionHeaders(cursors: Cursors): { lastModified?: string; etag?: string } {
  if (cursors.length === 1) {
    const cursor = cursors[0];
    if (!cursor) return {};
    const c = cursorHeaders(cursor);
    return cursor.tag === WHOLE_SECOND ? { lastModified: c.lastModified } : c;
  }
  let latest = -1;
  for (const c of cursors) if (c && c.time > latest) latest = c.time;
  return latest >= 0 ? { lastModified: httpDate(latest), etag: formatComposite(cursors) } : { etag: formatComposite(cursors) };
}
