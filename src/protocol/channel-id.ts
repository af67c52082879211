/**
 * Channel ids: what a resolver may return (one id, or up to 255 for a multiplexed subscriber), the
 * checks every id passes (400 when missing or too long), and the store's name for it.
 */
import { channelIdTooLong, emptyChannelList, invalidChannelInList, noChannelId, repeatedChannelInList, tooManyChannels } from './answers.js';

export interface ResolvedChannel {
  /** The id as the app named it. */
  readonly id: string;
  /** The store's name for it: `group/id`, or `/id` without a group (so no id can reach into a group). */
  readonly key: string;
}

export interface ChannelIdRules {
  channelGroup: string | undefined;
  maxChannelIdLength: number;
}

/** The most channels one subscriber may multiplex (Nchan's limit). */
export const MAX_MULTIPLEXED = 255;

/** Validates an id from a resolver or an in-process call. */
export function checkChannelId(id: unknown, rules: ChannelIdRules): ResolvedChannel {
  if (id === undefined || id === null || id === '') throw noChannelId();
  if (typeof id !== 'string') {
    throw new TypeError(`push-relay: the channelId resolver must return a string or undefined (got ${typeof id})`);
  }
  // Characters, not UTF-16 units; the length check is enough for the common all-ASCII id.
  if (id.length > rules.maxChannelIdLength && [...id].length > rules.maxChannelIdLength) throw channelIdTooLong(rules.maxChannelIdLength);
  return { id, key: channelKey(rules.channelGroup, id) };
}

/** Validates the ids of a multiplexed subscription (2 to 255 distinct, non-empty strings). */
export function checkChannelList(ids: readonly unknown[], rules: ChannelIdRules): ResolvedChannel[] {
  if (ids.length === 0) throw emptyChannelList();
  if (ids.length > MAX_MULTIPLEXED) throw tooManyChannels(ids.length, MAX_MULTIPLEXED);
  const seen = new Set<string>();
  for (const [i, id] of ids.entries()) {
    if (typeof id !== 'string' || id === '') throw invalidChannelInList(i, ids.length, id);
    if (seen.has(id)) throw repeatedChannelInList(i, id);
    seen.add(id);
  }
  return ids.map((id) => checkChannelId(id, rules));
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
