/**
 * Channel ids: what a resolver may return (one id, or up to 255: a multiplexed subscriber, a publish to
 * several channels; a subscriber's may carry a backtrack), the checks every id passes (400 when
 * missing or too long), and the store's name for it.
 */
import { channelIdTooLong, emptyChannelList, invalidChannelInList, noChannelId, repeatedChannelInList, tooManyChannels } from './answers.js';

export interface ResolvedChannel {
  /** The id as the app named it. */
  readonly id: string;
  /** The store's name for it: `group/id`, or `/id` without a group (so no id can reach into a group). */
  readonly key: string;
  /** Start from this many of the channel's newest stored messages, whatever the cursor (backtrack). */
  readonly backtrack?: number | undefined;
}

export interface ChannelIdRules {
  channelGroup: string | undefined;
  maxChannelIdLength: number;
}

/** The most channels one subscriber may multiplex (Nchan's limit). */
export const MAX_MULTIPLEXED = 255;

/** Validates an id from a resolver or an in-process call: a string, or `{ id, backtrack? }`. */
export function checkChannelId(entry: unknown, rules: ChannelIdRules): ResolvedChannel {
  let id = entry;
  let backtrack: number | undefined;
  if (entry !== null && typeof entry === 'object') {
    ({ id, backtrack } = entry as { id?: unknown; backtrack?: number });
    if (backtrack !== undefined && !(Number.isSafeInteger(backtrack) && backtrack >= 0)) {
      throw new TypeError(`push-relay: a channel's backtrack must be a whole number >= 0 (got ${String(backtrack)})`);
    }
  }
  if (id === undefined || id === null || id === '') throw noChannelId();
  if (typeof id !== 'string') {
    throw new TypeError(`push-relay: the channelId resolver must return a string, { id, backtrack }, a list of them, or undefined (got ${typeof id})`);
  }
  // Characters, not UTF-16 units; the length check is enough for the common all-ASCII id.
  if (id.length > rules.maxChannelIdLength && [...id].length > rules.maxChannelIdLength) throw channelIdTooLong(rules.maxChannelIdLength);
  const key = channelKey(rules.channelGroup, id);
  return backtrack === undefined ? { id, key } : { id, key, backtrack };
}

/** Validates the ids of a multiplexed subscription or a publish to several channels (1 to 255 distinct, non-empty). */
export function checkChannelList(entries: readonly unknown[], rules: ChannelIdRules): ResolvedChannel[] {
  if (entries.length === 0) throw emptyChannelList();
  if (entries.length > MAX_MULTIPLEXED) throw tooManyChannels(entries.length, MAX_MULTIPLEXED);
  const seen = new Set<string>();
  for (const [i, entry] of entries.entries()) {
    const id = entry !== null && typeof entry === 'object' ? (entry as { id?: unknown }).id : entry;
    if (typeof id !== 'string' || id === '') throw invalidChannelInList(i, entries.length, id);
    if (seen.has(id)) throw repeatedChannelInList(i, id);
    seen.add(id);
  }
  return entries.map((entry) => checkChannelId(entry, rules));
}

export function channelKey(group: string | undefined, id: string): string {
  return `${group ?? ''}/${id}`;
}

/** The id part of a store name (`group/id` or `/id`; groups hold no "/"). */
export function idOfKey(key: string): string {
  return key.slice(key.indexOf('/') + 1);
}

/** Whether the store name `key` is a wildcard channel under `prefix` (push_stream_wildcard_channel_prefix). */
export function isWildcardKey(key: string, prefix: string | undefined): boolean {
  return prefix !== undefined && key.startsWith(prefix, key.indexOf('/') + 1);
}
