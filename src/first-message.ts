/**
 * nchan_subscriber_first_message: where a subscriber that sends no cursor starts reading. The seed's
 * rule is `'oldest'` (the oldest stored message, GET never consumes it).
 */
import type { MessageId } from './message-id.js';
import type { FirstMessagePolicy } from './options.js';
import type { ChannelStore } from './store/channel-store.js';

/** The cursor a first request starts from under `policy`; undefined = from the oldest stored. */
export async function firstCursor(store: ChannelStore, channel: string, policy: FirstMessagePolicy): Promise<MessageId | undefined> {
  if (policy === 'oldest') return undefined;
  if (policy === 'newest') return store.startCursor(channel, 0);
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
