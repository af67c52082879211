/**
 * nchan_subscriber_first_message: where a subscriber that sends no cursor starts reading. The
 * protocol's rule is `'oldest'` (the oldest stored message, GET never consumes it).
 */
import type { FirstMessagePolicy } from '../options.js';
import type { ResolvedChannel } from '../protocol/channel-id.js';
import type { MessageId } from '../protocol/message-id.js';
import type { Cursors } from '../protocol/position.js';
import type { ChannelStore } from '../store/channel-store.js';

/**
 * The epoch, "from the start": what `'newest'` starts from on a channel that has given no id yet. Read
 * as from the oldest stored, as no cursor is, but a poll that times out echoes it (`304`), so that
 * its next request does not start from the newest again and skip what came in between.
 */
const FROM_THE_START: MessageId = Object.freeze({ time: 0, tag: 0 });

/** The cursor a first request starts from under `policy`; undefined = from the oldest stored. */
export async function firstCursor(store: ChannelStore, channel: string, policy: FirstMessagePolicy): Promise<MessageId | undefined> {
  if (policy === 'oldest') return undefined;
  if (policy === 'newest') return (await store.startCursor(channel, 0)) ?? FROM_THE_START;
  if (policy < 0) return store.startCursor(channel, -policy);
  // The N-th oldest: step over the N-1 oldest; with fewer stored, wait for the ones still to come.
  let cursor: MessageId | undefined;
  for (let i = 1; i < policy; i++) {
    const { message } = await store.next(channel, cursor);
    if (!message) break;
    cursor = message.id;
  }
  return cursor;
}

/** The position a subscription without a cursor starts from, one cursor per channel. */
export async function startPosition(store: ChannelStore, channels: readonly ResolvedChannel[], policy: FirstMessagePolicy): Promise<Cursors> {
  if (policy === 'oldest') return channels.map(() => undefined);
  return Promise.all(channels.map((c) => firstCursor(store, c.key, policy)));
}

/**
 * Backtrack (the Push Stream Module's `/sub/ch1.b5`): a channel named with `backtrack: N` starts from
 * its N newest stored messages (0: only the ones still to come). Only for a request without a position.
 */
export async function backtrack(store: ChannelStore, channels: readonly ResolvedChannel[], cursors: Cursors): Promise<Cursors> {
  return Promise.all(channels.map((c, i) => (c.backtrack === undefined ? cursors[i] : store.startCursor(c.key, c.backtrack))));
}
