/**
 * A subscription: one subscriber request (a long-poll, a stream, a WebSocket) reading one channel or
 * up to 255 (multiplexing). It waits in the parked-subscriber registry through one `Leg` per channel
 * (counted, concurrency and limits per channel), merges what the legs receive into one sequence in
 * publish order, and hands each message to its transport.
 *
 * Position: one cursor per channel, in resolver order (protocol/position.ts). With one channel a
 * message is named by its own id; with several, by the composite cursor.
 */
import { isWildcardKey } from '../protocol/channel-id.js';
import { channelMissing, type EndReason } from '../protocol/answers.js';
import type { ResolvedChannel } from '../protocol/channel-id.js';
import { cursorAhead, missedBefore } from '../protocol/cursor.js';
import { compareIds, type MessageId } from '../protocol/message-id.js';
import { formatComposite, type Cursors } from '../protocol/position.js';
import type { StoredMessage } from '../store/channel-store.js';
import type { SubscriberTransport } from '../transports/transport.js';
import { isPromiseLike, type MaybePromise } from '../maybe-async.js';
import type { JoinOptions, ParkedSubscriber, ParkedSubscribers } from './parked-subscribers.js';

/** What a subscriber endpoint's options say about every subscription it serves. */
export interface SubscriptionSettings {
  readonly join: JoinOptions;
  /** subscriberTimeout in ms; 0 = none. */
  readonly timeout: number;
  /** push_delete_oldest_received_message. */
  readonly deletesReceived: boolean;
  /** Where deliveries are counted (relay.metrics()). */
  readonly counters: { delivered: number };
}

interface Held {
  channel: number;
  message: StoredMessage;
}

/** Order across channels: by id, ties (ids are per channel) in resolver order. */
function compareDelivery(a: Held, b: Held): number {
  return compareIds(a.message.id, b.message.id) || a.channel - b.channel;
}

/** One channel of a subscription, as the registry sees it. */
class Leg implements ParkedSubscriber {
  slot = -1;
  parked = false;
  gone = false;
  /** ParkedSubscribers.mark() taken before the subscription's first read, -1 if none. */
  mark = -1;

  constructor(
    readonly id: string,
    readonly channel: string,
    /** What the registry has handed to this leg (the subscription may hold some back while it joins). */
    public cursor: MessageId | undefined,
    readonly index: number,
    readonly subscription: Subscription,
  ) {}

  deliver(message: StoredMessage): boolean {
    return this.subscription.offer(this.index, message);
  }

  reposition(cursor: MessageId): void {
    this.cursor = cursor;
    this.subscription.reposition(this.index, cursor);
  }

  end(reason: EndReason, notice?: string): void {
    this.subscription.legEnded(this.index, reason, notice);
  }

  abort(err: unknown): void {
    this.subscription.abort(err);
  }
}

export class Subscription {
  readonly channels: readonly ResolvedChannel[];
  /** What the client has been sent, per channel. */
  readonly cursors: Cursors;
  readonly #legs: Leg[];
  readonly #registry: ParkedSubscribers;
  readonly #settings: SubscriptionSettings;
  #transport: SubscriberTransport | undefined;
  /** Joined every channel: messages go out as they come; before, they are held and sorted. */
  #live: boolean;
  #done = false;
  /** Messages received while joining several channels, sent in order once joined on all. */
  #held: Held[] | undefined;
  /** False until it has a real position: a first request without a cursor cannot have missed anything. */
  #signalsLoss: boolean;
  /** The client named its position (a cursor, an id): it may be ahead of what a channel has given. */
  readonly #resumed: boolean;
  /** Channels whose cursor was moved back (reposition): their next message carries the loss signal. */
  #movedBack: Set<number> | undefined;

  constructor(registry: ParkedSubscribers, channels: readonly ResolvedChannel[], cursors: Cursors, resumed: boolean, settings: SubscriptionSettings) {
    this.#registry = registry;
    this.#settings = settings;
    this.channels = channels;
    this.cursors = cursors;
    this.#signalsLoss = resumed;
    this.#resumed = resumed;
    // A leg only receives once it is counted in on its channel; with one channel that is all it waits for.
    this.#live = channels.length === 1;
    this.#legs = [];
    for (let i = 0; i < channels.length; i++) this.#legs.push(new Leg(registry.newId(), channels[i]!.key, cursors[i], i, this));
  }

  /** Answered, ended, or the client left. */
  get done(): boolean {
    return this.#done;
  }

  /**
   * Long-poll and interval-poll: answers with the first stored message after the position if there
   * is one; else interval-poll answers 304 and long-poll waits. Refuses with 403 under
   * authorizedChannelsOnly when a channel is missing. Done at once (no Promise) when the store
   * answers at once.
   */
  poll(transport: SubscriberTransport, interval: boolean, authorizedChannelsOnly: boolean): MaybePromise<void> {
    this.#transport = transport;
    if (this.#legs.length === 1 && !interval && this.#registry.store.nextOrJoin) return this.#readOrWait(transport);
    return this.#readThenWait(transport, interval, authorizedChannelsOnly);
  }

  async #readThenWait(transport: SubscriberTransport, interval: boolean, authorizedChannelsOnly: boolean): Promise<void> {
    const registry = this.#registry;
    const legs = this.#legs;
    let first: Held | undefined;
    if (legs.length === 1) {
      // One channel: no list of reads to build and wait for.
      const leg = legs[0]!;
      leg.mark = registry.mark(leg.channel);
      const { exists, message, ahead } = await registry.store.next(leg.channel, leg.cursor);
      if (ahead) leg.reposition(ahead);
      if (!exists && authorizedChannelsOnly && !isWildcardKey(leg.channel, this.#settings.join.wildcardPrefix)) throw channelMissing();
      if (message) first = { channel: 0, message };
    } else {
      first = await this.#readAll(authorizedChannelsOnly);
    }
    if (first) {
      this.#done = true;
      this.#send(first.channel, first.message);
      return;
    }
    if (interval) {
      this.#done = true;
      transport.end('timeout', undefined, this.cursors);
      return;
    }
    return this.#wait(transport);
  }

  /**
   * A long-poll of one channel on a store with nextOrJoin(): its read and its join are one store call
   * (one round trip to Redis instead of two). Answered at once when a message is there; else parked.
   */
  #readOrWait(transport: SubscriberTransport): MaybePromise<void> {
    if (transport.closed) return; // the client left meanwhile
    transport.onClose(this.#gone);
    const leg = this.#legs[0]!;
    const { join, timeout } = this.#settings;
    const read = this.#registry.readOrPark(leg, join, timeout, this.#registry.mark(leg.channel));
    if (isPromiseLike(read)) return Promise.resolve(read).then((message) => this.#answerRead(message));
    this.#answerRead(read);
  }

  /** What readOrPark() found: a message answers the long-poll; undefined, it is parked. */
  #answerRead(message: StoredMessage | undefined): void {
    if (!message || this.#done) return;
    this.#done = true;
    this.#send(0, message);
  }

  /** The transport's close listener. */
  readonly #gone = (): void => this.gone();

  /** Streams and WebSockets: joins every channel, then opens; every stored message after the position comes first. */
  async stream(transport: SubscriberTransport): Promise<void> {
    this.#transport = transport;
    if (this.#resumed) await this.#placeAhead();
    await this.#wait(transport);
    // Counted in on every channel (or already answered): open the stream if nothing did yet.
    if (!this.#done) transport.open();
  }

  /**
   * A stream resuming from a position: a cursor ahead of every id its channel has given moves back
   * to the newest before it joins (see cursorAhead()). After the join would be too late: a message
   * published in between is already the channel's newest, and moving to it would skip it. Asks the
   * store for the newest id (startCursor), so that no message is counted as received twice; a
   * channel that has given none is read (nothing to count), for the store's own clock.
   */
  async #placeAhead(): Promise<void> {
    const store = this.#registry.store;
    await Promise.all(
      this.#legs.map(async (leg) => {
        if (!leg.cursor) return;
        const newest = await store.startCursor(leg.channel, 0);
        const ahead = newest ? cursorAhead(leg.cursor, newest, 0) : (await store.next(leg.channel, leg.cursor)).ahead;
        if (ahead) leg.reposition(ahead);
      }),
    );
  }

  /** The first stored message after the position across several channels, in delivery order. */
  async #readAll(authorizedChannelsOnly: boolean): Promise<Held | undefined> {
    const registry = this.#registry;
    for (const leg of this.#legs) leg.mark = registry.mark(leg.channel);
    const reads = await Promise.all(this.#legs.map((leg) => registry.store.next(leg.channel, leg.cursor)));
    reads.forEach((r, i) => r.ahead && this.#legs[i]!.reposition(r.ahead));
    const wildcards = this.#settings.join.wildcardPrefix;
    const missing = authorizedChannelsOnly ? reads.findIndex((r, i) => !r.exists && !isWildcardKey(this.#legs[i]!.channel, wildcards)) : -1;
    if (missing >= 0) throw channelMissing(this.channels[missing]!.id);
    let first: Held | undefined;
    for (let channel = 0; channel < reads.length; channel++) {
      const message = reads[channel]!.message;
      if (message && (!first || compareDelivery({ channel, message }, first) < 0)) first = { channel, message };
    }
    return first;
  }

  /**
   * Joins every channel and waits there. A refusal on any of them leaves the joined ones and throws
   * it (403/409). With several channels, messages received meanwhile are held, then sent in order.
   */
  #wait(transport: SubscriberTransport): Promise<void> | undefined {
    if (transport.closed) {
      this.#leaveAll();
      return undefined; // the client left meanwhile
    }
    transport.onClose(this.#gone);
    const { join, timeout } = this.#settings;
    const legs = this.#legs;
    // One channel has nothing to merge: it is live from the start (see the constructor).
    if (legs.length === 1) return this.#registry.park(legs[0]!, join, timeout, legs[0]!.mark);
    return this.#joinAll();
  }

  async #joinAll(): Promise<void> {
    const { join, timeout } = this.#settings;
    const results = await Promise.allSettled(this.#legs.map((leg) => this.#registry.park(leg, join, timeout, leg.mark)));
    const refused = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (refused) {
      this.#leaveAll();
      throw refused.reason;
    }
    if (this.#done) return;
    this.#live = true;
    const held = this.#held?.sort(compareDelivery) ?? [];
    this.#held = undefined;
    for (const h of held) {
      if (this.#send(h.channel, h.message)) {
        this.#leaveAll();
        return;
      }
    }
  }

  /** A leg received `message`; true when that answered the request (that leg is then detached by the registry). */
  offer(channel: number, message: StoredMessage): boolean {
    if (this.#done) return false;
    if (!this.#live) {
      (this.#held ??= []).push({ channel, message });
      return false;
    }
    if (!this.#send(channel, message)) return false;
    this.#legs[channel]!.parked = false;
    this.#leaveAll();
    return true;
  }

  /**
   * The store read channel `channel` from `cursor`, behind the cursor the client sent (which was
   * ahead of every id the channel has given): the next message published there is the client's next.
   */
  reposition(channel: number, cursor: MessageId): void {
    const sent = this.cursors[channel];
    if (sent && compareIds(sent, cursor) <= 0) return;
    this.cursors[channel] = cursor;
    // The client's position was not one of this channel's: what it has, or missed, the relay cannot
    // tell. Its next message says so (and lets a client whose id is ahead take it, see the client).
    (this.#movedBack ??= new Set()).add(channel);
  }

  /** The registry ended one leg (deleted, conflict, timeout, closing, unavailable): end them all. */
  legEnded(channel: number, reason: EndReason, notice?: string): void {
    if (this.#done) return;
    this.#leaveAll();
    const id = this.channels[channel]!.id;
    this.#transport?.end(reason, this.#legs.length > 1 ? id : undefined, this.cursors, id, notice);
  }

  /** Writing to the client threw: forget every leg, and cut it. */
  abort(err: unknown): void {
    this.#leaveAll();
    this.#transport?.abort(err);
  }

  /** relay.disconnect(): ends the subscription now with `revoked` (long-poll 403, a stream's end, close 4403). */
  revoke(): void {
    if (this.#done) return;
    this.#leaveAll();
    this.#transport?.end('revoked', undefined, this.cursors);
  }

  /** The client left: forget every leg at once. */
  gone(): void {
    this.#leaveAll();
    this.#transport?.dispose();
  }

  #send(channel: number, message: StoredMessage): boolean {
    const before = this.cursors[channel];
    if (before && compareIds(before, message.id) >= 0) return false;
    this.cursors[channel] = message.id;
    const movedBack = this.#movedBack?.delete(channel) === true;
    const gapAfter = this.#signalsLoss && (movedBack || missedBefore(before, message)) ? before : undefined;
    this.#signalsLoss = true;
    this.#settings.counters.delivered++;
    const answered = this.#transport!.send(message, gapAfter, this.#legs.length > 1 ? formatComposite(this.cursors) : undefined, this.channels[channel]!.id);
    if (this.#settings.deletesReceived) this.#registry.received(this.#legs[channel]!.channel, message);
    return answered;
  }

  #leaveAll(): void {
    this.#done = true;
    this.#held = undefined;
    for (const leg of this.#legs) {
      leg.gone = true;
      this.#registry.remove(leg);
    }
  }
}
