/**
 * Subscribers waiting for a message, per channel, in this process.
 *
 * One store watch per channel (whatever the number of waiting subscribers), fan-out in one pass,
 * O(1) removal when a client leaves, one coarse timer wheel for every subscriber time-out. What waits
 * here is one channel of a subscription (subscription.ts): a `ParkedSubscriber`.
 */
import { isWildcardKey } from '../protocol/channel-id.js';
import { randomBytes } from 'node:crypto';
import { log } from '../log.js';
import { channelMissing, subscriberConflict, subscriberLimit, type EndReason } from '../protocol/answers.js';
import { compareIds, type MessageId } from '../protocol/message-id.js';
import { isProtocolError } from '../protocol/protocol-error.js';
import type { ChannelEvent, ChannelStore, JoinRequest, JoinResult, NextOrJoinResult, StoredMessage } from '../store/channel-store.js';
import { isPromiseLike } from '../maybe-async.js';
import { TimerWheel, type WheelEntry } from '../timer-wheel.js';

const debug = log('subscriber');

export type { EndReason };

export interface ParkedSubscriber extends WheelEntry {
  readonly id: string;
  /** Store name of the channel. */
  readonly channel: string;
  /** The last message it has; undefined when it wants the oldest. */
  cursor: MessageId | undefined;
  /** Set by the registry while it is parked. */
  parked: boolean;
  /** Set by the transport once the client has gone. */
  gone: boolean;
  /** Writes `message`; true when that answered the request (long-poll), false to keep waiting (streams). */
  deliver(message: StoredMessage): boolean;
  /** The store read its cursor as `cursor`: it was ahead of every id the channel has given (NextResult.ahead). */
  reposition(cursor: MessageId): void;
  /** Answers without a message. */
  /** `notice`: with `deleted`, the DELETE's own text, if it gave one. */
  end(reason: EndReason, notice?: string): void;
  /** Writing to it threw: cut the client (it resumes from its last id); the registry has let it go. */
  abort(err: unknown): void;
}

/**
 * How long a channel stays watched after its last waiting subscriber left. A long-poll subscriber
 * comes straight back with its next request; a lingering watch spares it the store subscription
 * (a Redis SUBSCRIBE) and the catch-up read that starting a watch costs.
 */
export const WATCH_LINGER_MS = 5_000;

interface ChannelWaiters extends WheelEntry {
  readonly channel: string;
  readonly subscribers: Set<ParkedSubscriber>;
  /** Resolves once the store delivers this channel's events. */
  ready: Promise<void>;
  /** True once `ready` has resolved. */
  live: boolean;
  unwatch: (() => void) | undefined;
  /**
   * Subscribers of this process on their way in (between their store join and their parking): the
   * serial at which each join started, in order.
   */
  joins: number[];
  /**
   * The messages heard since the oldest of `joins` started. A store that did not keep one
   * (storeMessages: false, or expired at once) cannot give it back to a subscriber it counted in
   * before its wake-up came.
   */
  heard: Heard[];
  /** Serial (see ParkedSubscribers.#serial) of its last event, or of its creation. */
  lastEvent: number;
}

/** How a subscriber joins; channels under `wildcardPrefix` may be created even when `create` is false. */
export type JoinOptions = Omit<JoinRequest, 'subscriberId'> & { wildcardPrefix?: string | undefined };

export class ParkedSubscribers {
  /** Where the channels live. */
  readonly store: ChannelStore;
  readonly #channels = new Map<string, ChannelWaiters>();
  readonly #timeouts = new TimerWheel<ParkedSubscriber>(100, (s) => this.#finish(s, 'timeout'));
  /** Channels nobody waits on, still watched until `#lingerMs` has passed. */
  readonly #lingering: TimerWheel<ChannelWaiters>;
  readonly #lingerMs: number;
  readonly #idPrefix = randomBytes(6).toString('base64url');
  /** Subscribers reading from the store (see Reading). */
  readonly #catchingUp = new Map<ParkedSubscriber, Reading>();
  /** Parked subscribers whose join named the channel's newest id then (JoinResult.newest). */
  readonly #countedAfter = new Map<ParkedSubscriber, MessageId>();
  /** Messages already reported as received (push_delete_oldest_received_message), once per message. */
  readonly #acknowledged = new WeakSet<StoredMessage>();
  #idCounter = 0;
  /** Counts every event received and every watch started, so `mark()` can tell whether any came since. */
  #serial = 0;

  constructor(store: ChannelStore, lingerMs = WATCH_LINGER_MS) {
    this.store = store;
    this.#lingerMs = lingerMs;
    this.#lingering = new TimerWheel(Math.min(1000, lingerMs), (entry) => this.#unwatch(entry));
  }

  /** Subscribers parked now, in every channel. */
  get size(): number {
    let n = 0;
    for (const entry of this.#channels.values()) n += entry.subscribers.size;
    return n;
  }

  /** An id unique across every process sharing the store. */
  newId(): string {
    return `${this.#idPrefix}.${(this.#idCounter++).toString(36)}`;
  }

  /**
   * Taken right before a subscriber's first store read: if the channel's wake-ups were already live
   * then and none arrives before the subscriber is parked, that read saw everything and `park` can
   * skip its re-read. -1 when the channel is not watched yet.
   */
  mark(channel: string): number {
    return this.#channels.get(channel)?.live ? this.#serial : -1;
  }

  /**
   * Parks `subscriber` until a message after its cursor comes, its time-out (ms, 0 = none) passes, or
   * the channel goes. Throws a protocol error (403/409) when the store refuses it. `mark`: see mark().
   */
  async park(subscriber: ParkedSubscriber, join: JoinOptions, timeout: number, mark = -1): Promise<void> {
    const entry = this.#watch(subscriber.channel);
    try {
      if (!entry.live) {
        if (!(await this.#live(entry, subscriber))) return;
        mark = -1;
      }
      const since = this.#joinStarts(entry);
      let joined: JoinResult;
      try {
        joined = await this.store.join(subscriber.channel, joinRequest(subscriber, join));
      } catch (err) {
        this.#joinEnds(entry, since);
        throw err;
      }
      await this.#parked(subscriber, join, joined, timeout, mark, this.#joinEnds(entry, since));
    } finally {
      this.#lingerIfUnused(entry);
    }
  }

  /**
   * A long-poll's read and park in one store call, where the store has nextOrJoin(): the first
   * stored message after the subscriber's cursor (not parked), or undefined once it is parked (as
   * park()). A channel that is missing and may not be created refuses with 403, as park() does.
   * Answers at once (no Promise) when the store does and nothing is left to wait for.
   */
  readOrPark(subscriber: ParkedSubscriber, join: JoinOptions, timeout: number, mark: number): StoredMessage | undefined | Promise<StoredMessage | undefined> {
    const entry = this.#watch(subscriber.channel);
    if (!entry.live) {
      return this.#live(entry, subscriber).then((live) => {
        if (!live || subscriber.gone) {
          this.#lingerIfUnused(entry);
          return undefined;
        }
        return this.readOrPark(subscriber, join, timeout, this.mark(subscriber.channel));
      });
    }
    const since = this.#joinStarts(entry);
    let r: NextOrJoinResult | Promise<NextOrJoinResult>;
    try {
      r = this.store.nextOrJoin!(subscriber.channel, subscriber.cursor, joinRequest(subscriber, join));
    } catch (err) {
      this.#joinEnds(entry, since);
      return this.#refused(entry, err);
    }
    if (isPromiseLike(r)) {
      return Promise.resolve(r).then(
        (read) => this.#readOrParked(subscriber, join, timeout, mark, read, entry, this.#joinEnds(entry, since)),
        (err: unknown) => {
          this.#joinEnds(entry, since);
          return this.#refused(entry, err);
        },
      );
    }
    return this.#readOrParked(subscriber, join, timeout, mark, r, entry, this.#joinEnds(entry, since));
  }

  #readOrParked(subscriber: ParkedSubscriber, join: JoinOptions, timeout: number, mark: number, r: NextOrJoinResult, entry: ChannelWaiters, heard: Heard[]): StoredMessage | undefined | Promise<undefined> {
    if (r.message) {
      // Not counted in: it takes the stored message, and its next request goes on from there.
      this.#lingerIfUnused(entry);
      return r.message;
    }
    if (r.ahead) subscriber.reposition(r.ahead);
    let parked: void | Promise<void>;
    try {
      parked = this.#parked(subscriber, join, r.joined, timeout, mark, heard);
    } catch (err) {
      this.#refused(entry, err);
    }
    return parked ? parked.then(nothing) : undefined;
  }

  /**
   * Waits until the store delivers the channel's wake-ups: a subscriber is counted in only once they
   * are live, so that nothing published after it counts (a 201, a concurrency `last` refusal) can
   * be missed. False when the store could not watch the channel: the subscriber has been answered
   * `unavailable` (503, or a stream's end notice with a retry hint).
   */
  async #live(entry: ChannelWaiters, subscriber: ParkedSubscriber): Promise<boolean> {
    await entry.ready;
    if (entry.live) return true;
    try {
      subscriber.end('unavailable');
    } catch (err) {
      debug('ending a subscriber of %s (unavailable) failed: %s', subscriber.channel, err);
      subscriber.abort(err);
    }
    return false;
  }

  /** A watch started for a subscriber that did not park (answered at once, refused, gone) lingers, then goes. */
  #lingerIfUnused(entry: ChannelWaiters): void {
    if (entry.subscribers.size === 0 && entry.joins.length === 0 && this.#channels.get(entry.channel) === entry && entry.slot < 0) this.#lingering.schedule(entry, Date.now() + this.#lingerMs);
  }

  #refused(entry: ChannelWaiters, err: unknown): never {
    this.#lingerIfUnused(entry);
    throw err;
  }

  /** A subscriber's store join starts: what the channel's wake-ups bring from now on is kept for it. */
  #joinStarts(entry: ChannelWaiters): number {
    const since = this.#serial;
    entry.joins.push(since);
    return since;
  }

  /**
   * Its join has answered: the messages heard since it started (see ChannelWaiters.heard). What no
   * other join still under way needs is let go.
   */
  #joinEnds(entry: ChannelWaiters, since: number): Heard[] {
    const all = entry.heard;
    let first = 0;
    while (first < all.length && all[first]!.serial <= since) first++;
    const heard = first < all.length ? all.slice(first) : NONE;
    const joins = entry.joins;
    joins.splice(joins.indexOf(since), 1);
    if (joins.length === 0) entry.heard = NONE;
    else if (all.length > 0 && all[0]!.serial <= joins[0]!) entry.heard = all.filter((h) => h.serial > joins[0]!);
    return heard;
  }

  /** `heard`: messages whose wake-ups came while it joined, for the catch-up read (see #catchUp). */
  #parked(subscriber: ParkedSubscriber, join: JoinOptions, joined: JoinResult, timeout: number, mark: number, heard: Heard[]): void | Promise<void> {
    if (!joined.ok) {
      if (joined.reason === 'conflict') throw subscriberConflict();
      if (joined.reason === 'full') throw subscriberLimit(join.maxSubscribers);
      throw channelMissing();
    }
    if (subscriber.gone) {
      this.#leave(subscriber.channel, [subscriber.id]);
      const unused = this.#channels.get(subscriber.channel);
      if (unused) this.#lingerIfUnused(unused);
      return;
    }
    // Messages published before it was counted in went to others (their publishers were told so):
    // it gets them only from the store (see #fanOut, #deliverHeard).
    if (joined.newest) this.#countedAfter.set(subscriber, joined.newest);
    const entry = this.#watch(subscriber.channel);
    entry.subscribers.add(subscriber);
    subscriber.parked = true;
    if (timeout > 0) this.#timeouts.schedule(subscriber, Date.now() + timeout);
    if (!entry.live) return entry.ready.then(() => this.#closeGap(subscriber, entry, mark, heard));
    return this.#closeGap(subscriber, entry, mark, heard);
  }

  /**
   * Closes the gap between a subscriber's first read and its watch: reads again now that wake-ups
   * are live, unless they already were before that read and nothing has come since (the common case).
   */
  #closeGap(subscriber: ParkedSubscriber, entry: ChannelWaiters, mark: number, heard: Heard[]): void | Promise<void> {
    if (!subscriber.parked) return;
    if (mark >= 0 && entry.lastEvent <= mark) return;
    return this.#catchUp(subscriber, heard);
  }

  /** The client went away: forget it at once. */
  remove(subscriber: ParkedSubscriber): void {
    if (!subscriber.parked) return;
    this.#detach(subscriber);
    this.#leave(subscriber.channel, [subscriber.id]);
  }

  /**
   * Answers every parked subscriber (shutting down) and stops watching. Resolves once the store has
   * counted them all out, so that no other process sharing it still counts them; a store that does
   * not answer within `timeout` ms is given up on (logged).
   */
  async closeAll(timeout: number): Promise<void> {
    const leaves: Promise<void>[] = [];
    for (const [channel, entry] of [...this.#channels]) {
      const ids: string[] = [];
      for (const s of [...entry.subscribers]) {
        ids.push(s.id);
        this.#detach(s);
        s.end('closing');
      }
      if (ids.length > 0) leaves.push(this.store.leave(channel, ids).catch((err: unknown) => debug('leave %s on close failed: %s', channel, err)));
      this.#unwatch(entry);
    }
    this.#timeouts.clear();
    this.#lingering.clear();
    if (leaves.length === 0) return;
    let timer: NodeJS.Timeout | undefined;
    const gaveUp = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), timeout);
    });
    const late = await Promise.race([Promise.all(leaves).then(() => false), gaveUp]);
    clearTimeout(timer);
    if (late) debug('closing: the store did not count %d channels\' subscribers out within %dms', leaves.length, timeout);
  }

  /** Channels watched now, lingering ones included. */
  get watchedChannels(): number {
    return this.#channels.size;
  }

  #watch(channel: string): ChannelWaiters {
    const entry = this.#channels.get(channel);
    if (entry) {
      this.#lingering.cancel(entry);
      return entry;
    }
    // A watch started after a mark counts as an event: what came before it was not heard.
    const created: ChannelWaiters = {
      channel,
      subscribers: new Set(),
      ready: Promise.resolve(),
      live: false,
      unwatch: undefined,
      joins: [],
      heard: NONE,
      lastEvent: ++this.#serial,
      slot: -1,
    };
    created.ready = this.store.watch(channel, (name, event) => this.#onEvent(name, event)).then(
      (unwatch) => {
        created.live = true;
        if (this.#channels.get(channel) === created) created.unwatch = unwatch;
        else unwatch();
      },
      (err: unknown) => {
        debug('watch %s failed: %s', channel, err);
        // Not kept for later subscribers: they start a watch of their own.
        this.#unwatch(created);
        for (const s of [...created.subscribers]) this.#finish(s, 'unavailable');
      },
    );
    this.#channels.set(channel, created);
    return created;
  }

  /** Stops watching a channel (nobody waits on it, or its watch failed). */
  #unwatch(entry: ChannelWaiters): void {
    this.#lingering.cancel(entry);
    if (this.#channels.get(entry.channel) !== entry) return;
    this.#channels.delete(entry.channel);
    entry.unwatch?.();
  }

  #onEvent(channel: string, event: ChannelEvent): void {
    const entry = this.#channels.get(channel);
    if (!entry) return;
    entry.lastEvent = ++this.#serial;
    switch (event.type) {
      case 'message':
        if (entry.joins.length > 0) (entry.heard === NONE ? (entry.heard = []) : entry.heard).push({ message: event.message, previous: event.previous, serial: entry.lastEvent });
        this.#fanOut(channel, entry, event.message, event.previous);
        break;
      case 'deleted':
        for (const s of [...entry.subscribers]) this.#finish(s, 'deleted', false, event.text);
        break;
      case 'conflict': {
        const ids: string[] = [];
        for (const s of [...entry.subscribers]) {
          if (s.id === event.keep) continue;
          ids.push(s.id);
          this.#finish(s, 'conflict', false);
        }
        this.#leave(channel, ids);
        break;
      }
      case 'resync':
        for (const s of [...entry.subscribers]) void this.#catchUp(s);
        break;
    }
  }

  /**
   * push_delete_oldest_received_message: `message` was sent to a subscriber. Reported to the store
   * once per message, however many subscribers it went to.
   */
  received(channel: string, message: StoredMessage): void {
    if (this.#acknowledged.has(message)) return;
    this.#acknowledged.add(message);
    this.store.received(channel, message.id).catch((err: unknown) => debug('received %s failed: %s', channel, err));
  }

  /** One pass over the channel's subscribers (the transports share what they write, see transports/). */
  #fanOut(channel: string, entry: ChannelWaiters, message: StoredMessage, previous: MessageId | undefined): void {
    const answered: string[] = [];
    for (const s of entry.subscribers) {
      const cursor = s.cursor;
      if (cursor && compareIds(cursor, message.id) >= 0) continue;
      const reading = this.#catchingUp.size > 0 ? this.#catchingUp.get(s) : undefined;
      if (reading) {
        // Its store read may or may not include this message: let the read loop take it, in order.
        reading.again = true;
        reading.heard.push({ message, previous, serial: entry.lastEvent });
        continue;
      }
      const counted = this.#countedAfter.size > 0 ? this.#countedAfter.get(s) : undefined;
      if (counted && compareIds(message.id, counted) <= 0) {
        // Published before it was counted in (its wake-up came late): from the store, if kept there.
        void this.#catchUp(s);
        continue;
      }
      if (previous && (!cursor || compareIds(cursor, previous) < 0)) {
        // It has not seen the message before this one: its next message comes from the store.
        void this.#catchUp(s, [{ message, previous, serial: entry.lastEvent }]);
        continue;
      }
      let done: boolean;
      try {
        done = s.deliver(message);
      } catch (err) {
        // One subscriber's failure (a broken socket, a header its transport cannot write) is its own.
        this.#abort(s, err);
        continue;
      }
      if (done) {
        this.#detach(s, entry);
        answered.push(s.id);
      } else {
        s.cursor = message.id;
      }
    }
    if (answered.length > 0) this.#leave(channel, answered);
  }

  /**
   * Reads every stored message after `s`'s cursor, in order, until the store has nothing newer (a
   * long-poll stops at the first, which answers it). Fan-out leaves `s` to this loop meanwhile.
   * `heard`: messages whose wake-ups came for `s` already; once the store has nothing after the
   * cursor, those it did not keep are delivered as fan-out would have: the subscriber was counted
   * in when they were published (a 201), and the store cannot give them back.
   */
  async #catchUp(s: ParkedSubscriber, heard: Heard[] = NONE): Promise<void> {
    const already = this.#catchingUp.get(s);
    if (already) {
      if (heard.length > 0) already.heard.push(...heard);
      already.again = true;
      return;
    }
    const reading: Reading = { again: false, heard: heard === NONE ? [] : [...heard] };
    this.#catchingUp.set(s, reading);
    try {
      for (;;) {
        reading.again = false;
        const readAt = this.#serial;
        // `ahead` is not followed here: the subscriber is counted in already, and the store's newest
        // id may be a message published since, which it must get (Subscription moves cursors first).
        const r = await this.store.next(s.channel, s.cursor);
        if (!s.parked) return;
        if (!r.exists) {
          this.#finish(s, 'deleted');
          return;
        }
        const found = r.message;
        if (found) {
          // Heard messages before the one found were not kept: the read would have answered them first.
          if (!this.#deliverHeard(s, reading, (h) => compareIds(h.message.id, found.id) < 0)) return;
          this.#deliverTo(s, found);
          if (!s.parked) return;
          continue;
        }
        // Nothing kept after the cursor: a heard message goes if this read came after its wake-up (it
        // was not kept), or if nothing was stored between the cursor and it (as fan-out would send it).
        const cursor = s.cursor;
        if (!this.#deliverHeard(s, reading, (h) => h.serial <= readAt || !h.previous || (cursor !== undefined && compareIds(cursor, h.previous) >= 0))) return;
        if (!reading.again && reading.heard.length === 0) return;
      }
    } catch (err) {
      if (isProtocolError(err) && err.type === 'store.unavailable') {
        // The store is down for now: the subscriber stays parked, and re-reads from its cursor on the
        // resync the store sends once it is back.
        debug('catch-up read on %s failed, waiting for the store: %s', s.channel, err.message);
        return;
      }
      debug('catch-up read on %s failed: %s', s.channel, err);
      this.#finish(s, 'unavailable');
    } finally {
      this.#catchingUp.delete(s);
    }
  }

  /**
   * Delivers `reading`'s heard messages, in order, while `due` says so; those it has had already or
   * that were published before it was counted in are dropped. False once `s` is answered.
   */
  #deliverHeard(s: ParkedSubscriber, reading: Reading, due: (h: Heard) => boolean): boolean {
    const heard = reading.heard;
    const counted = this.#countedAfter.get(s);
    while (heard.length > 0) {
      const h = heard[0]!;
      const cursor = s.cursor;
      const stale = (cursor !== undefined && compareIds(cursor, h.message.id) >= 0) || (counted !== undefined && compareIds(h.message.id, counted) <= 0);
      if (!stale && !due(h)) return true;
      heard.shift();
      if (stale) continue;
      this.#deliverTo(s, h.message);
      if (!s.parked) return false;
    }
    return true;
  }

  #deliverTo(s: ParkedSubscriber, message: StoredMessage): void {
    let done: boolean;
    try {
      done = s.deliver(message);
    } catch (err) {
      this.#abort(s, err);
      return;
    }
    if (done) {
      this.#detach(s);
      this.#leave(s.channel, [s.id]);
    } else {
      s.cursor = message.id;
    }
  }

  /** Ends a parked subscriber without a message. */
  #finish(s: ParkedSubscriber, reason: EndReason, leave = true, notice?: string): void {
    if (!s.parked) return;
    this.#detach(s);
    if (leave) this.#leave(s.channel, [s.id]);
    try {
      s.end(reason, notice);
    } catch (err) {
      debug('ending a subscriber of %s (%s) failed: %s', s.channel, reason, err);
      s.abort(err);
    }
  }

  /** A subscriber whose transport threw: forgotten, counted out, and cut. */
  #abort(s: ParkedSubscriber, err: unknown): void {
    debug('delivery to a subscriber of %s failed, cutting it: %s', s.channel, err);
    if (s.parked) {
      this.#detach(s);
      this.#leave(s.channel, [s.id]);
    }
    try {
      s.abort(err);
    } catch (again) {
      debug('cutting a subscriber of %s failed: %s', s.channel, again);
    }
  }

  #detach(s: ParkedSubscriber, entry = this.#channels.get(s.channel)): void {
    s.parked = false;
    this.#timeouts.cancel(s);
    if (this.#countedAfter.size > 0) this.#countedAfter.delete(s);
    if (!entry) return;
    entry.subscribers.delete(s);
    if (entry.subscribers.size === 0 && entry.joins.length === 0 && this.#channels.get(s.channel) === entry) this.#lingering.schedule(entry, Date.now() + this.#lingerMs);
  }

  #leave(channel: string, ids: string[]): void {
    if (ids.length === 0) return;
    this.store.leave(channel, ids).catch((err: unknown) => debug('leave %s failed: %s', channel, err));
  }
}

/** A message's wake-up, kept for a subscriber on its way in or reading (see #catchUp). */
interface Heard {
  readonly message: StoredMessage;
  /** The newest message stored before it, as its wake-up said. */
  readonly previous: MessageId | undefined;
  /** ParkedSubscribers' event serial when it came. */
  readonly serial: number;
}

/**
 * A subscriber's catch-up read: `again` when a message came meanwhile (read once more at the end),
 * `heard` the messages whose wake-ups came for it (see #catchUp).
 */
interface Reading {
  again: boolean;
  heard: Heard[];
}

/** An empty list shared by every channel that has heard nothing (never written to). */
const NONE: Heard[] = [];

function nothing(): undefined {
  return undefined;
}

/** What the store is asked when `subscriber` joins: wildcard channels may be created whatever `create` says. */
function joinRequest(subscriber: ParkedSubscriber, join: JoinOptions): JoinRequest {
  return {
    subscriberId: subscriber.id,
    concurrency: join.concurrency,
    maxSubscribers: join.maxSubscribers,
    create: join.create || isWildcardKey(subscriber.channel, join.wildcardPrefix),
    channelTimeout: join.channelTimeout,
  };
}
