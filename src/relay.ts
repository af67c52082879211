/**
 * `createPushRelay(options)`: one channel space (a store) and the middlewares that serve it.
 */
import { validateHeaderValue, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import { RelayContext, type ChannelLifecycleEvent, type RelayEventName, type RelayListener } from './endpoints/context.js';
import { publisherMiddleware } from './endpoints/publisher.js';
import { subscriberMiddleware } from './endpoints/subscriber.js';
import { statisticsMiddleware } from './endpoints/statistics.js';
import { listPages, summarize, wildcardPrefixOf, type StatisticsScope } from './statistics/collect.js';
import type { ChannelStatistics, StatisticsSummary } from './protocol/statistics.js';
import { formatExposition, registerFamilies, type MetricFamily, type PromRegistry } from './statistics/metrics.js';
import { answerError, type Middleware } from './http/respond.js';
import { handleUpgrade, type UpgradeApp } from './http/upgrade.js';
import { log } from './log.js';
import {
  publisherOptionKeys,
  relayOptionKeys,
  resolveStatistics,
  statisticsOptionKeys,
  resolvePublisher,
  subscriberOptionKeys,
  resolveSubscriber,
  validateOptions,
  type PublisherOptions,
  type PushRelayOptions,
  type StatisticsOptions,
  type SubscriberOptions,
} from './options.js';
import { noSuchEndpoint } from './protocol/answers.js';
import { parseDuration, parseSize, type Duration } from './protocol/units.js';
import { channelKey, checkChannelId, idOfKey } from './protocol/channel-id.js';
import type { SubscriberEvent } from './subscriptions/presence.js';
import type { ChannelInfo } from './protocol/channel-info.js';
import type { ChannelStore } from './store/channel-store.js';
import { MemoryStore } from './store/memory/memory-store.js';

const debug = log('relay');

export interface PublishOptions {
  /** Content-Type the message's subscribers get. */
  contentType?: string | undefined;
  /** EventSource `event:` name. */
  eventType?: string | undefined;
  /** The message's own id, as the `Event-Id` header of an HTTP publish: `~event-id~`, and a `Last-Event-ID` naming it resumes after it. */
  eventId?: string | undefined;
  /** Channel group, if not the relay's. */
  channelGroup?: string | undefined;
  /**
   * As the `Idempotency-Key` header of an HTTP publish: while a message published with this key is
   * still stored in the channel, publishing again stores nothing (so a retry never duplicates).
   */
  idempotencyKey?: string | undefined;
}

/**
 * A relay. `Req` is the request type its hooks (`channelId`, `authorize`) see and its middlewares
 * take: `IncomingMessage` unless you name your framework's, e.g. `createPushRelay<express.Request>()`.
 */
/**
 * What `relay.handler()` returns: a request listener for `http.createServer()`, `https.createServer()`,
 * and `http2.createServer()` / `http2.createSecureServer()` (their compatibility API).
 */
export type RequestListener = (req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse) => void;

export interface PushRelay<Req extends IncomingMessage = IncomingMessage> {
  /** The publisher middleware: POST publishes, PUT creates, GET informs, DELETE deletes. */
  publisher(options?: PublisherOptions<Req>): Middleware<Req>;
  /** The subscriber middleware: GET waits for (or polls) the next message. */
  subscriber(options?: SubscriberOptions<Req>): Middleware<Req>;
  /**
   * The statistics middleware (push_stream_channels_statistics), GET only: no id, the summary; `ALL`,
   * `*` or `prefix*`, the channels listed; one id or several, those channels. JSON, text, XML or
   * YAML by `Accept`. The authorize hook is asked with role 'statistics'. See docs/statistics.md.
   */
  statistics(options?: StatisticsOptions<Req>): Middleware<Req>;
  /**
   * Metrics in the Prometheus text format: publishes and deliveries of this process, its subscribers by
   * transport, the store's channels and stored messages, store errors and latency. Serve it as
   * `res.type('text/plain; version=0.0.4').send(await relay.metrics())`. See docs/statistics.md.
   */
  metrics(): Promise<string>;
  /** The same metrics, registered on a prom-client registry your app already serves. */
  registerMetrics(registry: PromRegistry): void;
  /** The statistics summary, as the statistics endpoint answers it without an id. */
  stats(): Promise<StatisticsSummary>;
  /**
   * The channels (of `channelGroup`, default the relay's) whose id starts with `prefix`, at most
   * `limit` of them, read from the store page by page.
   */
  channels(options?: { prefix?: string | undefined; limit?: number | undefined; channelGroup?: string | undefined }): AsyncIterable<ChannelStatistics>;
  /** Publishes from inside the app, with the relay's publisher options; resolves to channel info. */
  publish(channelId: string, data: string | Uint8Array, options?: PublishOptions): Promise<ChannelInfo>;
  /** Channel info, or undefined when the channel does not exist. */
  channelInfo(channelId: string, options?: { channelGroup?: string | undefined }): Promise<ChannelInfo | undefined>;
  /** Deletes a channel (its waiting subscribers get 410); undefined when it did not exist. */
  deleteChannel(channelId: string, options?: { channelGroup?: string | undefined }): Promise<ChannelInfo | undefined>;
  /**
   * A request handler for a `node:http` server: routes by exact path
   * (`{ '/publish': relay.publisher(), '/activity': relay.subscriber() }`); any other path goes to
   * `fallback` (an Express or Connect app, say), or gets 404 without one. The routes are served
   * without the app's middlewares, at the speed of a bare `node:http` server: their hooks see a plain
   * `IncomingMessage` (no `req.params`, no session), so routes here come from a relay of that type.
   */
  handler(routes: Record<string, Middleware<IncomingMessage>>, fallback?: (req: IncomingMessage, res: ServerResponse) => void): RequestListener;
  /**
   * Serves WebSocket subscribers: takes the `upgrade` events of `server` and dispatches each upgrade
   * request through `app` (default: the server's own request handler), so that the subscriber route's
   * resolver, authorize hook and options apply; upgrades no subscriber claims get an HTTP answer.
   * Needs the optional `ws` package: resolves once it is loaded, rejects when it is not installed.
   * Once per server. See docs/transports.md "WebSocket".
   */
  handleUpgrade(server: Server | HttpsServer, app?: UpgradeApp): Promise<void>;
  /**
   * Answers every waiting subscriber (a long-poll gets 503 with Retry-After, a stream its end notice,
   * a WebSocket close code 1001) and refuses new requests. Resolves once the store has counted them
   * out (with RedisStore: in Redis, so that other processes stop counting them), waiting at most
   * `timeout` (default '5s'); closes the store if the relay made it.
   */
  close(options?: { timeout?: Duration | undefined }): Promise<void>;
  /**
   * Lifecycle events: `subscribe` / `unsubscribe` (`{ channel, transport, subscriberId, req }`; a
   * long-poll client's re-polls are one presence, see presenceGrace) and `publish` (`{ channel, id,
   * size, contentType, eventType }`). A listener that throws is logged (push-relay:events) and does
   * not touch delivery. See docs/events.md.
   */
  on<K extends RelayEventName>(type: K, listener: RelayListener<K>): this;
  off<K extends RelayEventName>(type: K, listener: RelayListener<K>): this;
  /**
   * Ends the matching subscribers now (all filters given must match): a long-poll answers 403, an
   * EventSource gets a `push-relay-end` event `revoked`, a WebSocket close code 4403; push-relay/client
   * does not reconnect. With a store shared by several processes (RedisStore), in every process. It
   * does not stop them from subscribing again: that is the authorize hook's job.
   */
  disconnect(filter: { channel?: string | undefined; channelGroup?: string | undefined; subscriberId?: string | undefined; presenceKey?: string | undefined }): Promise<void>;
  /** The store in use. */
  readonly store: ChannelStore;
}

/**
 * Makes a relay: one channel space (a store) and the middlewares that serve it. Options given here are
 * the defaults of every endpoint. Name your framework's request type to type the hooks:
 * `createPushRelay<express.Request<{ room: string }>>({ channelId: (req) => req.params.room })`.
 */
export function createPushRelay<Req extends IncomingMessage = IncomingMessage>(options: PushRelayOptions<Req> = {}): PushRelay<Req> {
  const global = validateOptions(options, 'createPushRelay()', relayOptionKeys);
  for (const key of ['maxReservedMemory', 'maxChannels', 'wildcardChannelPrefix', 'maxWildcardChannels'] as const) {
    if (options.store && options[key] !== undefined) {
      throw new TypeError(`push-relay: option "${key}" configures the default MemoryStore; give it to your store instead`);
    }
  }
  const ownsStore = !options.store;
  const store =
    options.store ??
    new MemoryStore({
      maxReservedMemory: options.maxReservedMemory ?? '32mb',
      maxChannels: options.maxChannels ?? 0,
      wildcardChannelPrefix: options.wildcardChannelPrefix,
      maxWildcardChannels: options.maxWildcardChannels,
    });
  // Resolve the relay-level settings now so that a bad combination fails here, not on first use.
  const defaults = resolvePublisher([global]);
  resolveSubscriber([global]);
  const eventsChannel = options.eventsChannel === undefined ? undefined : checkChannelId(options.eventsChannel, defaults);
  const core = new RelayContext(
    store,
    parseSize(options.maxTotalBacklog ?? '64mb', 'maxTotalBacklog'),
    parseSize(options.maxTotalBodies ?? '64mb', 'maxTotalBodies'),
    parseDuration(options.presenceGrace ?? '5s', 'presenceGrace'),
    eventsChannel && { key: eventsChannel.key, allowConnections: options.allowConnectionsToEventsChannel ?? false },
  );
  const stopPosting = eventsChannel ? publishEventsInto(core, store, eventsChannel.id, eventsChannel.key) : () => {};
  const stopBroadcasts = listenForBroadcasts(core);
  const stopLifecycle = listenForLifecycle(core);
  const scope = { store, wildcardPrefix: wildcardPrefixOf(store), eventsKey: eventsChannel?.key };
  const collectMetrics = metricsCollector(core, scope);

  let closing: Promise<void> | undefined;
  const target = (channelId: string, group: string | undefined) =>
    checkChannelId(channelId, { channelGroup: group ?? defaults.channelGroup, maxChannelIdLength: defaults.maxChannelIdLength }).key;

  return {
    store,
    publisher(endpoint?: PublisherOptions) {
      return publisherMiddleware(core, resolvePublisher([global, validateOptions(endpoint, 'publisher()', publisherOptionKeys)]));
    },
    subscriber(endpoint?: SubscriberOptions) {
      const resolved = resolveSubscriber([global, validateOptions(endpoint, 'subscriber()', subscriberOptionKeys)]);
      checkWildcardMaxQtd(store, resolved.wildcardChannelMaxQtd);
      return subscriberMiddleware(core, resolved, defaults);
    },
    statistics(endpoint?: StatisticsOptions) {
      return statisticsMiddleware(core, resolveStatistics([pickKeys(global, statisticsOptionKeys), validateOptions(endpoint, 'statistics()', statisticsOptionKeys)]));
    },
    stats() {
      return summarize(scope);
    },
    async metrics() {
      return formatExposition(await collectMetrics());
    },
    registerMetrics(registry) {
      registerFamilies(registry, METRIC_NAMES, collectMetrics);
    },
    channels(listOptions = {}) {
      const { prefix = '', limit = Infinity, channelGroup } = listOptions;
      if (typeof prefix !== 'string') throw new TypeError('push-relay: channels() option "prefix" must be a string');
      if (!(limit === Infinity || (Number.isSafeInteger(limit) && limit >= 0))) throw new TypeError(`push-relay: channels() option "limit" must be a whole number >= 0, got ${JSON.stringify(limit)}`);
      const keyPrefix = channelKey(channelGroup ?? defaults.channelGroup, prefix);
      return (async function* () {
        if (limit === 0) return;
        let left = limit;
        for await (const page of listPages(store, keyPrefix)) {
          for (const channel of page) {
            yield channel;
            if (--left === 0) return;
          }
        }
      })();
    },
    async publish(channelId, data, publishOptions = {}) {
      core.assertOpen();
      if (typeof channelId !== 'string') {
        throw new TypeError(`push-relay: publish(channelId, data, options) takes the channel id first, a string (got ${channelId === null ? 'null' : typeof channelId})`);
      }
      if (typeof data !== 'string' && !(data instanceof Uint8Array)) {
        throw new TypeError('push-relay: publish() data must be a string, Buffer or Uint8Array');
      }
      checkPublishOptions(publishOptions);
      const body = typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
      const key = target(channelId, publishOptions.channelGroup);
      core.checkEventsChannel([{ id: channelId, key }], 'publisher', 'POST');
      const { info, message, duplicate } = await core.store.publish(
        key,
        { data: body, contentType: publishOptions.contentType, eventType: publishOptions.eventType, eventId: publishOptions.eventId, idempotencyKey: publishOptions.idempotencyKey, distinctSecond: defaults.distinctSeconds },
        defaults.rules,
      );
      if (!duplicate) core.published(channelId, message);
      return info;
    },
    on(type, listener) {
      core.on(type, listener);
      return this;
    },
    off(type, listener) {
      core.off(type, listener);
      return this;
    },
    async disconnect(filter) {
      if (!filter || typeof filter !== 'object') throw new TypeError('push-relay: disconnect() takes { channel?, subscriberId?, presenceKey? }');
      const { channel, channelGroup, subscriberId, presenceKey } = filter;
      const request = { channel: channel === undefined ? undefined : target(channel, channelGroup), subscriberId, presenceKey };
      if (request.channel === undefined && subscriberId === undefined && presenceKey === undefined) {
        throw new TypeError('push-relay: disconnect() needs at least one of channel, subscriberId, presenceKey (it would end every subscriber)');
      }
      debug('disconnect %o', request);
      // Every relay on the store acts on it, this one included (it hears its own broadcast).
      if (store.broadcast && store.onBroadcast) await store.broadcast(JSON.stringify({ type: 'disconnect', ...request }));
      else core.presence.disconnect(request);
    },
    async channelInfo(channelId, opts = {}) {
      return core.store.info(target(channelId, opts.channelGroup));
    },
    async deleteChannel(channelId, opts = {}) {
      return core.store.delete(target(channelId, opts.channelGroup));
    },
    handler(routes, fallback) {
      if (!routes || typeof routes !== 'object') throw new TypeError('push-relay: handler() takes { path: middleware }');
      if (fallback !== undefined && typeof fallback !== 'function') throw new TypeError('push-relay: handler() fallback must be a request handler (req, res)');
      const table = new Map<string, Middleware>();
      for (const [path, middleware] of Object.entries(routes)) {
        if (!path.startsWith('/')) throw new TypeError(`push-relay: handler() path "${path}" must start with "/"`);
        if (typeof middleware !== 'function') throw new TypeError(`push-relay: handler() route "${path}" must be a middleware`);
        table.set(path, middleware);
      }
      // node:http2's compatibility API gives objects that answer like node:http's (docs/deploy.md).
      return (request, response) => {
        const req = request as IncomingMessage;
        const res = response as ServerResponse;
        const url = req.url ?? '/';
        const q = url.indexOf('?');
        const route = table.get(q < 0 ? url : url.slice(0, q));
        if (route) route(req, res);
        else if (fallback) fallback(req, res);
        else answerError(noSuchEndpoint(), req, res, undefined);
      };
    },
    handleUpgrade(server, app) {
      return handleUpgrade(server, app);
    },
    close(closeOptions = {}) {
      closing ??= (async () => {
        const timeout = parseDuration(closeOptions.timeout ?? '5s', 'timeout');
        core.closed = true;
        debug('closing: answering %d parked subscribers', core.parked.size);
        stopBroadcasts();
        stopLifecycle();
        stopPosting();
        await core.parked.closeAll(timeout);
        core.presence.close();
        if (ownsStore) await store.close();
      })();
      return closing;
    },
  };
}

/**
 * `eventsChannel`: every subscribe and unsubscribe (but those of the events channel itself) published
 * there as JSON, with the event name as its EventSource `event:`. Each process publishes its own
 * clients' events, so with a shared store every event arrives once.
 */
function publishEventsInto(core: RelayContext, store: ChannelStore, id: string, key: string): () => void {
  const rules = { storeMessages: true, minMessages: 0, maxMessages: 100, messageTimeout: 60_000, channelTimeout: 0 };
  const post = (type: string, channel: string) => {
    if (channel === id) return;
    // Spaced as the module writes it (`{"type": "...", "channel": "..."}`), for clients that compare text.
    const data = Buffer.from(`{"type": "${type}", "channel": ${JSON.stringify(channel)}}`, 'utf8');
    core.store.publish(key, { data, contentType: 'application/json', eventType: type, uncounted: true }, rules).catch((err: unknown) => debug('events channel: publishing %s failed: %s', type, err));
  };
  core.on('subscribe', (e: SubscriberEvent) => post('client_subscribed', e.channel));
  core.on('unsubscribe', (e: SubscriberEvent) => post('client_unsubscribed', e.channel));
  // Every relay on a store hears its channels come and go: the first relay with this events channel
  // posts them, once (relays sharing one MemoryStore would each post them otherwise).
  const posting = lifecyclePosters.get(store) ?? new Set<string>();
  lifecyclePosters.set(store, posting);
  if (posting.has(key)) return () => {};
  posting.add(key);
  const notEvents = (e: ChannelLifecycleEvent) => channelKey(e.channelGroup, e.channel) !== key;
  core.on('channel-created', (e) => notEvents(e) && post('channel_created', e.channel));
  core.on('channel-destroyed', (e) => notEvents(e) && post('channel_destroyed', e.channel));
  return () => posting.delete(key);
}

/** Per store, the events channels whose lifecycle events a relay already posts. */
const lifecyclePosters = new WeakMap<ChannelStore, Set<string>>();

const METRIC_NAMES = [
  'push_relay_published_messages_total',
  'push_relay_delivered_messages_total',
  'push_relay_subscribers',
  'push_relay_channels',
  'push_relay_wildcard_channels',
  'push_relay_stored_messages',
  'push_relay_store_reserved_bytes',
  'push_relay_store_errors_total',
  'push_relay_store_operation_seconds',
];

/**
 * What relay.metrics() reports. The store-wide counts come from the statistics summary, read at most
 * every 10 s (a summary lists every channel: not for every scrape of a large relay).
 */
function metricsCollector(core: RelayContext, scope: StatisticsScope): () => Promise<MetricFamily[]> {
  let summary: { at: number; value: Promise<StatisticsSummary | undefined> } | undefined;
  const storeSummary = () => {
    if (!summary || Date.now() - summary.at > 10_000) {
      const value = summarize(scope).catch((err: unknown) => {
        debug('metrics: the store summary failed: %s', err);
        summary = undefined;
        return undefined;
      });
      summary = { at: Date.now(), value };
    }
    return summary.value;
  };
  return async () => {
    const s = scope.store.listChannels ? await storeSummary() : undefined;
    const counters = core.counters;
    const gauge = (name: string, help: string, value: number | undefined): MetricFamily => ({ name, help, type: 'gauge', values: value === undefined ? [] : [{ value }] });
    const reserved = (scope.store as { reservedBytes?: unknown }).reservedBytes;
    return [
      { name: 'push_relay_published_messages_total', help: 'Messages published through this process.', type: 'counter', values: [{ value: counters.published }] },
      { name: 'push_relay_delivered_messages_total', help: 'Messages sent to subscribers by this process (one per subscriber and message).', type: 'counter', values: [{ value: counters.delivered }] },
      {
        name: 'push_relay_subscribers',
        help: 'Subscribers connected to this process now, by transport.',
        type: 'gauge',
        values: [...core.presence.countByTransport()].map(([transport, value]) => ({ labels: { transport }, value })),
      },
      gauge('push_relay_channels', 'Channels in the store (wildcard channels apart), as of the last 10 s.', s?.channels),
      gauge('push_relay_wildcard_channels', 'Wildcard channels in the store, as of the last 10 s.', s?.wildcard_channels),
      gauge('push_relay_stored_messages', 'Messages stored in the store, as of the last 10 s.', s?.stored_messages),
      gauge('push_relay_store_reserved_bytes', 'Bytes the MemoryStore holds against maxReservedMemory.', typeof reserved === 'number' ? reserved : undefined),
      counters.errorsFamily(),
      counters.latencyFamily(),
    ];
  };
}

/** The options of `keys` in `options` (the relay's options an endpoint of one kind inherits). */
function pickKeys(options: Record<string, unknown>, keys: readonly string[]): Record<string, unknown> {
  return Object.fromEntries(keys.filter((k) => options[k] !== undefined).map((k) => [k, options[k]]));
}

/** wildcardChannelMaxQtd needs the store's wildcard prefix, and cannot exceed its limit. */
function checkWildcardMaxQtd(store: ChannelStore, max: number | undefined): void {
  if (max === undefined) return;
  if (wildcardPrefixOf(store) === undefined) {
    throw new TypeError('push-relay: option "wildcardChannelMaxQtd" needs wildcard channels: set "wildcardChannelPrefix" (on createPushRelay(), or on your store)');
  }
  const limit = (store as { maxWildcardChannels?: unknown }).maxWildcardChannels;
  if (typeof limit === 'number' && limit > 0 && max > limit) {
    throw new TypeError(`push-relay: option "wildcardChannelMaxQtd" (${max}) is larger than the store's "maxWildcardChannels" (${limit})`);
  }
}

/** channel-created / channel-destroyed: the store's lifecycle events, as the app names channels. */
function listenForLifecycle(core: RelayContext): () => void {
  const store = core.store;
  if (!store.onLifecycle) return () => {};
  let stop: (() => void) | undefined;
  let stopped = false;
  store
    .onLifecycle((event) => {
      const slash = event.channel.indexOf('/');
      const detail = { channel: idOfKey(event.channel), channelGroup: slash > 0 ? event.channel.slice(0, slash) : undefined };
      core.emit(event.type === 'created' ? 'channel-created' : 'channel-destroyed', detail);
    })
    .then(
      (unsubscribe) => {
        if (stopped) unsubscribe();
        else stop = unsubscribe;
      },
      (err: unknown) => debug('listening for channel lifecycle events failed: %s', err),
    );
  return () => {
    stopped = true;
    stop?.();
  };
}

/** relay.disconnect() requests from every relay on the store (every process with RedisStore). */
function listenForBroadcasts(core: RelayContext): () => void {
  const store = core.store;
  if (!store.broadcast || !store.onBroadcast) return () => {};
  let stop: (() => void) | undefined;
  let stopped = false;
  let retry: NodeJS.Timeout | undefined;
  const attempt = () => {
    store.onBroadcast!((text) => {
      let request: { type?: unknown; channel?: unknown; subscriberId?: unknown; presenceKey?: unknown };
      try {
        request = JSON.parse(text) as typeof request;
      } catch {
        return;
      }
      if (request.type !== 'disconnect') return;
      const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
      const count = core.presence.disconnect({ channel: str(request.channel), subscriberId: str(request.subscriberId), presenceKey: str(request.presenceKey) });
      debug('disconnect: %d subscribers here', count);
    }).then(
      (unsubscribe) => {
        if (stopped) unsubscribe();
        else stop = unsubscribe;
      },
      (err: unknown) => {
        // The store is not reachable yet: listen once it is.
        debug('listening for disconnect requests failed, retrying: %s', err);
        if (!stopped) retry = setTimeout(attempt, 1000).unref();
      },
    );
  };
  attempt();
  return () => {
    stopped = true;
    clearTimeout(retry);
    stop?.();
  };
}

/**
 * An HTTP publisher's Content-Type and event name were checked by Node's parser; in-process ones are
 * checked here, since each is written into response headers and stream frames: a line break would
 * add lines of its own (and make writing the header throw).
 */
function checkPublishOptions(options: PublishOptions): void {
  if (options === null || typeof options !== 'object') throw new TypeError('push-relay: publish() options must be an object');
  const { contentType, eventType } = options;
  if (contentType !== undefined) {
    let valid = typeof contentType === 'string' && contentType !== '';
    try {
      if (valid) validateHeaderValue('Content-Type', contentType);
    } catch {
      valid = false;
    }
    if (!valid) {
      throw new TypeError(`push-relay: publish() contentType must be a header value such as "text/plain" (no line breaks or control characters), got ${JSON.stringify(contentType)}`);
    }
  }
  if (options.idempotencyKey !== undefined && (typeof options.idempotencyKey !== 'string' || !/^[\x21-\x7e]{1,255}$/.test(options.idempotencyKey))) {
    throw new TypeError(`push-relay: publish() idempotencyKey must be 1 to 255 visible ASCII characters, got ${JSON.stringify(options.idempotencyKey)}`);
  }
  if (eventType !== undefined && (typeof eventType !== 'string' || /[\r\n\0]/.test(eventType))) {
    throw new TypeError(`push-relay: publish() eventType must be a string without line breaks, got ${JSON.stringify(eventType)}`);
  }
  const { eventId } = options;
  if (eventId !== undefined && (typeof eventId !== 'string' || eventId === '' || eventId.length > 255 || /[\r\n\0]/.test(eventId))) {
    throw new TypeError(`push-relay: publish() eventId must be 1 to 255 characters without line breaks, got ${JSON.stringify(eventId)}`);
  }
}
