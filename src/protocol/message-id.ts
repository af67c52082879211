/**
 * Message ids and the subscriber cursor.
 *
 * A message id is `(time, tag)`: `time` is the whole unix second the store gave the message, `tag`
 * counts messages within that second from 0 (protocol rev 2.23 §3.1: Last-Modified + Etag must name
 * one message so that sending them back asks for the next one). Ids only grow within a channel.
 */
export interface MessageId {
  /** Whole unix seconds. */
  readonly time: number;
  /** Position within `time`, from 0. */
  readonly tag: number;
}

/** The cursor a subscriber sends: "everything up to and including this id has been received". */
export type Cursor = MessageId;

/** The largest tag a cursor can carry: `If-Modified-Since` alone means "every message of that second". */
export const WHOLE_SECOND = Number.MAX_SAFE_INTEGER;

/** Negative when `a` comes before `b`, 0 when equal, positive after. */
export function compareIds(a: MessageId, b: MessageId): number {
  return a.time - b.time || a.tag - b.tag;
}

/** `time:tag`, as channel info and Nchan print it. */
export function formatId(id: MessageId | undefined): string {
  return id ? `${id.time}:${id.tag}` : '0:0';
}

/** Parses `time:tag`; undefined for anything else. */
export function parseId(text: string): MessageId | undefined {
  const m = /^(\d{1,15}):(\d{1,15})$/.exec(text);
  if (!m) return undefined;
  return { time: Number(m[1]), tag: Number(m[2]) };
}

/** The id the next message of a channel gets, after `last`, at unix second `now` (never going back). */
export function nextId(last: MessageId | undefined, now: number): MessageId {
  if (!last || now > last.time) return { time: now, tag: 0 };
  return { time: last.time, tag: last.tag + 1 };
}
