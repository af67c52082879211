/**
 * What this process knows of a channel it watches, from the channel's wake-ups: its newest message
 * and the last few messages published, as Nchan's Redis mode keeps them in its own memory. While
 * the watch is live, every publish reaches the process in order, so a long-poll whose cursor is the
 * newest id seen has nothing to read (it parks), and one whose cursor is the message before a recent
 * one is answered with it, both without a round trip to Redis. Anything the view cannot vouch for
 * (an older cursor, a message that may have expired or been trimmed) is read from Redis as before.
 *
 * It also holds this process's counting of waiting subscribers on the channel in batches: a
 * long-poll answered and one coming back a moment later are one subscriber to Redis (the next one
 * takes the answered one's place), and what is left is sent at the next flush: 5 ms after a
 * subscriber is counted in, 100 ms after one is counted out, or at once before a join decided on
 * the count in Redis or a listing. This process's own publishes and channel info count what is not
 * sent yet exactly (their scripts are told).
 */
import { compareIds, type MessageId } from '../../protocol/message-id.js';
import type { StoredMessage } from '../channel-store.js';

/** What a publish did with its message, as its wake-up says (see wake-ups.ts). */
export interface Kept {
  /** maxMessages when the message was stored, 0 when it was not. */
  max: number;
  /** messageTimeout in ms, 0 = never expires. */
  timeout: number;
  /** minRecipients, 0 = off. */
  recipients: number;
}

interface Recent {
  readonly message: StoredMessage;
  /** The newest message stored right before it (undefined: none). */
  readonly previous: MessageId | undefined;
  readonly kept: Kept;
  /** Local time it arrived (ms). */
  readonly arrived: number;
  /** Dropped by a subscriber that received it (push_delete_oldest_received_message). */
  dropped: boolean;
}

/** How many recent messages a view keeps. */
const RECENT = 16;

/**
 * How long a message seen here may be answered from memory, at most: a margin of a second (or half
 * its timeout) before it expires, so that a late wake-up never makes an expired message served.
 */
function fresh(r: Recent, now: number): boolean {
  const timeout = r.kept.timeout;
  return timeout === 0 || now - r.arrived + Math.max(1000, timeout / 2) < timeout;
}

export class ChannelView {
  /** Relays watching the channel through this store. */
  watchers = 0;
  /** Its wake-ups reach the view (the subscription is confirmed). */
  live = false;
  /** False until a read made while the watch was live told the channel's newest id (and after a resync). */
  known = false;
  /** The newest message id of the channel, as far as this process knows. */
  newest: MessageId | undefined;
  /** Counts resets: a read sent before one says nothing of the channel now. */
  epoch = 0;
  readonly #recent: Recent[] = [];
  /** Sequence number of the last message heard (each publish takes the next one). */
  #seq: number | undefined;
  /** The id of the last message heard (wake-up, or this process's own publish). */
  #heardId: MessageId | undefined;

  // Counting in batches.
  /** Subscriber id -> the member counted for it in Redis, when it took an answered subscriber's place. */
  readonly members = new Map<string, string>();
  /** Members answered (still counted in Redis), free for the next subscriber until the flush counts them out. */
  readonly free: string[] = [];
  /** Members counted in here, not in Redis yet. */
  readonly added = new Set<string>();
  /** A subscriber asked since the last flush (the channel's last-requested time). */
  touched = false;
  /**
   * The channelTimeout the last subscriber counted in here would create the channel with (its join
   * may create it), or undefined: a channel removed meanwhile is made again when the batch is sent.
   */
  createWith: number | undefined;
  /** When a poll here was last answered or parked without a script (epoch ms; 0: never). */
  requestedAt = 0;
  /** The requestedAt the last heartbeat sent to Redis. */
  requestedSent = 0;
  /** The batch on its way to Redis, if one is. */
  sending: Promise<unknown> | undefined;
  /** Settled by the next flush (what leave() answers). */
  flushed: { promise: Promise<void>; resolve: () => void; reject: (err: unknown) => void } | undefined;
  /** Members Redis no longer counts (a concurrency `last` join removed them): their leaves are no-ops. */
  readonly uncounted = new Set<string>();
  /**
   * Subscribers here joined with a concurrency other than `broadcast` or a subscriber limit: those are
   * decided on the count in Redis, so subscribers leaving are counted out at once, not left to linger.
   */
  strict = false;
  /**
   * The last message heard was not stored (storeMessages: false): a long-poll answered here cannot
   * find the next one in Redis, so it is counted out with the next batch, not left to linger.
   */
  unstored = false;

  constructor(readonly channel: string) {}

  /** Something to send at the next flush. */
  get dirty(): boolean {
    return this.touched || this.free.length > 0 || this.added.size > 0;
  }

  /** Wake-ups may have been missed, or the channel was deleted: nothing is known any more. */
  reset(): void {
    this.known = false;
    this.newest = undefined;
    this.epoch++;
    this.#recent.length = 0;
    this.#seq = undefined;
    this.#heardId = undefined;
  }

  /** A read made at `epoch` (while live) found `last` as the channel's newest id. */
  learned(epoch: number, last: MessageId | undefined): void {
    if (epoch !== this.epoch) return;
    this.known = true;
    if (last && (!this.newest || compareIds(last, this.newest) > 0)) this.newest = last;
  }

  /** Whether the view has heard of `id` (it is at or before the newest id it knows). */
  heard(id: MessageId): boolean {
    return this.newest !== undefined && compareIds(id, this.newest) <= 0;
  }

  /**
   * A message's wake-up (or this process's own publish, heard at once). 'missed' when the channel's
   * sequence numbers show that wake-ups were missed before it (the store then resets the view and
   * has the channel's subscribers read again); 'again' for a message heard already (the wake-up of
   * a publish this process heard at once), which nobody needs to hear twice.
   */
  published(message: StoredMessage, previous: MessageId | undefined, kept: Kept | undefined, now: number): 'heard' | 'again' | 'missed' {
    if (kept) this.unstored = kept.max === 0;
    const seq = message.seq;
    // By id, not by number: a channel removed and made again numbers its messages from 1 again, while
    // its ids go on growing (a read may also have taught the view a newer id than any heard).
    if (this.#heardId && compareIds(message.id, this.#heardId) <= 0) return 'again';
    this.#heardId = message.id;
    const missed = seq !== undefined && this.#seq !== undefined && seq !== this.#seq + 1;
    this.#seq = seq;
    if (missed) return 'missed';
    if (!this.newest || compareIds(message.id, this.newest) > 0) this.newest = message.id;
    // A wake-up that does not say what was stored (from an older version of push-relay) breaks the window.
    if (!kept) {
      this.#recent.length = 0;
      return 'heard';
    }
    const last = this.#recent.at(-1);
    // Contiguous only: a message older than the last one kept (a wake-up out of order) is not kept.
    if (last && compareIds(message.id, last.message.id) <= 0) return 'heard';
    this.#recent.push({ message, previous, kept, arrived: now, dropped: false });
    if (this.#recent.length > RECENT) this.#recent.shift();
    return 'heard';
  }

  /**
   * Whether the message numbered `seq` is the very next one after every message this view heard: a
   * publish of this process's own may then be heard at once, before its wake-up comes back (no
   * wake-up of an earlier message can still be on its way).
   */
  follows(seq: number | undefined): boolean {
    return this.live && this.known && seq !== undefined && this.#seq !== undefined && seq === this.#seq + 1;
  }

  /** The message with that id, if it is one of the recent ones. */
  recentMessage(id: MessageId): StoredMessage | undefined {
    const recent = this.#recent;
    for (let i = recent.length - 1; i >= 0; i--) {
      const c = compareIds(recent[i]!.message.id, id);
      if (c === 0) return recent[i]!.message;
      if (c < 0) return undefined;
    }
    return undefined;
  }

  /** A subscriber received `id` and it was dropped (push_delete_oldest_received_message). */
  dropped(id: MessageId): void {
    for (const r of this.#recent) if (compareIds(r.message.id, id) === 0) r.dropped = true;
  }

  /**
   * What follows `cursor` as far as this view can tell: `null` when nothing does (the cursor is the
   * newest id), the first stored message after it, or undefined when Redis must be asked.
   */
  after(cursor: MessageId | undefined, now: number): StoredMessage | null | undefined {
    if (!this.known || !cursor) return undefined;
    const newest = this.newest;
    if (newest && compareIds(cursor, newest) === 0) return null;
    if (!newest) return undefined;
    const recent = this.#recent;
    for (let i = recent.length - 1; i >= 0; i--) {
      const r = recent[i]!;
      if (!r.previous || compareIds(r.previous, cursor) !== 0) continue;
      return this.#served(i, now) ? r.message : undefined;
    }
    return undefined;
  }

  /**
   * Whether recent[i] is still stored and served: stored when published, not dropped, not expired,
   * not trimmed by a later publish's maxMessages, and no publish since counted recipients (which may
   * drop messages without a wake-up).
   */
  #served(i: number, now: number): boolean {
    const recent = this.#recent;
    const r = recent[i]!;
    if (r.kept.max === 0 || r.dropped || !fresh(r, now)) return false;
    // The window must reach the newest id: every publish after r is in it.
    if (compareIds(recent.at(-1)!.message.id, this.newest!) !== 0) return false;
    let stored = 0;
    for (let j = i; j < recent.length; j++) {
      const later = recent[j]!;
      if (later.kept.recipients > 0) return false;
      if (later.kept.max === 0) continue;
      stored++;
      // Each storing publish trims the stream to its own maxMessages.
      if (stored > later.kept.max) return false;
    }
    return true;
  }
}
