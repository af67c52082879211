/**
 * Options: what users write, and the one place that validates them (TypeError naming the option, at
 * factory time) and resolves inheritance: `createPushRelay` options are the defaults of every
 * endpoint, `publisher()` / `subscriber()` options override them, as nginx's http/server/location do.
 */
import type { IncomingMessage } from 'node:http';
import type { BufferRules } from './protocol/buffer-rules.js';
import type { SubscriberMode } from './protocol/transport-choice.js';
import { describe, parseDuration, parseSize, type Duration, type Size } from './protocol/units.js';
import type { ChannelStore } from './store/channel-store.js';
import { log } from './log.js';
import { badPathSegment, repeatedIdArgument } from './protocol/answers.js';
import type { PaddingRule, TemplateSettings } from './protocol/templates.js';
import type { OriginRule } from './http/cors.js';

export type { SubscriberMode };

export type Concurrency = 'broadcast' | 'last' | 'first';
/**
 * nchan_subscriber_first_message: where a subscriber that sends no cursor starts. `'oldest'`: the oldest
 * stored message; `'newest'`: the next message published; `-N`: the N newest stored; `N`: the N-th oldest.
 */
export type FirstMessagePolicy = 'oldest' | 'newest' | number;
/** Which endpoint asks the authorize hook: `statistics` asks with '' (summary), `prefix*` (a listing) or each id. */
export type Role = 'publisher' | 'subscriber' | 'statistics';

/**
 * Turns a request (`Req`, see `createPushRelay`) into a channel id (nginx's `$push_channel_id`). Nothing or '' answers 400. A
 * subscriber's resolver may return up to 255 ids: the subscriber receives the messages of all of them
 * (multiplexing, docs/transports.md); a publisher's must name one.
 */
export type ChannelIdResolver<Req extends IncomingMessage = IncomingMessage> = (
  req: Req,
) => ChannelIds | Promise<ChannelIds>;

/**
 * What a channelId resolver returns: one id, or several; a subscriber's entries may also be
 * `{ id, backtrack: N }`: a request that names no position (no cursor headers, no Last-Event-ID)
 * starts that channel from its N newest stored messages (the Push Stream Module's `/sub/ch1.b5`);
 * one that names its position resumes from there, so a client may keep the same URL.
 */
export type ChannelIds = string | ChannelEntry | ReadonlyArray<string | ChannelEntry> | undefined | null;
export interface ChannelEntry {
  id: string;
  backtrack?: number | undefined;
}

/**
 * Which browser origins may use an endpoint (the forms of the `cors` package): `'*'`, one origin, a
 * list, a RegExp tested against the origin, or a function `(origin, req) => boolean`.
 */
export type AllowOrigin<Req extends IncomingMessage = IncomingMessage> = string | readonly string[] | RegExp | ((origin: string, req: Req) => boolean);

/**
 * Decides whether `req` may use the channel: `true` lets it through, anything else answers 403.
 * Throwing goes to `next(err)`.
 */
export type AuthorizeHook<Req extends IncomingMessage = IncomingMessage> = (req: Req, context: { channelId: string; role: Role }) => boolean | Promise<boolean>;

/** Options that apply to both endpoints. */
export interface CommonOptions<Req extends IncomingMessage = IncomingMessage> {
  /** The channel id of a request. @default the `id` query argument */
  channelId?: ChannelIdResolver<Req> | undefined;
  /** Access check per request, after the channel id is known. */
  authorize?: AuthorizeHook<Req> | undefined;
  /** push_channel_group: a namespace, so the same id names different channels on different endpoints. */
  channelGroup?: string | undefined;
  /** push_max_channel_id_length: longer ids answer 400 naming the limit. @default 512 */
  maxChannelIdLength?: number | undefined;
  /** push_channel_timeout: how long a channel with no messages and no subscribers lives. @default 0 (removed at once) */
  channelTimeout?: Duration | undefined;
  /**
   * CORS (Nchan's nchan_access_control_allow_origin, push_stream_allowed_origins): the browser
   * origins that may use this endpoint: `'*'`, one origin (`'https://app.example.com'`), a list, a
   * RegExp, or a function `(origin, req) => boolean`. Answers to an allowed origin carry
   * `Access-Control-Allow-Origin` and expose the cursor headers, and OPTIONS preflights get 200.
   * Except with `'*'`, credentials (cookies) are allowed too, answers carry `Vary: Origin`, and a
   * WebSocket upgrade from a page of another origin gets 403 (browsers apply no CORS to WebSockets).
   * @default none (OPTIONS answers 405)
   */
  allowOrigin?: AllowOrigin<Req> | undefined;
}

/** Options of `publisher()`. */
export interface PublisherOptions<Req extends IncomingMessage = IncomingMessage> extends CommonOptions<Req> {
  /** push_store_messages: false only delivers to subscribers waiting now. @default true */
  storeMessages?: boolean | undefined;
  /** push_min_message_buffer_length: the newest N messages are kept even when expired. @default 1 */
  minMessageBufferLength?: number | undefined;
  /** push_max_message_buffer_length: at most N messages per channel, oldest dropped first. @default 10 */
  maxMessageBufferLength?: number | undefined;
  /** push_message_buffer_length: sets both the minimum and the maximum. */
  messageBufferLength?: number | undefined;
  /** push_message_timeout: how long a message is stored; 0 = forever. @default '1h' */
  messageTimeout?: Duration | undefined;
  /** Largest message body; bigger ones answer 413 and are not read. @default '1mb' */
  maxMessageSize?: Size | undefined;
  /**
   * How long a publisher may take to send its message body; past it the request answers 408, nothing
   * is stored and the connection closes. Bounds slow-body (slowloris) publishers. 0 = no limit.
   * @default '30s'
   */
  bodyTimeout?: Duration | undefined;
  /**
   * Give every message of a channel its own `Last-Modified` second, so that a subscriber that only
   * echoes `Last-Modified` as `If-Modified-Since` (never `Etag`) skips nothing when several messages
   * are published in one second. The cost: in a burst, ids run ahead of the clock (100 messages in
   * one second end 99 seconds in the future), so `Last-Modified` stops being the publish time.
   * @default false
   */
  distinctSeconds?: boolean | undefined;
  /**
   * push_stream_channel_info_on_publish: a successful POST answers with the channel info (false: an
   * empty body, same status). @default true
   */
  channelInfoOnPublish?: boolean | undefined;
  /**
   * push_min_message_recipients (the push module before 0.691): on each publish, the oldest stored
   * message is deleted once it has been received this many times (the subscribers waiting when it
   * was published, plus each later answer that carried it), as long as more than
   * minMessageBufferLength remain. Never keeps a message past maxMessageBufferLength or its
   * messageTimeout. 0 = off. @default 0
   */
  minMessageRecipients?: number | undefined;
  /**
   * For trusted publishers only: a POST with `Content-Type: message/http` carries a whole HTTP
   * response (status line, headers, body), and long-poll subscribers are answered with exactly that
   * (2xx only; hop-by-hop headers and the framing are the relay's own). Streams get its body. A
   * malformed one answers 400 and stores nothing. @default false
   */
  messageHttp?: boolean | undefined;
}

/** Options of `subscriber()`. */
export interface SubscriberOptions<Req extends IncomingMessage = IncomingMessage> extends CommonOptions<Req> {
  /**
   * push_subscriber: pins the endpoint to one mechanism. 'long-poll' holds requests until a message
   * comes; 'interval-poll' answers 304 at once; the others stream (docs/transports.md).
   * @default unset: chosen per request (plain GET long-polls)
   */
  mode?: SubscriberMode | undefined;
  /** nchan_subscriber_first_message: where a subscriber without a cursor starts. @default 'oldest' */
  subscriberFirstMessage?: FirstMessagePolicy | undefined;
  /**
   * Keep-alive on open streams every this long, so proxies keep them: an EventSource comment, a
   * WebSocket ping (a socket that missed the previous pong is cut); 0 = none. @default '25s'
   */
  pingInterval?: Duration | undefined;
  /** push_subscriber_concurrency: 'last' answers 409 to older waiting requests, 'first' to newcomers. @default 'broadcast' */
  concurrency?: Concurrency | undefined;
  /** push_subscriber_timeout: a waiting request is answered 304 after this long; 0 = never. @default 0 */
  subscriberTimeout?: Duration | undefined;
  /** push_authorized_channels_only: subscribers get 403 until a publisher POSTs or PUTs the channel. @default false */
  authorizedChannelsOnly?: boolean | undefined;
  /** push_max_channel_subscribers: waiting requests per channel beyond this get 403; 0 = unlimited. @default 0 */
  maxChannelSubscribers?: number | undefined;
  /**
   * push_stream_wildcard_channel_max_qtd: a subscription may name at most this many wildcard
   * channels (see wildcardChannelPrefix), and must name at least one channel that is not one; else
   * 403. Needs the store's wildcardChannelPrefix. @default unset (no such check)
   */
  wildcardChannelMaxQtd?: number | undefined;
  /** nginx's default_type: Content-Type of messages published without one. @default none */
  defaultContentType?: string | undefined;
  /**
   * For pages that long-poll with plain `fetch`/XHR and leave `If-Modified-Since` / `If-None-Match` to
   * the browser's HTTP cache (rev 2.23 §1.1, "transparent to the web client"): answers carry
   * `Cache-Control: private, no-cache` and no `Vary` (with which Chromium revalidates with the Etag
   * alone), and a time-out answers `200` with an empty body and the cursor as `Last-Modified` / `Etag`,
   * instead of a `304` the browser would turn into its cached previous message. Clients that send the
   * headers themselves want the default. @default false
   */
  browserCache?: boolean | undefined;
  /**
   * push_delete_oldest_received_message: once a subscriber here receives the channel's oldest message,
   * delete it, as long as more than minMessageBufferLength remain (breaks GET idempotence). @default false
   */
  deleteOldestReceivedMessage?: boolean | undefined;
  /**
   * How much one stream (EventSource, chunked, multipart, raw, WebSocket) may leave unread before it
   * is cut: unwritten bytes plus 64 bytes (192 on a WebSocket) per queued write (see docs/transports.md, "Slow
   * clients"). A cut client reconnects and resumes from its last id. @default '4mb'
   */
  maxStreamBacklog?: Size | undefined;
  /**
   * TCP keep-alive on subscriber connections: the kernel probes a connection idle this long and resets
   * it when the client is gone, so a vanished client's long-poll or stream ends and frees its slot.
   * 0 = leave the socket as the server set it.
   * @default '30s'
   */
  tcpKeepAlive?: Duration | undefined;
  /**
   * Who a long-poll client is, for the `subscribe` / `unsubscribe` events and `relay.disconnect()`:
   * e.g. its session id. Its re-polls are then recognised by this key; without it, by the position
   * each poll sends back. @default none
   */
  presenceKey?: ((req: Req) => string | undefined) | undefined;
  /**
   * push_stream_header_template: text sent once when a stream opens (EventSource: as `:` comment
   * lines; WebSocket: a text frame), and before a long-poll's message. @default none
   */
  headerTemplate?: string | undefined;
  /**
   * push_stream_message_template: what each message becomes. Placeholders (any case): `~id~` (the
   * message's number in its channel: 1, 2, 3...; -1 ping, -2 channel deleted, -3 time-out),
   * `~channel~`, `~text~` (the body), `~size~`, `~time~`, `~tag~`, `~event-id~`, `~event-type~`.
   * @default none: the body as it is
   */
  messageTemplate?: string | undefined;
  /** push_stream_footer_template: text sent before the relay ends a stream, and after a long-poll's message. @default none */
  footerTemplate?: string | undefined;
  /** push_stream_ping_message_text: with a message template, a chunked or raw stream's keep-alive is the template applied to this (id -1). @default ' ' */
  pingMessageText?: string | undefined;
  /** push_stream_channel_deleted_message_text: with a message template, sent (id -2) when the channel is deleted. A DELETE's body replaces it. @default 'Channel deleted' */
  channelDeletedMessageText?: string | undefined;
  /** push_stream_timeout_with_body: a long-poll time-out answers 200 with the template applied to 'Timed out' (id -3) instead of 304. @default false */
  timeoutWithBody?: boolean | undefined;
  /**
   * push_stream_padding_by_user_agent: for browsers that show nothing until they hold so many bytes,
   * a stream's header and messages are padded (in 100-byte steps) to the first matching rule's sizes.
   * @default none
   */
  padding?: ReadonlyArray<{ userAgent: RegExp; header: number; message: number }> | undefined;
  /**
   * JSONP for long-poll and interval-poll: a request with this query argument is answered
   * `application/javascript`, `name([message]);` (the message template's output, or the body as a
   * JSON string without one). Names other than dotted JavaScript identifiers (at most 128
   * characters) answer 400. `false` turns JSONP off. @default 'callback'
   */
  jsonpCallback?: string | false | undefined;
  /**
   * push_stream_last_received_message_time / _tag / push_stream_last_event_id: query arguments read
   * as the cursor when the request has no `If-Modified-Since` / `If-None-Match` / `Last-Event-ID`
   * (for clients that cannot set headers). @default { eventId: 'last_event_id' }
   */
  cursorArguments?: { time?: string | undefined; tag?: string | undefined; eventId?: string | undefined } | undefined;
  /**
   * push_stream_websocket_allow_publish: a text message from a WebSocket subscriber is published to
   * every channel of the connection (authorize is asked with role 'publisher'). @default false
   */
  websocketPublish?: boolean | undefined;
  /** Most messages per second one WebSocket may publish; beyond it, close 1008. @default 20 */
  websocketPublishRate?: number | undefined;
}

/**
 * Options of `statistics()`: the common options it shares with the other endpoints (`authorize` is
 * asked with role 'statistics' and channelId '' for the summary, 'prefix*' for a listing, or each id;
 * `channelGroup` limits listings to that group), and splitChannelIds.
 */
export interface StatisticsOptions<Req extends IncomingMessage = IncomingMessage>
  extends Pick<CommonOptions<Req>, 'channelId' | 'authorize' | 'channelGroup' | 'maxChannelIdLength' | 'allowOrigin'> {
  /** Reads one id argument as several, split at this separator (`'/'`: `?id=a/b/c`, as the Push Stream Module does). @default none */
  splitChannelIds?: string | undefined;
}

/** Options of `createPushRelay()`: the store, plus defaults for every endpoint. */
export interface PushRelayOptions<Req extends IncomingMessage = IncomingMessage> extends PublisherOptions<Req>, SubscriberOptions<Req> {
  /** Where channels live. @default new MemoryStore({ maxReservedMemory }) */
  store?: ChannelStore | undefined;
  /** push_max_reserved_memory of the default MemoryStore. @default '32mb' */
  maxReservedMemory?: Size | undefined;
  /**
   * push_stream_max_number_of_channels, for the default MemoryStore: the most channels at once;
   * creating one more (a publish, a PUT, a subscriber) answers 403 naming the limit. With a store of
   * your own, give it to the store (`new RedisStore({ maxChannels })`). @default 0 (unlimited)
   */
  maxChannels?: number | undefined;
  /**
   * push_stream_wildcard_channel_prefix, for the default MemoryStore: channels whose id starts with it
   * are wildcard channels, counted apart (maxWildcardChannels, not maxChannels), open to subscribers
   * under authorizedChannelsOnly, and shown apart in the statistics. With a store of your own, give it
   * to the store. @default none
   */
  wildcardChannelPrefix?: string | undefined;
  /** push_stream_max_number_of_wildcard_channels, for the default MemoryStore. @default 0 (unlimited) */
  maxWildcardChannels?: number | undefined;
  /**
   * How much every stream of the relay may leave unread together; past it the slowest streams are
   * cut first (they resume from their last id). Bounds what slow or hostile readers can make the
   * process hold. @default '64mb'
   */
  maxTotalBacklog?: Size | undefined;
  /**
   * How much every publish body being received may hold together, across the relay (bytes count as
   * they arrive); past it a publish answers 503 with `Retry-After`. Bounds what many slow publishers
   * can make the process hold. No publisher's maxMessageSize may exceed it. @default '64mb'
   */
  maxTotalBodies?: Size | undefined;
  /**
   * How long a long-poll client may take to come back with its next poll before it counts as gone
   * (one `unsubscribe` event). @default '5s'
   */
  presenceGrace?: Duration | undefined;
  /**
   * push_stream_events_channel_id: a channel into which the relay publishes `channel_created`,
   * `channel_destroyed`, `client_subscribed` and `client_unsubscribed` events as JSON (docs/events.md).
   * Publishers can only read it (GET); subscribers get 403 unless allowConnectionsToEventsChannel.
   * @default none
   */
  eventsChannel?: string | undefined;
  /** push_stream_allow_connections_to_events_channel. @default false */
  allowConnectionsToEventsChannel?: boolean | undefined;
}

export interface ResolvedCommon {
  channelId: ChannelIdResolver;
  authorize: AuthorizeHook | undefined;
  channelGroup: string | undefined;
  maxChannelIdLength: number;
  channelTimeout: number;
  allowOrigin: OriginRule | undefined;
}
export interface ResolvedStatistics extends ResolvedCommon {
  splitChannelIds: string | undefined;
}
export interface ResolvedPublisher extends ResolvedCommon {
  rules: BufferRules;
  maxMessageSize: number;
  bodyTimeout: number;
  distinctSeconds: boolean;
  channelInfoOnPublish: boolean;
  messageHttp: boolean;
}
export interface ResolvedSubscriber extends ResolvedCommon {
  /** undefined: chosen per request. */
  mode: SubscriberMode | undefined;
  subscriberFirstMessage: FirstMessagePolicy;
  pingInterval: number;
  concurrency: Concurrency;
  subscriberTimeout: number;
  authorizedChannelsOnly: boolean;
  maxChannelSubscribers: number;
  defaultContentType: string | undefined;
  browserCache: boolean;
  deleteOldestReceivedMessage: boolean;
  maxStreamBacklog: number;
  tcpKeepAlive: number;
  presenceKey: ((req: IncomingMessage) => string | undefined) | undefined;
  wildcardChannelMaxQtd: number | undefined;
  templates: TemplateSettings;
  /** The JSONP query argument, or undefined when off. */
  jsonpCallback: string | undefined;
  cursorArguments: CursorArguments;
  websocketPublish: boolean;
  websocketPublishRate: number;
}

/** Query arguments read as the cursor when headers are absent. */
export interface CursorArguments {
  time: string | undefined;
  tag: string | undefined;
  eventId: string | undefined;
}

const COMMON_KEYS = ['channelId', 'authorize', 'channelGroup', 'maxChannelIdLength', 'channelTimeout', 'allowOrigin'] as const;
const PUBLISHER_KEYS = [
  'storeMessages',
  'minMessageBufferLength',
  'maxMessageBufferLength',
  'messageBufferLength',
  'messageTimeout',
  'maxMessageSize',
  'bodyTimeout',
  'distinctSeconds',
  'channelInfoOnPublish',
  'minMessageRecipients',
  'messageHttp',
] as const;
const SUBSCRIBER_KEYS = [
  'mode',
  'subscriberFirstMessage',
  'pingInterval',
  'concurrency',
  'subscriberTimeout',
  'authorizedChannelsOnly',
  'maxChannelSubscribers',
  'defaultContentType',
  'browserCache',
  'deleteOldestReceivedMessage',
  'maxStreamBacklog',
  'tcpKeepAlive',
  'presenceKey',
  'wildcardChannelMaxQtd',
  'headerTemplate',
  'messageTemplate',
  'footerTemplate',
  'pingMessageText',
  'channelDeletedMessageText',
  'timeoutWithBody',
  'padding',
  'jsonpCallback',
  'cursorArguments',
  'websocketPublish',
  'websocketPublishRate',
] as const;
const STATISTICS_KEYS = ['splitChannelIds'] as const;
const RELAY_KEYS = ['store', 'maxReservedMemory', 'maxChannels', 'wildcardChannelPrefix', 'maxWildcardChannels', 'maxTotalBacklog', 'maxTotalBodies', 'presenceGrace', 'eventsChannel', 'allowConnectionsToEventsChannel'] as const;

const ORIGIN = /^[a-z][a-z0-9+.-]*:\/\/[^/\s,]+$/i;

/** Validators: each throws a TypeError naming the option, or returns nothing. */
const check: Record<string, (value: unknown, name: string) => void> = {
  channelId: fn,
  authorize: fn,
  channelGroup: (v, name) => {
    if (typeof v !== 'string' || v === '' || v.includes('/')) fail(name, 'a non-empty string without "/"', v);
  },
  maxChannelIdLength: positiveInt,
  allowOrigin: (v, name) => {
    if (v === '*' || typeof v === 'function' || v instanceof RegExp) return;
    const origins = Array.isArray(v) ? v : [v];
    if ((Array.isArray(v) && v.length === 0) || !origins.every((o) => typeof o === 'string' && ORIGIN.test(o))) {
      fail(name, "'*', an origin such as 'https://app.example.com' (scheme://host[:port], no path), a list of them, a RegExp or a function", v);
    }
  },
  channelTimeout: parseDuration,
  deleteOldestReceivedMessage: bool,
  storeMessages: bool,
  minMessageBufferLength: count,
  maxMessageBufferLength: count,
  messageBufferLength: count,
  messageTimeout: parseDuration,
  maxMessageSize: parseSize,
  bodyTimeout: parseDuration,
  distinctSeconds: bool,
  channelInfoOnPublish: bool,
  minMessageRecipients: count,
  messageHttp: bool,
  headerTemplate: text,
  messageTemplate: (v, name) => {
    if (typeof v !== 'string' || v === '') fail(name, 'a non-empty string', v);
  },
  footerTemplate: text,
  pingMessageText: text,
  channelDeletedMessageText: text,
  timeoutWithBody: bool,
  padding: (v, name) => {
    const ok = Array.isArray(v) && v.every((r) => r && typeof r === 'object' && r.userAgent instanceof RegExp && Number.isSafeInteger(r.header) && r.header >= 0 && Number.isSafeInteger(r.message) && r.message >= 0);
    if (!ok) fail(name, 'a list of { userAgent: RegExp, header: bytes, message: bytes }', v);
  },
  jsonpCallback: (v, name) => {
    if (v !== false && !(typeof v === 'string' && /^[\w.$-]{1,64}$/.test(v))) fail(name, 'a query argument name, or false', v);
  },
  cursorArguments: (v, name) => {
    const ok = v !== null && typeof v === 'object' && Object.entries(v).every(([k, a]) => ['time', 'tag', 'eventId'].includes(k) && (a === undefined || (typeof a === 'string' && /^[\w.$-]{1,64}$/.test(a))));
    if (!ok) fail(name, "{ time?, tag?, eventId? }, each a query argument name", v);
  },
  websocketPublish: bool,
  websocketPublishRate: positiveInt,
  mode: oneOf('long-poll', 'interval-poll', 'eventsource', 'chunked', 'multipart', 'raw-stream', 'websocket'),
  subscriberFirstMessage: (v, name) => {
    if (v !== 'oldest' && v !== 'newest' && !(Number.isSafeInteger(v) && v !== 0)) fail(name, "'oldest', 'newest' or a whole number other than 0", v);
  },
  pingInterval: parseDuration,
  concurrency: oneOf('broadcast', 'last', 'first'),
  subscriberTimeout: parseDuration,
  authorizedChannelsOnly: bool,
  maxChannelSubscribers: count,
  defaultContentType: (v, name) => {
    if (typeof v !== 'string' || !/^[\w!#$&^.+-]+\/[\w!#$&^.+-]+(\s*;.*)?$/.test(v)) fail(name, 'a media type such as "text/plain"', v);
  },
  browserCache: bool,
  store: (v, name) => {
    const s = v as Record<string, unknown> | null;
    const methods = ['publish', 'create', 'next', 'startCursor', 'received', 'info', 'delete', 'join', 'leave', 'watch', 'close'];
    if (!s || typeof s !== 'object' || methods.some((m) => typeof s[m] !== 'function')) fail(name, `a ChannelStore (with ${methods.join(', ')})`, v);
  },
  maxReservedMemory: parseSize,
  maxStreamBacklog: positiveSize,
  tcpKeepAlive: parseDuration,
  maxChannels: count,
  wildcardChannelPrefix: (v, name) => {
    if (typeof v !== 'string' || v === '') fail(name, 'a non-empty string', v);
  },
  maxWildcardChannels: count,
  wildcardChannelMaxQtd: count,
  splitChannelIds: (v, name) => {
    if (typeof v !== 'string' || v === '') fail(name, "a separator such as '/'", v);
  },
  maxTotalBacklog: positiveSize,
  maxTotalBodies: positiveSize,
  presenceKey: fn,
  presenceGrace: parseDuration,
  eventsChannel: (v, name) => {
    if (typeof v !== 'string' || v === '') fail(name, 'a channel id (a non-empty string)', v);
  },
  allowConnectionsToEventsChannel: bool,
};

type AnyOptions = Record<string, unknown>;

const debug = log('relay');

/** Durations whose nginx directive counts seconds: a small bare number there is likely a mistake. */
const SECONDS_IN_NGINX: Record<string, string> = {
  subscriberTimeout: 'push_subscriber_timeout',
  messageTimeout: 'push_message_timeout',
  channelTimeout: 'push_channel_timeout',
  pingInterval: 'nchan_ping_interval',
};

const warnedSeconds = new Set<string>();

/**
 * `subscriberTimeout: 30` is 30 ms here, where nginx's directive means 30 s: a process warning says
 * so, once per option and value. A string (`'30ms'`) says what was meant, and is not warned about.
 */
function warnIfSeconds(key: string, value: unknown, where: string): void {
  const directive = SECONDS_IN_NGINX[key];
  if (!directive || typeof value !== 'number' || value <= 0 || value >= 1000 || warnedSeconds.has(`${key}=${value}`)) return;
  warnedSeconds.add(`${key}=${value}`);
  const text = `push-relay: option "${key}" of ${where} is ${value} ms: a number is milliseconds (nginx's ${directive} counts seconds); write '${value}s' if you meant seconds, or '${value}ms' to keep it`;
  debug('warning: %s', text);
  process.emitWarning(text, { code: 'PUSH_RELAY_MILLISECONDS' });
}

/** Validates `options` given to `where`, allowing `keys`; unknown keys are typos and throw. */
export function validateOptions(options: unknown, where: string, keys: readonly string[]): AnyOptions {
  if (options === undefined) return {};
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new TypeError(`push-relay: ${where} options must be an object (got ${describe(options)})`);
  }
  const allowed = new Set(keys);
  for (const [key, value] of Object.entries(options)) {
    if (!allowed.has(key)) {
      const elsewhere = ([...PUBLISHER_KEYS, ...SUBSCRIBER_KEYS, ...RELAY_KEYS, ...STATISTICS_KEYS] as readonly string[]).includes(key);
      throw new TypeError(
        elsewhere
          ? `push-relay: option "${key}" does not apply to ${where}`
          : `push-relay: unknown option "${key}" for ${where}${suggest(key, keys)}`,
      );
    }
    if (value !== undefined) {
      check[key]!(value, key);
      warnIfSeconds(key, value, where);
    }
  }
  return options as AnyOptions;
}

export const relayOptionKeys = [...COMMON_KEYS, ...PUBLISHER_KEYS, ...SUBSCRIBER_KEYS, ...RELAY_KEYS];
export const publisherOptionKeys = [...COMMON_KEYS, ...PUBLISHER_KEYS];
export const subscriberOptionKeys = [...COMMON_KEYS, ...SUBSCRIBER_KEYS];
export const statisticsOptionKeys = ['channelId', 'authorize', 'channelGroup', 'maxChannelIdLength', 'allowOrigin', ...STATISTICS_KEYS];

/** Statistics settings: the relay's common options (channelId, authorize...) and the endpoint's. */
export function resolveStatistics(levels: AnyOptions[]): ResolvedStatistics {
  return { ...resolveCommon(levels), splitChannelIds: pick<string | undefined>(levels, 'splitChannelIds', undefined) };
}

function resolveCommon(levels: AnyOptions[]): ResolvedCommon {
  const get = <T>(key: string, fallback: T): T => pick(levels, key, fallback);
  return {
    channelId: get<ChannelIdResolver>('channelId', channelIdFromQuery),
    authorize: get<AuthorizeHook | undefined>('authorize', undefined),
    channelGroup: get<string | undefined>('channelGroup', undefined),
    maxChannelIdLength: get('maxChannelIdLength', 512),
    channelTimeout: parseDuration(get<Duration>('channelTimeout', 0), 'channelTimeout'),
    allowOrigin: get<OriginRule | undefined>('allowOrigin', undefined),
  };
}

/** Publisher settings from the relay's options and the endpoint's (later levels win). */
export function resolvePublisher(levels: AnyOptions[]): ResolvedPublisher {
  let min = 1;
  let max = 10;
  for (const level of levels) {
    // push_message_buffer_length sets both; an explicit min or max on the same level refines it.
    if (level.messageBufferLength !== undefined) min = max = level.messageBufferLength as number;
    if (level.minMessageBufferLength !== undefined) min = level.minMessageBufferLength as number;
    if (level.maxMessageBufferLength !== undefined) max = level.maxMessageBufferLength as number;
  }
  if (min > max) {
    throw new TypeError(`push-relay: option "minMessageBufferLength" (${min}) is larger than "maxMessageBufferLength" (${max})`);
  }
  const common = resolveCommon(levels);
  const recipients = pick(levels, 'minMessageRecipients', 0);
  return {
    ...common,
    rules: {
      storeMessages: pick(levels, 'storeMessages', true),
      minMessages: min,
      maxMessages: max,
      messageTimeout: parseDuration(pick<Duration>(levels, 'messageTimeout', '1h'), 'messageTimeout'),
      channelTimeout: common.channelTimeout,
      ...(recipients > 0 ? { minRecipients: recipients } : {}),
    },
    maxMessageSize: parseSize(pick<Size>(levels, 'maxMessageSize', '1mb'), 'maxMessageSize'),
    bodyTimeout: parseDuration(pick<Duration>(levels, 'bodyTimeout', '30s'), 'bodyTimeout'),
    distinctSeconds: pick(levels, 'distinctSeconds', false),
    channelInfoOnPublish: pick(levels, 'channelInfoOnPublish', true),
    messageHttp: pick(levels, 'messageHttp', false),
  };
}

/** Subscriber settings from the relay's options and the endpoint's (later levels win). */
export function resolveSubscriber(levels: AnyOptions[]): ResolvedSubscriber {
  return {
    ...resolveCommon(levels),
    mode: pick<SubscriberMode | undefined>(levels, 'mode', undefined),
    subscriberFirstMessage: pick<FirstMessagePolicy>(levels, 'subscriberFirstMessage', 'oldest'),
    pingInterval: parseDuration(pick<Duration>(levels, 'pingInterval', '25s'), 'pingInterval'),
    concurrency: pick(levels, 'concurrency', 'broadcast'),
    subscriberTimeout: parseDuration(pick<Duration>(levels, 'subscriberTimeout', 0), 'subscriberTimeout'),
    authorizedChannelsOnly: pick(levels, 'authorizedChannelsOnly', false),
    maxChannelSubscribers: pick(levels, 'maxChannelSubscribers', 0),
    defaultContentType: pick<string | undefined>(levels, 'defaultContentType', undefined),
    browserCache: pick(levels, 'browserCache', false),
    deleteOldestReceivedMessage: pick(levels, 'deleteOldestReceivedMessage', false),
    maxStreamBacklog: parseSize(pick<Size>(levels, 'maxStreamBacklog', '4mb'), 'maxStreamBacklog'),
    tcpKeepAlive: parseDuration(pick<Duration>(levels, 'tcpKeepAlive', '30s'), 'tcpKeepAlive'),
    presenceKey: pick<((req: IncomingMessage) => string | undefined) | undefined>(levels, 'presenceKey', undefined),
    wildcardChannelMaxQtd: pick<number | undefined>(levels, 'wildcardChannelMaxQtd', undefined),
    templates: {
      header: pick<string | undefined>(levels, 'headerTemplate', undefined) || undefined,
      message: pick<string | undefined>(levels, 'messageTemplate', undefined),
      footer: pick<string | undefined>(levels, 'footerTemplate', undefined) || undefined,
      pingMessageText: pick(levels, 'pingMessageText', ' '),
      channelDeletedMessageText: pick(levels, 'channelDeletedMessageText', 'Channel deleted'),
      timeoutWithBody: pick(levels, 'timeoutWithBody', false),
      padding: pick<PaddingRule[]>(levels, 'padding', []),
    },
    jsonpCallback: pick<string | false>(levels, 'jsonpCallback', 'callback') || undefined,
    cursorArguments: { time: undefined, tag: undefined, eventId: 'last_event_id', ...pick<Partial<CursorArguments>>(levels, 'cursorArguments', {}) },
    websocketPublish: pick(levels, 'websocketPublish', false),
    websocketPublishRate: pick(levels, 'websocketPublishRate', 20),
  };
}

/**
 * The default resolver: the `id` query argument, read from `req.url` (works without Express). An `id`
 * given twice (`?id=a&id=b`) answers 400: one of them would be dropped silently. Subscribing to
 * several channels takes a resolver that returns an array on purpose.
 */
export function channelIdFromQuery(req: IncomingMessage): string | undefined {
  const url = req.url ?? '';
  const q = url.indexOf('?');
  if (q < 0) return undefined;
  const found = findArgument(url, q + 1, 'id');
  if (!found) return undefined;
  if (found.more) throw repeatedIdArgument();
  return found.value;
}

/**
 * A resolver for channels named in the path, as the Push Stream Module's URLs do:
 * `channelsFromPath({ prefix: '/sub' })` reads `/sub/ch1.b5/ch2` as `ch1` with a backtrack of 5 and
 * `ch2` (a `.bN` suffix is a backtrack; an id that merely contains `.b` stays an id). Without the
 * prefix in the path (an Express router mounted there), the whole path is read. Segments are
 * URL-decoded; empty ones are skipped.
 */
export function channelsFromPath(options: { prefix?: string } = {}): ChannelIdResolver {
  const prefix = (options.prefix ?? '').replace(/\/+$/, '');
  if (prefix !== '' && !prefix.startsWith('/')) throw new TypeError(`push-relay: channelsFromPath() prefix must start with "/" (got ${JSON.stringify(options.prefix)})`);
  return (req) => {
    const url = req.url ?? '/';
    let path = url.split(/[?#]/, 1)[0]!;
    if (prefix && (path === prefix || path.startsWith(`${prefix}/`))) path = path.slice(prefix.length);
    const entries: ChannelEntry[] = [];
    for (const segment of path.split('/')) {
      if (segment === '') continue;
      let text: string;
      try {
        text = decodeURIComponent(segment);
      } catch {
        throw badPathSegment(segment);
      }
      const m = /^(.+)\.b(\d{1,9})$/.exec(text);
      entries.push(m ? { id: m[1]!, backtrack: Number(m[2]) } : { id: text });
    }
    if (entries.length === 0) return undefined;
    const plain = entries.map((e) => (e.backtrack === undefined ? e.id : e));
    return plain.length === 1 ? plain[0] : plain;
  };
}

/** The first `name=` argument of the query starting at `from`, decoded like URLSearchParams. */
export function queryArgument(url: string, from: number, name: string): string | undefined {
  return findArgument(url, from, name)?.value;
}

/**
 * The first `name=` argument, and whether another follows; on every request, so no allocation but
 * the result.
 */
function findArgument(url: string, from: number, name: string): { value: string; more: boolean } | undefined {
  // Encoded names or values: let URLSearchParams decode exactly as the WHATWG URL spec says.
  if (url.includes('%', from)) {
    const all = new URLSearchParams(url.slice(from).split('#', 1)[0]).getAll(name);
    return all.length === 0 ? undefined : { value: all[0]!, more: all.length > 1 };
  }
  let found: string | undefined;
  let start = from;
  while (start <= url.length) {
    let end = url.indexOf('&', start);
    if (end < 0) end = url.length;
    const hash = url.indexOf('#', start);
    if (hash >= 0 && hash < end) end = hash;
    if (end - start >= name.length && (end - start === name.length || url.charCodeAt(start + name.length) === 61) /* = */ && url.startsWith(name, start)) {
      if (found !== undefined) return { value: found, more: true };
      const raw = end - start === name.length ? '' : url.slice(start + name.length + 1, end);
      found = raw.includes('+') ? raw.replaceAll('+', ' ') : raw;
    }
    if (end === url.length || url.charCodeAt(end) === 35 /* # */) break;
    start = end + 1;
  }
  return found === undefined ? undefined : { value: found, more: false };
}

function pick<T>(levels: AnyOptions[], key: string, fallback: T): T {
  for (let i = levels.length - 1; i >= 0; i--) {
    const v = levels[i]![key];
    if (v !== undefined) return v as T;
  }
  return fallback;
}

function fail(name: string, expected: string, value: unknown): never {
  throw new TypeError(`push-relay: option "${name}" must be ${expected} (got ${describe(value)})`);
}
function fn(v: unknown, name: string): void {
  if (typeof v !== 'function') fail(name, 'a function', v);
}
function positiveSize(v: unknown, name: string): void {
  if (parseSize(v, name) < 1) fail(name, 'a size above 0', v);
}
function text(v: unknown, name: string): void {
  if (typeof v !== 'string') fail(name, 'a string', v);
}
function bool(v: unknown, name: string): void {
  if (typeof v !== 'boolean') fail(name, 'true or false', v);
}
function count(v: unknown, name: string): void {
  if (!Number.isSafeInteger(v) || (v as number) < 0) fail(name, 'a whole number >= 0', v);
}
function positiveInt(v: unknown, name: string): void {
  if (!Number.isSafeInteger(v) || (v as number) < 1) fail(name, 'a whole number >= 1', v);
}
function oneOf(...values: string[]) {
  return (v: unknown, name: string) => {
    if (!values.includes(v as string)) fail(name, `one of ${values.map((x) => `'${x}'`).join(', ')}`, v);
  };
}

/** " (did you mean "x"?)" for a likely typo. */
function suggest(key: string, keys: readonly string[]): string {
  const lower = key.toLowerCase();
  let best: string | undefined;
  let bestScore = Infinity;
  for (const k of keys) {
    const d = distance(lower, k.toLowerCase());
    if (d < bestScore) [best, bestScore] = [k, d];
  }
  return best && bestScore <= Math.max(2, Math.floor(key.length / 4)) ? ` (did you mean "${best}"?)` : '';
}

function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length]!;
}
