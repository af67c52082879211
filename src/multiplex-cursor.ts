/**
 * The composite cursor of a multiplexed subscriber (multiplex.ts): one position per channel, in the
 * resolver's order, in one token that travels wherever a single channel's message id does.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { readCursor } from './cursor.js';
import { protocolError } from './http/protocol-error.js';
import { parseId, WHOLE_SECOND, type MessageId } from './message-id.js';

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
 * Where a multiplexed subscriber resumes: a composite cursor (stream id, then If-None-Match), or a
 * single-channel id applied to every channel; undefined when the request carries none.
 */
export function readMultiplexCursor(headers: IncomingHttpHeaders, url: string | undefined, stream: boolean, count: number): Cursors | undefined {
  let text: string | undefined;
  if (stream) {
    const header = headers['last-event-id'];
    const q = url?.indexOf('?') ?? -1;
    text = (typeof header === 'string' && header.trim()) || (q >= 0 ? new URLSearchParams(url!.slice(q + 1)).get('last_event_id')?.trim() : undefined) || undefined;
  }
  const inm = headers['if-none-match'];
  const etag = Array.isArray(inm) ? inm[0] : inm;
  const composite = (text !== undefined ? parseComposite(text) : undefined) ?? (etag !== undefined && text === undefined ? parseComposite(etag) : undefined);
  if (composite) {
    if (composite.length !== count) {
      throw protocolError(400, `push-relay: the cursor names ${composite.length} channels, this subscription has ${count}`, 'cursor.mismatch');
    }
    return composite;
  }
  const single = (text !== undefined ? parseId(text) : undefined) ?? readCursor(headers['if-modified-since'], inm);
  return single ? new Array<MessageId | undefined>(count).fill(single) : undefined;
}
