/**
 * Where a channel lives in Redis: `<prefix>:{<channel key>}:<part>`. Every key of a channel shares
 * the hash tag `{<channel key>}`, so a channel sits in one Redis Cluster slot and its Lua scripts may
 * touch all of its keys. The prefix holds no braces (checked by RedisStore), so the tag is ours.
 */

export interface ChannelKeys {
  /** Hash: last message id, buffer rules, last request time, idle clock (see docs/scaling.md). */
  readonly meta: string;
  /** Stream: the stored messages, entry id `seconds-tag` = the message id. */
  readonly messages: string;
  /** Sorted set (all scores 0, ordered by member): waiting subscribers as `process|subscriberId`. */
  readonly subscribers: string;
  /** Hash: process -> epoch ms until which its subscribers count (its lease, renewed by heartbeats). */
  readonly leases: string;
  /**
   * String: the last message id of a channel removed during the current second, so that the channel,
   * created again within that second, never hands out an id twice. Expires with its second.
   */
  readonly floor: string;
  /** Hash: idempotency key -> id of the stored message published with it (only while it is stored). */
  readonly idempotency: string;
  /** Pub/sub channel carrying the channel's wake-ups. */
  readonly events: string;
}

/** The keys in the order the Lua scripts read them from KEYS. */
export function keyList(keys: ChannelKeys): string[] {
  return [keys.meta, keys.messages, keys.subscribers, keys.leases, keys.floor, keys.idempotency];
}

export function channelKeys(prefix: string, channel: string): ChannelKeys {
  const tag = `${prefix}:{${channel}}`;
  return {
    meta: `${tag}:meta`,
    messages: `${tag}:messages`,
    subscribers: `${tag}:subscribers`,
    leases: `${tag}:leases`,
    floor: `${tag}:floor`,
    idempotency: `${tag}:keys`,
    events: `${tag}:events`,
  };
}
