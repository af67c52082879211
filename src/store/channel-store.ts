/**
 * The `ChannelStore` interface: everything the relay needs from where channels live. `MemoryStore`
 * (one process) and `RedisStore` (many processes and hosts) implement it; docs/store.md explains how
 * to write another. The store owns message ids and their order; the relay owns sockets and time-outs
 * of waiting requests.
 */
import type { BufferRules } from '../protocol/buffer-rules.js';
import type { ChannelInfo } from '../protocol/channel-info.js';
import type { MessageId } from '../protocol/message-id.js';
import type { HttpResponseHead } from '../protocol/message-http.js';

export type { BufferRules };

/** What a publisher sends. */
export interface NewMessage {
  data: Buffer;
  contentType: string | undefined;
  /** EventSource `event:` name, if the publisher gave one (`X-EventSource-Event`, `Event-Type`). */
  eventType?: string | undefined;
  /**
   * The publisher's own id for the message (`Event-Id`), any text: `~event-id~` in templates, and a
   * subscriber's `Last-Event-ID` naming it resumes after the message (see ChannelStore.findEventId).
   */
  eventId?: string | undefined;
  /**
   * The publisher's `Idempotency-Key`: while a message published with the same key is still stored
   * in the channel, publishing again stores nothing and answers that message (`duplicate`).
   */
  idempotencyKey?: string | undefined;
  /**
   * Give the message a unix second of its own (the publisher's `distinctSeconds`): when the channel's
   * last message has this second or a later one, the new one takes the next second, tag 0, so that a
   * subscriber echoing only `Last-Modified` skips nothing. Ids then run ahead of the clock in bursts.
   */
  distinctSecond?: boolean | undefined;
  /** Left out of the store's all-time publish count (the events channel's own messages are). */
  uncounted?: boolean | undefined;
  /**
   * A `message/http` publish (messageHttp): the status and headers long-poll subscribers are
   * answered with; `data` is the response's body. Stores keep it with the message.
   */
  response?: HttpResponseHead | undefined;
}

/** A message as stored, with the id the store gave it. Never mutated once published. */
export interface StoredMessage extends NewMessage {
  readonly id: MessageId;
  /**
   * Id of the message published right before this one on the channel (stored or not); undefined for
   * the channel's first. A subscriber whose cursor is older than this missed messages (loss signal).
   */
  readonly previousId: MessageId | undefined;
  /**
   * The message's sequence number in its channel: 1 for the first one the channel was ever published,
   * then 2, 3... (`~id~` in templates). Given atomically with the id; a store may leave it undefined.
   */
  readonly seq?: number | undefined;
}

export interface PublishResult {
  /** The message published, or, for a `duplicate`, the one published earlier with the same key. */
  message: StoredMessage;
  /** True when an earlier publish with the same idempotency key is still stored: nothing was published. */
  duplicate?: boolean;
  /** Channel info after the publish; `subscribers` is the count of waiting subscribers it goes to. */
  info: ChannelInfo;
}

export interface NextResult {
  /** Whether the channel exists (push_authorized_channels_only refuses subscribers otherwise). */
  exists: boolean;
  /** The first stored message after the cursor (the oldest when the cursor is undefined). */
  message: StoredMessage | undefined;
  /**
   * Set when the cursor was ahead of every id the channel has given (see cursorAhead() of
   * protocol/cursor.ts): the position the read was made from instead, which the subscriber's cursor
   * becomes. A store that leaves it out keeps such subscribers waiting until its ids pass the cursor.
   */
  ahead?: MessageId | undefined;
}

/** What a waiting subscriber asks of the channel before it parks. */
export interface JoinRequest {
  /** Unique among every subscriber of every process sharing the store. */
  subscriberId: string;
  concurrency: 'broadcast' | 'last' | 'first';
  /** 0 = unlimited. */
  maxSubscribers: number;
  /** False under push_authorized_channels_only: joining must not create the channel. */
  create: boolean;
  /** push_channel_timeout (ms) of the subscriber endpoint, for a channel this join creates. */
  channelTimeout: number;
}

/**
 * What nextOrJoin() did: answered the stored message after the cursor, or (none there) joined;
 * `ahead` as in NextResult.
 */
export type NextOrJoinResult = { message: StoredMessage; joined?: undefined } | { message?: undefined; joined: JoinResult; ahead?: MessageId | undefined };

export type JoinResult =
  /**
   * `newest`, optional: the channel's newest id when the subscriber was counted in. A store whose
   * join takes a round trip sets it, so that of the messages whose wake-ups came meanwhile, only
   * those published after the subscriber was counted (told to their publishers) are due to it
   * when the store did not keep them.
   */
  | { ok: true; newest?: MessageId | undefined }
  /** `full`: maxSubscribers reached (403); `conflict`: concurrency `first` and one is waiting (409);
   *  `missing`: the channel does not exist and `create` was false (403). */
  | { ok: false; reason: 'full' | 'conflict' | 'missing' };

/**
 * Wake-ups the store sends to whoever watches a channel, in the order things happened.
 * - `message`: a message was published. `previous` is the newest message the store held right before
 *   it (undefined if it held none), so a waiting subscriber whose cursor is at or after `previous`
 *   knows `message` is its next one; an older cursor must read from the store instead.
 * - `deleted`: the channel was deleted: waiting subscribers get 410.
 * - `conflict`: concurrency `last`: every waiting subscriber but `keep` gets 409.
 * - `resync`: wake-ups may have been missed (the store lost its connection and got it back): every
 *   waiting subscriber re-reads from its cursor.
 */
export type ChannelEvent =
  | { type: 'message'; message: StoredMessage; previous: MessageId | undefined }
  /** `text`: the DELETE's own notice (its request body), when it gave one. */
  | { type: 'deleted'; text?: string | undefined }
  | { type: 'conflict'; keep: string }
  | { type: 'resync' }
  /** A store-wide broadcast (only on the store's broadcast channel, see ChannelStore.onBroadcast). */
  | { type: 'broadcast'; text: string };

export type ChannelListener = (channel: string, event: ChannelEvent) => void;

/** One channel as listed by the statistics (relay.channels(), the statistics endpoint). */
export interface ChannelStats {
  /** The store's name of the channel. */
  channel: string;
  /** Messages published to the channel since it was created. */
  published: number;
  /** Messages stored now. */
  messages: number;
  /** Waiting subscribers, of every process sharing the store. */
  subscribers: number;
}

/** One process sharing the store, as the statistics summary shows it. */
export interface StoreWorker {
  pid: number;
  hostname: string;
  /** Its waiting subscribers (with RedisStore: as of its last heartbeat, this process's own now). */
  subscribers: number;
  /** Epoch ms when its store was made. */
  since: number;
}

/** Store-wide figures of the statistics summary. */
export interface StoreSummary {
  /** Messages published since the store's data began, by every process (uncounted ones left out). */
  published: number;
  /** Epoch ms since when the store's data exists (with RedisStore: the first process on an empty Redis). */
  since: number;
  /** Every live process sharing the store, this one included. */
  workers: StoreWorker[];
}

/** A channel came into being (a publish, a PUT, a subscriber) or was removed (DELETE, idle, expired). */
export interface LifecycleEvent {
  type: 'created' | 'destroyed';
  /** The store's name of the channel. */
  channel: string;
}

export interface ChannelStore {
  /** Allocates the next id atomically, stores (per `rules`), trims, and wakes watchers. Creates the channel. */
  publish(channel: string, message: NewMessage, rules: BufferRules): Promise<PublishResult>;
  /** Creates the channel if missing (PUT); publishes nothing. */
  create(channel: string, rules: BufferRules): Promise<ChannelInfo>;
  /** The first stored message after `after` (oldest if undefined); records that a subscriber asked. */
  next(channel: string, after: MessageId | undefined): Promise<NextResult>;
  /**
   * A cursor for a subscriber's first request under Nchan's first-message policy: `next()` from it
   * answers the `newest`-th newest stored message (1 = the newest), or, for 0, waits for the next
   * message published. undefined (= from the oldest) when fewer are stored or the channel is missing.
   */
  startCursor(channel: string, newest: number): Promise<MessageId | undefined>;
  /** push_delete_oldest_received_message: drop `id` if it is the oldest and more than `minMessages` remain. */
  received(channel: string, id: MessageId): Promise<void>;
  /**
   * Optional: the id of the oldest stored message published with `Event-Id: eventId`, or undefined;
   * a subscriber whose `Last-Event-ID` is not a message id but such an Event-Id resumes after it.
   */
  findEventId?(channel: string, eventId: string): Promise<MessageId | undefined>;
  /** Channel info, or undefined if the channel does not exist. */
  info(channel: string): Promise<ChannelInfo | undefined>;
  /**
   * Deletes the channel and its messages and wakes watchers with `deleted` (carrying `notice`, the
   * DELETE's request body, when given); undefined if it did not exist.
   */
  delete(channel: string, notice?: string): Promise<ChannelInfo | undefined>;
  /** Counts a waiting subscriber in, applying concurrency and the subscriber limit atomically. */
  join(channel: string, request: JoinRequest): Promise<JoinResult>;
  /**
   * Optional, a long-poll's two steps in one: the first stored message after `after` if there is one
   * (as next(), nothing joined), else join(). A store that can do both atomically in one round trip
   * (RedisStore: one script) saves a round trip per long-poll request. It may answer with the result
   * itself instead of a Promise when it has it at hand (MemoryStore always does, RedisStore when it
   * needs no round trip): the long-poll is then answered or parked without waiting a turn of the
   * event loop. It must not throw where it could reject instead, but a throw is handled like one.
   */
  nextOrJoin?(channel: string, after: MessageId | undefined, request: JoinRequest): NextOrJoinResult | Promise<NextOrJoinResult>;
  /** Counts waiting subscribers out (answered, timed out, or gone), one call per fan-out. Idempotent per id. */
  leave(channel: string, subscriberIds: readonly string[]): Promise<void>;
  /**
   * Starts delivering the channel's events to `listener`; resolves once delivery is live, so that a
   * read made afterwards cannot miss a message. The returned function stops it.
   */
  watch(channel: string, listener: ChannelListener): Promise<() => void>;
  /** Releases timers and connections. */
  /**
   * Optional: sends `text` to every relay sharing this store (with RedisStore, in every process), for
   * `relay.disconnect()`. A store without it serves one process: relays then act on their own.
   */
  broadcast?(text: string): Promise<void>;
  /** Optional, with broadcast(): calls `listener` with every broadcast, this process's own included. */
  onBroadcast?(listener: (text: string) => void): Promise<() => void>;
  /**
   * Optional, for statistics: the channels whose store name starts with `prefix`, page by page (each
   * page a bounded amount of work; the event loop runs between pages). Channels created or removed
   * meanwhile may or may not be listed; none is listed twice.
   */
  listChannels?(prefix: string): AsyncIterable<ChannelStats[]>;
  /** Optional, for statistics: each of `channels`, or undefined where it does not exist. */
  channelStats?(channels: readonly string[]): Promise<Array<ChannelStats | undefined>>;
  /** Optional, for statistics: the store-wide figures. */
  summary?(): Promise<StoreSummary>;
  /**
   * Optional: calls `listener` when a channel is created or removed, exactly once per event among
   * every process sharing the store (the process that caused it, or one of them, reports it).
   */
  onLifecycle?(listener: (event: LifecycleEvent) => void): Promise<() => void>;
  close(): Promise<void>;
}
