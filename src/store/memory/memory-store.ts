/**
 * MemoryStore: channels in this process's memory. The default store; enough for one process.
 * For several processes or hosts, use RedisStore (`push-relay/redis`).
 */
import { hostname } from 'node:os';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { ChannelInfo } from '../../protocol/channel-info.js';
import { storeClosed, storeFull, tooManyChannelsInStore } from '../../protocol/answers.js';
import { log } from '../../log.js';
import { cursorAhead } from '../../protocol/cursor.js';
import { compareIds, firstId, nextId, type MessageId } from '../../protocol/message-id.js';
import { TimerWheel } from '../../timer-wheel.js';
import { formatSize, parseSize, type Size } from '../../protocol/units.js';
import { DEFAULT_BUFFER_RULES, expiryOf, isExpired } from '../../protocol/buffer-rules.js';
import type {
  BufferRules,
  ChannelEvent,
  ChannelListener,
  ChannelStats,
  ChannelStore,
  LifecycleEvent,
  JoinRequest,
  JoinResult,
  NewMessage,
  NextOrJoinResult,
  NextResult,
  PublishResult,
  StoredMessage,
  StoreSummary,
} from '../channel-store.js';
import { MemoryChannel, type QueuedMessage } from './memory-channel.js';
import { isWildcardKey } from '../../protocol/channel-id.js';
import { checkWildcardOptions } from '../wildcard-options.js';

const debug = log('store');

/**
 * What the store counts against maxReservedMemory besides bodies and names, from the heap growth
 * measured on Node 20 under three floods (empty channels by PUT, 1-byte messages to new channels,
 * subscribers multiplexing 255 new channels each): about 450 B per empty channel, 400 B per stored
 * message (the Buffer, the message and its queue entry), 1,000 B per waiting subscriber (the store's
 * entry and the relay's own for it).
 */
export const CHANNEL_OVERHEAD = 480;
export const MESSAGE_OVERHEAD = 400;
export const SUBSCRIBER_OVERHEAD = 1024;

export interface MemoryStoreOptions {
  /**
   * push_max_reserved_memory: the most memory the store holds at once: messages (bodies, headers and
   * their objects), channels (their objects and names) and waiting subscribers. When a publish does
   * not fit, expired messages are dropped first; if it still does not fit, the request that would
   * need more (a publish, a new channel, a new subscriber) gets 507 Insufficient Storage.
   * @default '32mb'
   */
  maxReservedMemory?: Size | undefined;
  /**
   * push_stream_max_number_of_channels: the most channels at once. Creating one more (a publish, a
   * PUT, a subscriber) answers 403 naming the limit; existing channels keep working. 0 = unlimited.
   * @default 0
   */
  maxChannels?: number | undefined;
  /**
   * push_stream_wildcard_channel_prefix: channels whose id starts with it are wildcard channels,
   * counted apart from maxChannels (under maxWildcardChannels) and shown apart in the statistics.
   * @default none
   */
  wildcardChannelPrefix?: string | undefined;
  /** push_stream_max_number_of_wildcard_channels: the most wildcard channels at once; 0 = unlimited. @default 0 */
  maxWildcardChannels?: number | undefined;
  /** Clock, for tests. @default Date.now */
  now?: (() => number) | undefined;
}

const MEMORY_OPTIONS = new Set(['maxReservedMemory', 'maxChannels', 'wildcardChannelPrefix', 'maxWildcardChannels', 'now']);

export class MemoryStore implements ChannelStore {
  readonly maxReservedMemory: number;
  readonly maxChannels: number;
  readonly wildcardChannelPrefix: string | undefined;
  readonly maxWildcardChannels: number;
  readonly #now: () => number;
  readonly #channels = new Map<string, MemoryChannel>();
  readonly #listeners = new Map<string, Set<ChannelListener>>();
  readonly #timers: TimerWheel<MemoryChannel>;
  /** Channels that keep expired messages only because of minMessages: first to go under memory pressure. */
  readonly #holdingExpired = new Set<MemoryChannel>();
  /** Last ids of channels removed during the current second (see #remove). */
  readonly #removedIds = new Map<string, MessageId>();
  /** The second #removedIds was last pruned in. */
  #removedPrunedSecond = 0;
  #bytes = 0;
  /** Waiting subscribers on every channel (for the statistics summary, without walking the channels). */
  #subscribers = 0;
  /** Wildcard channels among #channels. */
  #wildcards = 0;
  /** Messages published since the store was made (uncounted ones left out). */
  #published = 0;
  readonly #since: number;
  readonly #lifecycleListeners = new Set<(event: LifecycleEvent) => void>();
  #pending: Array<[string, ChannelEvent]> = [];
  #flushScheduled = false;
  #closed = false;

  constructor(options: MemoryStoreOptions = {}) {
    if (options === null || typeof options !== 'object') throw new TypeError('push-relay: MemoryStore options must be an object');
    for (const key of Object.keys(options)) {
      if (!MEMORY_OPTIONS.has(key)) throw new TypeError(`push-relay: unknown MemoryStore option "${key}" (known: ${[...MEMORY_OPTIONS].join(', ')})`);
    }
    this.maxReservedMemory = parseSize(options.maxReservedMemory ?? '32mb', 'maxReservedMemory');
    const maxChannels = options.maxChannels ?? 0;
    if (!Number.isSafeInteger(maxChannels) || maxChannels < 0) throw new TypeError(`push-relay: MemoryStore option "maxChannels" must be a whole number >= 0, got ${JSON.stringify(maxChannels)}`);
    this.maxChannels = maxChannels;
    const wildcard = checkWildcardOptions(options, 'MemoryStore');
    this.wildcardChannelPrefix = wildcard.prefix;
    this.maxWildcardChannels = wildcard.max;
    this.#now = options.now ?? Date.now;
    this.#timers = new TimerWheel(250, (channel) => this.#settle(channel), this.#now);
    this.#since = this.#now();
  }

  /** Bytes the store counts now (what maxReservedMemory limits: messages, channels, subscribers). */
  get reservedBytes(): number {
    return this.#bytes;
  }

  /** Channels that exist now. */
  get channelCount(): number {
    return this.#channels.size;
  }

  async publish(name: string, input: NewMessage, rules: BufferRules): Promise<PublishResult> {
    const now = this.#now();
    let channel = this.#channels.get(name);
    if (channel) this.#settle(channel, now);
    const created = !this.#channels.has(name);
    const key = input.idempotencyKey;
    const known = key !== undefined ? channel?.keys?.get(key) : undefined;
    if (channel && known) {
      debug('publish %s: idempotency key already stored (%d:%d), nothing published', name, known.message.id.time, known.message.id.tag);
      return { message: known.message, info: channel.info(now), duplicate: true };
    }
    channel = this.#channels.get(name) ?? this.#create(name, rules);
    channel.rules = rules;
    const previous = channel.queue.at(-1)?.message.id;
    const second = Math.floor(now / 1000);
    const continuing = channel.lastMessageId ?? channel.idFloor;
    // A channel recreated within its old self's last second continues after that one's last id, and
    // names it as previous: a subscriber still behind it gets the loss signal.
    const { id, previousId } = continuing ? { id: nextId(continuing, second, input.distinctSecond), previousId: continuing } : firstId(second, (now % 1000) * 1000);
    const seq = channel.published + 1;
    // Two literals rather than a spread: this runs on every publish.
    const message: StoredMessage = input.response
      ? { id, previousId, data: input.data, contentType: input.contentType, eventType: input.eventType, eventId: input.eventId, seq, response: input.response }
      : { id, previousId, data: input.data, contentType: input.contentType, eventType: input.eventType, eventId: input.eventId, seq };
    if (rules.storeMessages && rules.maxMessages > 0) {
      const size = sizeOf(message) + (key?.length ?? 0);
      try {
        this.#reserve(size, now, channel);
      } catch (err) {
        // A refused publish (507) must not leave behind the empty channel it created.
        if (created) this.#remove(channel);
        throw err;
      }
      this.#bytes += size;
      const entry: QueuedMessage = { message, expiresAt: expiryOf(now, rules), size, key, received: channel.subscribers.size };
      if (key !== undefined) (channel.keys ??= new Map()).set(key, entry);
      this.#release(channel, channel.append(entry));
    }
    channel.lastMessageId = id;
    channel.published++;
    if (!input.uncounted) this.#published++;
    if (channel.isIdle) channel.idleSince ??= now;
    const info = channel.info(now);
    this.#emit(name, { type: 'message', message, previous });
    this.#settle(channel, now);
    debug('publish %s %d:%d (%d bytes) to %d waiting', name, id.time, id.tag, input.data.length, info.subscribers);
    return { message, info };
  }

  async create(name: string, rules: BufferRules): Promise<ChannelInfo> {
    const now = this.#now();
    const existing = this.#channels.get(name);
    if (existing) this.#settle(existing, now);
    let channel = this.#channels.get(name);
    if (!channel) {
      channel = this.#create(name, rules);
      // A channel created empty by PUT starts its idle clock only if it has one; with channelTimeout 0
      // ("remove at once") it lives until it has been used and emptied, or PUT would be a no-op.
      if (rules.channelTimeout > 0) {
        channel.idleSince = now;
        this.#settle(channel, now);
      }
    }
    return channel.info(now);
  }

  async next(name: string, after: MessageId | undefined): Promise<NextResult> {
    const channel = this.#live(name);
    const now = this.#now();
    const ahead = cursorAhead(after, this.#newestId(name, channel), Math.floor(now / 1000));
    if (!channel) return ahead ? { exists: false, message: undefined, ahead } : { exists: false, message: undefined };
    channel.lastRequested = now;
    if (ahead) return { exists: true, message: undefined, ahead };
    return { exists: true, message: channel.next(after, now) };
  }

  async startCursor(name: string, newest: number): Promise<MessageId | undefined> {
    const channel = this.#live(name);
    if (newest <= 0) return this.#newestId(name, channel);
    if (!channel) return undefined;
    const now = this.#now();
    // The n-th newest served message is answered first: start right before it.
    let seen = 0;
    for (let i = channel.queue.length - 1; i >= 0; i--) {
      const entry = channel.queue[i]!;
      if (isExpired(entry.expiresAt, i, channel.queue.length, channel.rules.minMessages, now)) break;
      if (++seen === newest) return i > 0 ? channel.queue[i - 1]!.message.id : entry.message.previousId;
    }
    return undefined;
  }

  async findEventId(name: string, eventId: string): Promise<MessageId | undefined> {
    const channel = this.#live(name);
    if (!channel) return undefined;
    const now = this.#now();
    const q = channel.queue;
    for (let i = 0; i < q.length; i++) {
      const entry = q[i]!;
      if (entry.message.eventId === eventId && !isExpired(entry.expiresAt, i, q.length, channel.rules.minMessages, now)) return entry.message.id;
    }
    return undefined;
  }

  async received(name: string, id: MessageId): Promise<void> {
    const channel = this.#live(name);
    const oldest = channel?.queue[0];
    if (!channel || !oldest || compareIds(oldest.message.id, id) !== 0) return;
    if (channel.queue.length <= channel.rules.minMessages) return;
    this.#release(channel, channel.queue.splice(0, 1));
    this.#markIfIdle(channel);
    this.#settle(channel);
  }

  async info(name: string): Promise<ChannelInfo | undefined> {
    return this.#live(name)?.info(this.#now());
  }

  async delete(name: string, notice?: string): Promise<ChannelInfo | undefined> {
    const channel = this.#live(name);
    if (!channel) return undefined;
    const info = channel.info(this.#now());
    this.#remove(channel);
    this.#emit(name, notice === undefined ? { type: 'deleted' } : { type: 'deleted', text: notice });
    debug('delete %s', name);
    return info;
  }

  async join(name: string, request: JoinRequest): Promise<JoinResult> {
    return this.#join(name, this.#live(name), request);
  }

  /**
   * A long-poll's read and join in one call, answered at once (no Promise: MemoryStore has the answer
   * at hand, and a long-poll request should not wait a turn of the event loop for it).
   */
  nextOrJoin(name: string, after: MessageId | undefined, request: JoinRequest): NextOrJoinResult {
    const channel = this.#live(name);
    const now = this.#now();
    const ahead = cursorAhead(after, this.#newestId(name, channel), Math.floor(now / 1000));
    if (channel) {
      channel.lastRequested = now;
      const message = ahead ? undefined : channel.next(after, now);
      if (message) return { message };
    }
    const joined = this.#join(name, channel, request);
    if (ahead) return { joined, ahead };
    return joined.ok ? JOINED : { joined };
  }

  /**
   * The newest id the channel named `name` has given: its last message's, else that of a channel of
   * this name removed while its ids ran ahead of the clock (`distinctSecond`), which new ids follow.
   */
  #newestId(name: string, channel: MemoryChannel | undefined): MessageId | undefined {
    if (channel) return channel.lastMessageId ?? channel.idFloor;
    const removed = this.#removedIds.size > 0 ? this.#removedIds.get(name) : undefined;
    // Remembered until its second is over (pruned lazily): as RedisStore's key of it expires then.
    return removed && removed.time >= Math.floor(this.#now() / 1000) ? removed : undefined;
  }

  /** Counts a subscriber in on `channel` (the live channel named `name`, if it exists). */
  #join(name: string, existing: MemoryChannel | undefined, request: JoinRequest): JoinResult {
    let channel = existing;
    if (!channel) {
      if (!request.create) return { ok: false, reason: 'missing' };
      channel = this.#create(name, { ...DEFAULT_BUFFER_RULES, channelTimeout: request.channelTimeout });
    }
    const waiting = channel.subscribers.size;
    if (request.concurrency === 'first' && waiting > 0) return this.#refuse(channel, 'conflict');
    if (request.concurrency !== 'last' && request.maxSubscribers > 0 && waiting >= request.maxSubscribers) {
      return this.#refuse(channel, 'full');
    }
    const cost = subscriberCost(request.subscriberId);
    try {
      this.#reserve(cost, this.#now());
    } catch (err) {
      this.#refuse(channel, 'full');
      throw err;
    }
    this.#bytes += cost;
    if (!channel.subscribers.has(request.subscriberId)) this.#subscribers++;
    channel.subscribers.add(request.subscriberId);
    channel.lastRequested = this.#now();
    // An idle channel's removal clock stops: settle swaps it for its next message expiry, if any.
    if (channel.idleSince !== undefined) this.#settle(channel);
    if (request.concurrency === 'last' && waiting > 0) this.#emit(name, { type: 'conflict', keep: request.subscriberId });
    return JOIN_OK;
  }

  async leave(name: string, subscriberIds: readonly string[]): Promise<void> {
    const channel = this.#channels.get(name);
    if (!channel) return;
    let left = 0;
    for (const id of subscriberIds) {
      if (!channel.subscribers.delete(id)) continue;
      left++;
      this.#subscribers--;
      this.#bytes -= subscriberCost(id);
    }
    if (left === 0) return;
    this.#markIfIdle(channel);
    this.#settle(channel);
  }

  async watch(name: string, listener: ChannelListener): Promise<() => void> {
    let set = this.#listeners.get(name);
    if (!set) this.#listeners.set(name, (set = new Set()));
    set.add(listener);
    return () => {
      const current = this.#listeners.get(name);
      if (current?.delete(listener) && current.size === 0) this.#listeners.delete(name);
    };
  }

  readonly #broadcastListeners = new Set<(text: string) => void>();

  async broadcast(text: string): Promise<void> {
    if (this.#closed) throw storeClosed();
    for (const listener of [...this.#broadcastListeners]) {
      try {
        listener(text);
      } catch (err) {
        debug('a broadcast listener threw: %s', err);
      }
    }
  }

  async onBroadcast(listener: (text: string) => void): Promise<() => void> {
    this.#broadcastListeners.add(listener);
    return () => void this.#broadcastListeners.delete(listener);
  }

  async *listChannels(prefix: string): AsyncGenerator<ChannelStats[]> {
    // A live iterator: channels added meanwhile come later, removed ones are skipped, none twice.
    const channels = this.#channels.values();
    let page: ChannelStats[] = [];
    let examined = 0;
    for (const channel of channels) {
      if (channel.name.startsWith(prefix)) {
        this.#settle(channel);
        if (this.#channels.get(channel.name) === channel) page.push(statsOf(channel));
      }
      if (++examined < LIST_STEP) continue;
      examined = 0;
      if (page.length > 0) yield page;
      page = [];
      await nextTurn();
    }
    if (page.length > 0) yield page;
  }

  async channelStats(names: readonly string[]): Promise<Array<ChannelStats | undefined>> {
    return names.map((name) => {
      const channel = this.#live(name);
      return channel && statsOf(channel);
    });
  }

  async summary(): Promise<StoreSummary> {
    return { published: this.#published, since: this.#since, workers: [{ pid: process.pid, hostname: hostname(), subscribers: this.#subscribers, since: this.#since }] };
  }

  async onLifecycle(listener: (event: LifecycleEvent) => void): Promise<() => void> {
    this.#lifecycleListeners.add(listener);
    return () => void this.#lifecycleListeners.delete(listener);
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#lifecycleListeners.clear();
    this.#broadcastListeners.clear();
    this.#timers.clear();
    this.#channels.clear();
    this.#wildcards = 0;
    this.#subscribers = 0;
    this.#removedIds.clear();
    this.#holdingExpired.clear();
    this.#listeners.clear();
    this.#pending = [];
    this.#bytes = 0;
  }

  // ---------------------------------------------------------------------------------------------

  #create(name: string, rules: BufferRules): MemoryChannel {
    if (this.#closed) throw storeClosed();
    const wildcard = isWildcardKey(name, this.wildcardChannelPrefix);
    if (wildcard) {
      if (this.maxWildcardChannels > 0 && this.#wildcards >= this.maxWildcardChannels) throw tooManyChannelsInStore(this.maxWildcardChannels, 'maxWildcardChannels');
    } else if (this.maxChannels > 0 && this.#channels.size - this.#wildcards >= this.maxChannels) {
      throw tooManyChannelsInStore(this.maxChannels);
    }
    const cost = channelCost(name);
    this.#reserve(cost, this.#now());
    this.#bytes += cost;
    const channel = new MemoryChannel(name, rules);
    const removed = this.#removedIds.get(name);
    if (removed) {
      this.#removedIds.delete(name);
      if (removed.time >= Math.floor(this.#now() / 1000)) channel.idFloor = removed;
    }
    this.#channels.set(name, channel);
    if (wildcard) this.#wildcards++;
    this.#lifecycle('created', name);
    return channel;
  }

  /** Told once the current operation is over (a listener may publish: never inside another publish). */
  #lifecycle(type: LifecycleEvent['type'], channel: string): void {
    if (this.#lifecycleListeners.size === 0) return;
    queueMicrotask(() => {
      for (const listener of this.#lifecycleListeners) {
        try {
          listener({ type, channel });
        } catch (err) {
          debug('a channel %s listener threw: %s', type, err);
        }
      }
    });
  }

  /** The channel if it exists once expiry and the channel time-out have been applied. */
  #live(name: string): MemoryChannel | undefined {
    const channel = this.#channels.get(name);
    if (channel) this.#settle(channel);
    return this.#channels.get(name);
  }

  /**
   * Applies the clock to a channel: drops expired messages, starts the idle clock when it empties,
   * removes it when idle for channelTimeout, and schedules its next wake-up.
   */
  #settle(channel: MemoryChannel, now = this.#now()): void {
    if (this.#channels.get(channel.name) !== channel) return;
    const expired = channel.expire(now);
    if (expired.length > 0) {
      this.#release(channel, expired);
      if (channel.isIdle && channel.idleSince === undefined) channel.idleSince = Math.min(now, expired.at(-1)!.expiresAt);
    }
    if (!channel.isIdle) channel.idleSince = undefined;
    if (channel.holdsExpired(now)) this.#holdingExpired.add(channel);
    else this.#holdingExpired.delete(channel);

    if (channel.idleSince !== undefined) {
      const removeAt = channel.idleSince + channel.rules.channelTimeout;
      if (removeAt <= now) {
        debug('channel %s idle for %dms: removed', channel.name, now - channel.idleSince);
        this.#remove(channel);
        return;
      }
      this.#timers.schedule(channel, removeAt);
      return;
    }
    const expiry = channel.nextExpiry(now);
    if (expiry !== Infinity) this.#timers.schedule(channel, expiry);
    else this.#timers.cancel(channel);
  }

  /** Starts the idle clock of a channel that just lost its last message or subscriber. */
  #markIfIdle(channel: MemoryChannel): void {
    if (channel.isIdle) channel.idleSince ??= this.#now();
  }

  /** A join refused: a channel it created for nothing goes again. */
  #refuse(channel: MemoryChannel, reason: 'full' | 'conflict'): JoinResult {
    this.#markIfIdle(channel);
    this.#settle(channel);
    return { ok: false, reason };
  }

  /**
   * Makes room for `size` more bytes, dropping expired messages first; 507 if it still does not fit.
   * `channel`: the channel a message is published to (its oldest may be pushed out by the publish).
   */
  #reserve(size: number, now: number, channel?: MemoryChannel): void {
    const pushedOut = channel && channel.queue.length + 1 > channel.rules.maxMessages ? (channel.queue[0]?.size ?? 0) : 0;
    if (this.#bytes + size - pushedOut <= this.maxReservedMemory) return;
    for (const holder of this.#holdingExpired) {
      const dropped = holder.expireRetained(now);
      this.#release(holder, dropped);
      // Emptied: its idle clock runs from when its newest message expired, as expire() would set it.
      if (holder.isIdle && dropped.length > 0) holder.idleSince ??= Math.min(now, dropped.at(-1)!.expiresAt);
      this.#holdingExpired.delete(holder);
      if (holder !== channel) this.#settle(holder, now);
      if (this.#bytes + size - pushedOut <= this.maxReservedMemory) return;
    }
    // A protocol answer (507 with a clear body), written directly rather than passed to next(err).
    throw storeFull(
      `store full: ${formatSize(size)} more ${channel ? 'for a message ' : ''}does not fit in maxReservedMemory ` +
        `(${formatSize(this.maxReservedMemory)}, ${formatSize(this.#bytes)} in use by messages, channels and waiting subscribers)`,
    );
  }

  /** Forgets `entries`, dropped from `channel`'s queue. */
  #release(channel: MemoryChannel, entries: QueuedMessage[]): void {
    for (const entry of entries) {
      this.#bytes -= entry.size;
      if (entry.key !== undefined && channel.keys?.get(entry.key) === entry) channel.keys.delete(entry.key);
    }
  }

  #remove(channel: MemoryChannel): void {
    this.#timers.cancel(channel);
    this.#holdingExpired.delete(channel);
    this.#release(channel, channel.queue);
    this.#bytes -= channelCost(channel.name);
    for (const id of channel.subscribers) this.#bytes -= subscriberCost(id);
    this.#subscribers -= channel.subscribers.size;
    this.#channels.delete(channel.name);
    if (isWildcardKey(channel.name, this.wildcardChannelPrefix)) this.#wildcards--;
    this.#lifecycle('destroyed', channel.name);
    // A channel recreated within the same second must not hand out its old ids again: a subscriber
    // holding `T:0` would skip the new `T:0`. Remember the last id until its second is over.
    const last = channel.lastMessageId ?? channel.idFloor;
    const second = Math.floor(this.#now() / 1000);
    if (last && last.time >= second) {
      // Pruned once per second, not per removal: a flood of removals within one second stays linear.
      if (second > this.#removedPrunedSecond) {
        this.#removedPrunedSecond = second;
        for (const [k, id] of this.#removedIds) if (id.time < second) this.#removedIds.delete(k);
      }
      this.#removedIds.set(channel.name, last);
    }
  }

  /**
   * Events are delivered in order once the current call and the promise continuations it wakes have
   * run (so the publisher middleware writes its answer first), and before any other I/O: a fan-out
   * never waits behind the rest of a busy event-loop turn (a setImmediate would wait for up to 1,024
   * other sockets' requests).
   */
  #emit(name: string, event: ChannelEvent): void {
    if (!this.#listeners.has(name)) return;
    this.#pending.push([name, event]);
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      process.nextTick(() => this.#flush());
    }
  }

  #flush(): void {
    this.#flushScheduled = false;
    const pending = this.#pending;
    this.#pending = [];
    for (const [name, event] of pending) {
      const listeners = this.#listeners.get(name);
      if (!listeners) continue;
      for (const listener of listeners) {
        try {
          listener(name, event);
        } catch (err) {
          process.emitWarning(err instanceof Error ? err : new Error(String(err)), 'PushRelayListenerWarning');
        }
      }
    }
  }
}

const JOIN_OK: JoinResult = Object.freeze({ ok: true });
const JOINED: NextOrJoinResult = Object.freeze({ joined: JOIN_OK });

/** Channels examined per page of listChannels(): about a millisecond of work. */
const LIST_STEP = 500;

function statsOf(channel: MemoryChannel): ChannelStats {
  return { channel: channel.name, published: channel.published, messages: channel.queue.length, subscribers: channel.subscribers.size };
}

function channelCost(name: string): number {
  return CHANNEL_OVERHEAD + 2 * name.length;
}

function subscriberCost(id: string): number {
  return SUBSCRIBER_OVERHEAD + 2 * id.length;
}

function sizeOf(message: StoredMessage): number {
  return message.data.length + (message.contentType?.length ?? 0) + (message.eventType?.length ?? 0) + (message.eventId?.length ?? 0) + responseSize(message) + MESSAGE_OVERHEAD;
}

/** Bytes of a message/http message's status and headers. */
function responseSize(message: StoredMessage): number {
  if (!message.response) return 0;
  let n = 16;
  for (const [name, value] of message.response.headers) n += name.length + value.length + 32;
  return n;
}
