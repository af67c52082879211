/**
 * Message ids and the subscriber cursor.
 *
 * A message id is `(time, tag)`: `time` is the whole unix second the store gave the message, `tag`
 * its position within that second (protocol rev 2.23 §3.1: Last-Modified + Etag must name one message
 * so that sending them back asks for the next one). A channel's first message takes the microsecond
 * of its second as tag (see firstId); each later one in the same second the next tag, and a new
 * second starts again from 0. Ids only grow within a channel, and across its lost histories.
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

/**
 * The id of the first message of a channel's history, published `micros` microseconds into unix
 * second `time`, and the `previousId` it carries. Its tag is `1 + micros` rather than 0: when a store
 * lost a channel (Redis restarted empty or was flushed, a process restarted) the new history starts
 * after every id the lost one gave within that second, so no id is given twice, and a subscriber
 * whose cursor comes from the lost history sees a gap (the loss signal) rather than a skip.
 */
export function firstId(time: number, micros: number): { id: MessageId; previousId: MessageId } {
  const tag = 1 + Math.max(0, Math.min(999_999, Math.floor(micros)));
  return { id: { time, tag }, previousId: { time, tag: tag - 1 } };
}

/**
 * The id the next message of a channel gets, after `last`, at unix second `now` (never going back).
 * With `distinctSecond` it never shares a second with `last`: it takes the next one, tag 0.
 */
export function nextId(last: MessageId | undefined, now: number, distinctSecond = false): MessageId {
  if (!last || now > last.time) return { time: now, tag: 0 };
  if (distinctSecond) return { time: last.time + 1, tag: 0 };
  return { time: last.time, tag: last.tag + 1 };
}
