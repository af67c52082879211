/**
 * One channel of the MemoryStore: its queue, rules, waiting subscribers and clocks. Every method takes
 * `now` so that the buffer behaviour is testable without timers.
 */
import type { ChannelInfo } from '../../protocol/channel-info.js';
import { compareIds, type MessageId } from '../../protocol/message-id.js';
import { isExpired, overflow, receivedEnough } from '../../protocol/buffer-rules.js';
import type { BufferRules, StoredMessage } from '../channel-store.js';
import type { WheelEntry } from '../../timer-wheel.js';

export interface QueuedMessage {
  message: StoredMessage;
  expiresAt: number;
  /** Bytes counted against maxReservedMemory. */
  size: number;
  /** The publisher's idempotency key, if any. */
  key?: string | undefined;
  /** Times received (push_min_message_recipients): the subscribers waiting at publish, then each answer from the store. */
  received: number;
}

/** Nothing dropped (shared, never written to: every request settles its channel). */
const NONE: QueuedMessage[] = [];

export class MemoryChannel implements WheelEntry {
  readonly name: string;
  rules: BufferRules;
  readonly queue: QueuedMessage[] = [];
  /** Stored messages by idempotency key (only those published with one). */
  keys: Map<string, QueuedMessage> | undefined;
  /** Waiting subscriber ids, in arrival order. */
  readonly subscribers = new Set<string>();
  lastMessageId: MessageId | undefined;
  /** Ids come after this one: the last id of a same-named channel removed within the second this one was made in. */
  idFloor: MessageId | undefined;
  /** Epoch ms of the last subscriber request; -1 if never. */
  lastRequested = -1;
  /** Messages published to it since it was created. */
  published = 0;
  /** Epoch ms since when the channel has had no messages and no subscribers; undefined while in use. */
  idleSince: number | undefined;
  /** Wheel slot (timer for the next expiry or the channel time-out). */
  slot = -1;

  constructor(name: string, rules: BufferRules) {
    this.name = name;
    this.rules = rules;
  }

  get isIdle(): boolean {
    return this.queue.length === 0 && this.subscribers.size === 0;
  }

  /** The first served message after `after` (the oldest served one if undefined). */
  next(after: MessageId | undefined, now: number): StoredMessage | undefined {
    const q = this.queue;
    let lo = 0;
    if (after) {
      // Binary search for the first id > after.
      let hi = q.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (compareIds(q[mid]!.message.id, after) <= 0) lo = mid + 1;
        else hi = mid;
      }
    }
    for (let i = lo; i < q.length; i++) {
      const m = q[i]!;
      if (!isExpired(m.expiresAt, i, q.length, this.rules.minMessages, now)) {
        m.received++;
        return m.message;
      }
    }
    return undefined;
  }

  /**
   * Appends a message; returns the messages pushed out by maxMessages, or else the oldest when it has
   * been received minRecipients times (push_min_message_recipients).
   */
  append(entry: QueuedMessage): QueuedMessage[] {
    this.queue.push(entry);
    const drop = overflow(this.queue.length, this.rules);
    if (drop > 0) return this.queue.splice(0, drop);
    return receivedEnough(this.queue.length, this.queue[0]!.received, this.rules) ? this.queue.splice(0, 1) : [];
  }

  /** Removes expired messages from the head of the queue; returns them. */
  expire(now: number): QueuedMessage[] {
    const q = this.queue;
    let n = 0;
    while (n < q.length && isExpired(q[n]!.expiresAt, n, q.length, this.rules.minMessages, now)) n++;
    return n > 0 ? q.splice(0, n) : NONE;
  }

  /** Drops expired messages even if minMessages would keep them (memory pressure); returns them. */
  expireRetained(now: number): QueuedMessage[] {
    const q = this.queue;
    let n = 0;
    while (n < q.length && q[n]!.expiresAt <= now) n++;
    return n > 0 ? q.splice(0, n) : [];
  }

  /** Whether any expired message is still held only because of minMessages. */
  holdsExpired(now: number): boolean {
    return this.queue.length > 0 && this.queue[0]!.expiresAt <= now;
  }

  /** Epoch ms at which the next queued message may expire; Infinity if none will. */
  nextExpiry(now: number): number {
    const q = this.queue;
    const droppable = q.length - this.rules.minMessages;
    if (droppable > 0) return q[0]!.expiresAt;
    // Kept by minMessages: still wake when it expires, so that memory pressure can find it (holdsExpired).
    const oldest = q[0];
    return oldest && oldest.expiresAt > now ? oldest.expiresAt : Infinity;
  }

  info(now: number): ChannelInfo {
    return {
      messages: this.queue.length,
      requested: this.lastRequested < 0 ? -1 : Math.floor((now - this.lastRequested) / 1000),
      subscribers: this.subscribers.size,
      lastMessageId: this.lastMessageId,
    };
  }
}
