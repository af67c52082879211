/**
 * The message-buffer directives as plain functions over a channel's queue (oldest first), shared by
 * every store so that "which messages are still served" means the same everywhere.
 */
/** The buffer directives of the publisher endpoint that published (or PUT) last. */
export interface BufferRules {
  /** push_store_messages: false delivers to waiting subscribers only. */
  storeMessages: boolean;
  /** push_min_message_buffer_length: the newest N messages are kept even when expired. */
  minMessages: number;
  /** push_max_message_buffer_length: older messages beyond N are dropped. */
  maxMessages: number;
  /** push_message_timeout in ms; 0 = never expire. */
  messageTimeout: number;
  /** push_channel_timeout in ms: how long a channel left with no messages and no subscribers lives. */
  channelTimeout: number;
  /**
   * push_min_message_recipients: on each publish, the oldest stored message is deleted once it has
   * been received this many times (the subscribers waiting when it was published, plus each later
   * answer that carried it) and more than minMessages are stored; 0 or unset = never.
   */
  minRecipients?: number | undefined;
}

/**
 * push_min_message_recipients: whether a publish drops the oldest of `length` stored messages,
 * received `received` times. At most one per publish, and never below minMessages.
 */
export function receivedEnough(length: number, received: number, rules: BufferRules): boolean {
  const min = rules.minRecipients ?? 0;
  return min > 0 && length > rules.minMessages && received >= min;
}

export const DEFAULT_BUFFER_RULES: BufferRules = Object.freeze({
  storeMessages: true,
  minMessages: 1,
  maxMessages: 10,
  messageTimeout: 60 * 60 * 1000,
  channelTimeout: 0,
});

/** How many of the oldest messages to drop so that a queue of `length` keeps at most `maxMessages`. */
export function overflow(length: number, rules: BufferRules): number {
  return Math.max(0, length - rules.maxMessages);
}

/**
 * Whether the message at `index` (0 = oldest) of a queue of `length` is no longer served: it has
 * expired and is not one of the newest `minMessages` (push_min_message_buffer_length keeps those
 * even when expired, as the module's README says).
 */
export function isExpired(expiresAt: number, index: number, length: number, minMessages: number, now: number): boolean {
  return expiresAt <= now && index < length - minMessages;
}

/** Expiry time (epoch ms) of a message published at `now` under `rules`; Infinity for never. */
export function expiryOf(now: number, rules: BufferRules): number {
  return rules.messageTimeout > 0 ? now + rules.messageTimeout : Infinity;
}
