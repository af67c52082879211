/**
 * RedisStore: one channel space shared by every process and host using the same Redis (and prefix).
 * Same semantics as MemoryStore; each operation is one Lua script (scripts.ts), wake-ups go by pub/sub
 * (subscriptions.ts), waiting subscribers are counted with per-process leases (presence.ts).
 * See docs/scaling.md.
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import type { RedisClusterOptions, RedisSentinelOptions } from 'redis';
import type { ChannelInfo } from '../../protocol/channel-info.js';
import { storeClosed, tooManyChannelsInStore } from '../../protocol/answers.js';
import { log } from '../../log.js';
import { cursorAhead } from '../../protocol/cursor.js';
import type { HttpResponseHead } from '../../protocol/message-http.js';
import type { MessageId } from '../../protocol/message-id.js';
import { parseDuration, type Duration } from '../../protocol/units.js';
import { DEFAULT_BUFFER_RULES } from '../../protocol/buffer-rules.js';
import type {
  BufferRules,
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
  StoreWorker,
} from '../channel-store.js';
import { isWildcardKey } from '../../protocol/channel-id.js';
import { checkWildcardOptions, type WildcardOptions } from '../wildcard-options.js';
import { toStoreError, unavailable } from './errors.js';
import { channelKeys, type ChannelKeys } from './keys.js';
import { Presence } from './presence.js';
import { CommandTimeoutError, int, list, loadRedis, runScript, text, withDeadline, type ChannelLimit, type RedisClient, type Reply } from './redis-client.js';
import { SCRIPTS, SHARDED_SCRIPTS, WORKER_SCRIPTS, type ChannelScripts, type LuaScript } from './scripts.js';
import { fromStreamId, toStreamId } from './stream-ids.js';
import { responseHead, type WakeUp } from './wake-ups.js';
import { ChannelView, type Kept } from './channel-view.js';
import { ChannelSubscriptions } from './subscriptions.js';
import { IORedisAdapter, isIORedis, type IORedisClient } from './ioredis-adapter.js';
import { IORedisClusterAdapter, isIORedisCluster, type IORedisClusterClient } from './ioredis-cluster-adapter.js';
import { ClusterAdapter, isClustered, isRedisCluster, type RedisClusterClient } from './cluster-adapter.js';
import { SentinelAdapter, type RedisSentinelClient } from './sentinel-adapter.js';

const debug = log('redis');

export interface RedisStoreOptions extends WildcardOptions {
  /**
   * Redis URL (`redis://[[user]:password@]host[:port][/db]`, `rediss://` for TLS). RedisStore makes and
   * closes its own two connections. Give one of `url`, `client`, `cluster`, `sentinel`.
   * @default 'redis://127.0.0.1:6379'
   */
  url?: string | undefined;
  /**
   * Your client, whose options (address, password, TLS, socket settings) RedisStore takes: a
   * node-redis v5 client (`createClient()` or `createCluster()` from `redis`) or an ioredis 5
   * client (`new Redis()` or `new Cluster()` from `ioredis`). RedisStore opens its two connections with
   * `client.duplicate()` and never uses, connects or closes yours.
   */
  client?: RedisClient | IORedisClient | RedisClusterClient | IORedisClusterClient | undefined;
  /**
   * A Redis Cluster: node-redis' cluster options (`rootNodes`, and `defaults` for every node's
   * connection: password, TLS, socket settings), as `createCluster()` from `redis` takes them.
   * RedisStore makes and closes its own two cluster connections. A `createCluster()` client given
   * as `client` works too. Give one of `url`, `client`, `cluster`, `sentinel`. See docs/scaling.md.
   */
  cluster?: RedisClusterOptions | undefined;
  /**
   * Redis Sentinel: node-redis' sentinel options (`name` of the master set, `sentinelRootNodes`, and
   * `nodeClientOptions` for the connections to the master: password, TLS), as `createSentinel()`
   * from `redis` takes them. RedisStore asks the sentinels where the master is and follows it when
   * they fail it over. Give one of `url`, `client`, `cluster`, `sentinel`. See docs/scaling.md.
   */
  sentinel?: RedisSentinelOptions | undefined;
  /**
   * Prefix of every key and pub/sub channel; processes sharing a prefix share channels. No braces.
   * @default 'push-relay'
   */
  prefix?: string | undefined;
  /**
   * How long a command may take before the request gets 503 (Redis hung, or the network dropped
   * without closing the connection): the store's own deadline, on every command, including one
   * already sent. The connection is then reset, and a publish that timed out may still have been
   * stored. While Redis is disconnected, requests get 503 at once.
   * @default '5s'
   */
  commandTimeout?: Duration | undefined;
  /**
   * How often this process renews the leases that keep its waiting subscribers counted. A process
   * that dies stops counting after 3 intervals (its lease).
   * @default '5s'
   */
  heartbeatInterval?: Duration | undefined;
  /**
   * push_stream_max_number_of_channels: the most channels at once, across every process sharing the
   * store. Creating one more (a publish, a PUT, a subscriber) answers 403 naming the limit; existing
   * channels keep working. Counted atomically in Redis by an index of the channels (a sorted set under
   * `<prefix>:channels`, outside the channels' hash slots: not on a Redis Cluster, where no script
   * may touch keys of two slots). 0 = unlimited.
   * @default 0
   */
  maxChannels?: number | undefined;
  /**
   * How many replicas must hold a published message before the publish is answered (Redis' WAIT, on
   * a connection of its own so that waiting holds up nothing else). With 0, a publish is answered
   * once the master has the message, and Redis replicates it a moment later: a failover in that
   * moment loses it (docs/scaling.md says what subscribers see then). With 1 or more, a publish the
   * replicas have not confirmed within `replicaTimeout` answers 503 (the message may still be
   * delivered; retry with the same Idempotency-Key).
   * @default 0
   */
  replicas?: number | undefined;
  /**
   * How long a publish waits for the `replicas` to confirm it.
   * @default '1s'
   */
  replicaTimeout?: Duration | undefined;
}

const OPTIONS = new Set(['url', 'client', 'cluster', 'sentinel', 'prefix', 'commandTimeout', 'heartbeatInterval', 'maxChannels', 'replicas', 'replicaTimeout', 'wildcardChannelPrefix', 'maxWildcardChannels']);

/** What a RedisStore emits: `error` once per outage (the first connection failure), `ready` when (re)connected. */
export interface RedisStoreEvents {
  error: [Error];
  ready: [];
}

export class RedisStore extends EventEmitter<RedisStoreEvents> implements ChannelStore {
  readonly prefix: string;
  /** This store's id among the processes sharing Redis (in the `subscribers` and `leases` keys). */
  readonly processId = randomBytes(9).toString('base64url');
  readonly #client: RedisClient;
  readonly #subscriber: RedisClient;
  /** Publishes waiting for replicas (option `replicas`): WAIT holds its connection up, so one of their own. */
  readonly #publisher: RedisClient | undefined;
  readonly #replicas: number;
  readonly #replicaTimeout: number;
  readonly #timeout: number;
  /** push_stream_wildcard_channel_prefix (see MemoryStoreOptions). */
  readonly wildcardChannelPrefix: string | undefined;
  /** maxChannels, when set. */
  readonly #limit: ChannelLimit | undefined;
  /** maxWildcardChannels, when set. */
  readonly #wildcardLimit: ChannelLimit | undefined;
  readonly #since = Date.now();
  readonly #lifecycleListeners = new Set<(event: LifecycleEvent) => void>();
  readonly #lease: number;
  readonly #subscriptions: ChannelSubscriptions;
  readonly #presence: Presence;
  readonly #connecting: Promise<void>;
  /** Where it connects, without a password (for messages). */
  readonly #target: string;
  /** The first connection failure since Redis was last ready: requests fail at once while it is set. */
  #outage: Error | undefined;
  readonly #onError = (err: unknown) => this.#connectionFailed(err instanceof Error ? err : new Error(String(err)));
  #closed = false;
  #workerTimer: NodeJS.Timeout;
  #announceTimer: NodeJS.Timeout | undefined;
  /** Connections being reset after a command timed out on them. */
  readonly #resetting = new Set<RedisClient>();
  #recovering: Promise<void> | undefined;
  /** Leaves sent and not answered yet: close() waits for them, so that no subscriber stays counted. */
  readonly #leaving = new Set<Promise<unknown>>();

  constructor(options: RedisStoreOptions = {}) {
    if (options === null || typeof options !== 'object') throw new TypeError('push-relay: RedisStore options must be an object');
    for (const key of Object.keys(options)) {
      if (!OPTIONS.has(key)) throw new TypeError(`push-relay: unknown RedisStore option "${key}" (known: ${[...OPTIONS].join(', ')})`);
    }
    const { url, client, cluster, sentinel, prefix = 'push-relay' } = options;
    const given = (['url', 'client', 'cluster', 'sentinel'] as const).filter((o) => options[o] !== undefined);
    if (given.length > 1) throw new TypeError(`push-relay: RedisStore options ${given.map((o) => `"${o}"`).join(' and ')} exclude each other: give one`);
    if (cluster !== undefined && (cluster === null || typeof cluster !== 'object' || !Array.isArray(cluster.rootNodes) || cluster.rootNodes.length === 0)) {
      throw new TypeError('push-relay: RedisStore option "cluster" must be node-redis cluster options with at least one root node: { rootNodes: [{ url: \'redis://host:port\' }] }');
    }
    if (url !== undefined && (typeof url !== 'string' || !/^rediss?:\/\//.test(url))) {
      throw new TypeError(`push-relay: RedisStore option "url" must be a redis:// or rediss:// URL, got ${JSON.stringify(url)}`);
    }
    if (sentinel !== undefined && (sentinel === null || typeof sentinel !== 'object' || typeof sentinel.name !== 'string' || !Array.isArray(sentinel.sentinelRootNodes) || sentinel.sentinelRootNodes.length === 0)) {
      throw new TypeError("push-relay: RedisStore option \"sentinel\" must be node-redis sentinel options: { name: 'mymaster', sentinelRootNodes: [{ host, port }] }");
    }
    if (typeof (client as { acquire?: unknown } | undefined)?.acquire === 'function' && typeof (client as { getMasterNode?: unknown }).getMasterNode === 'function') {
      throw new TypeError('push-relay: RedisStore cannot copy a createSentinel() client given as "client": give its options as the "sentinel" option instead');
    }
    const ioredisCluster = isIORedisCluster(client);
    const ioredis = !ioredisCluster && isIORedis(client);
    const clustered = cluster !== undefined || isRedisCluster(client) || ioredisCluster;
    if (client !== undefined && !ioredis && !clustered && (client === null || typeof client !== 'object' || typeof client.duplicate !== 'function' || typeof client.sendCommand !== 'function')) {
      throw new TypeError('push-relay: RedisStore option "client" must be a node-redis v5 client (createClient() or createCluster() from "redis") or an ioredis client (new Redis() from "ioredis")');
    }
    if (typeof prefix !== 'string' || prefix === '' || /[{}]/.test(prefix)) {
      throw new TypeError(`push-relay: RedisStore option "prefix" must be a non-empty string without braces, got ${JSON.stringify(prefix)}`);
    }
    super();
    this.prefix = prefix;
    this.#target = targetOf(options);
    this.#timeout = positive(parseDuration(options.commandTimeout ?? '5s', 'commandTimeout'), 'commandTimeout');
    const interval = positive(parseDuration(options.heartbeatInterval ?? '5s', 'heartbeatInterval'), 'heartbeatInterval');
    this.#lease = 3 * interval;
    const replicas = options.replicas ?? 0;
    if (!Number.isSafeInteger(replicas) || replicas < 0) throw new TypeError(`push-relay: RedisStore option "replicas" must be a whole number >= 0, got ${JSON.stringify(replicas)}`);
    this.#replicas = replicas;
    this.#replicaTimeout = positive(parseDuration(options.replicaTimeout ?? '1s', 'replicaTimeout'), 'replicaTimeout');
    const maxChannels = options.maxChannels ?? 0;
    if (!Number.isSafeInteger(maxChannels) || maxChannels < 0) throw new TypeError(`push-relay: RedisStore option "maxChannels" must be a whole number >= 0, got ${JSON.stringify(maxChannels)}`);
    this.#limit = maxChannels > 0 ? { index: `${prefix}:channels`, max: maxChannels, option: 'maxChannels' } : undefined;
    const wildcard = checkWildcardOptions(options, 'RedisStore');
    if (clustered && (maxChannels > 0 || wildcard.max > 0)) {
      throw new TypeError(
        `push-relay: RedisStore option "${maxChannels > 0 ? 'maxChannels' : 'maxWildcardChannels'}" cannot be used on a Redis Cluster: counting channels atomically needs one key beside every channel's, and a cluster's scripts may only touch keys of one slot`,
      );
    }
    this.wildcardChannelPrefix = wildcard.prefix;
    this.#wildcardLimit = wildcard.max > 0 ? { index: `${prefix}:wildcard-channels`, max: wildcard.max, option: 'maxWildcardChannels' } : undefined;

    // Commands fail at once while disconnected (503) rather than queue up behind an outage. A given
    // client is duplicated: the store resets its connections on its own, and never touches yours.
    this.#client = ioredisCluster
      ? (new IORedisClusterAdapter(client).duplicate({ disableOfflineQueue: true }) as unknown as RedisClient)
      : ioredis
      ? (new IORedisAdapter(client).duplicate({ disableOfflineQueue: true }) as unknown as RedisClient)
      : isRedisCluster(client)
      ? (new ClusterAdapter(client).duplicate({ disableOfflineQueue: true }) as unknown as RedisClient)
      : sentinel
      ? (new SentinelAdapter(sentinel, (o) => loadRedis().createSentinel(o) as unknown as RedisSentinelClient) as unknown as RedisClient)
      : cluster
      ? (new ClusterAdapter(loadRedis().createCluster({ ...cluster, defaults: { ...cluster.defaults, disableOfflineQueue: true } }) as unknown as RedisClusterClient) as unknown as RedisClient)
      : client
      ? ((client as RedisClient).duplicate({ disableOfflineQueue: true }) as RedisClient)
      : (loadRedis().createClient({ url: url ?? 'redis://127.0.0.1:6379', disableOfflineQueue: true }) as RedisClient);
    this.#subscriber = this.#client.duplicate();
    this.#publisher = replicas > 0 ? this.#client.duplicate() : undefined;
    // An 'error' event nobody listens to would crash the host: node-redis reconnects by itself.
    this.#client.on('error', this.#onError);
    this.#subscriber.on('error', this.#onError);
    this.#publisher?.on('error', this.#onError);
    this.#onReconnect(this.#client);
    this.#onReconnect(this.#subscriber);

    this.#subscriptions = new ChannelSubscriptions(this.#subscriber, this.#timeout, (channel, event) => this.#observe(channel, event));
    this.#presence = new Presence(
      async (channel, recovery, ids) => {
        const mode = !recovery ? '0' : recovery.floorOnly ? '3' : recovery.create ? '2' : '1';
        const rules = ruleArgs({ ...DEFAULT_BUFFER_RULES, channelTimeout: recovery?.channelTimeout ?? 0 });
        const floor = recovery?.floor ? toStreamId(recovery.floor) : '';
        const epoch = this.#liveEpoch(channel);
        // Polls this process answered without a script since the last heartbeat: how long ago the newest came.
        const view = this.#views.get(channel);
        const requestedAt = view?.requestedAt ?? 0;
        const age = view && requestedAt > view.requestedSent ? String(Math.max(0, Date.now() - requestedAt)) : '';
        const [added, last] = list(await this.#run(channel, this.#scripts.refresh, [this.processId, String(this.#lease), mode, ...rules, floor, age, ...ids]));
        if (view && age !== '') view.requestedSent = Math.max(view.requestedSent, requestedAt);
        if (epoch >= 0) this.#verify(channel, epoch, fromStreamId(text(last)));
        return int(added);
      },
      async (channel, ids) => {
        await this.#run(channel, this.#scripts.leave, [this.processId, ...ids]);
      },
    );
    this.#presence.start(interval);
    this.#workerTimer = setInterval(() => void this.#announce().catch((err: unknown) => debug('announcing this process failed: %s', err)), interval);
    this.#workerTimer.unref();
    this.#connecting = this.#connect();
    this.#connecting.catch((err: unknown) => debug('connecting to Redis failed: %s', err));
  }

  /**
   * Resolves once connected to Redis; rejects with an error that names the address and the reason
   * when that has not happened within `timeout` (default '10s'). The store keeps trying afterwards:
   * a later call may resolve. Requests do not need it: while Redis cannot be reached they get 503.
   */
  async ready(options: { timeout?: Duration | undefined } = {}): Promise<void> {
    if (this.#closed) throw new Error('push-relay: the RedisStore is closed');
    if (this.#client.isReady && this.#subscriber.isReady) return;
    const timeout = parseDuration(options.timeout ?? '10s', 'timeout');
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.#connecting,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => {
            const why = this.#outage ? `: ${this.#outage.message}` : '';
            reject(new Error(`push-relay: cannot reach Redis at ${this.#target} within ${timeout} ms${why}`, { cause: this.#outage }));
          }, timeout);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  async publish(channel: string, input: NewMessage, rules: BufferRules): Promise<PublishResult> {
    // After a failover, the channels' last ids go up to what this process saw before a publish takes
    // one (see Presence): otherwise a message the new master lost could be skipped without a signal.
    if (this.#recovering) await settledWithin([this.#recovering], this.#timeout);
    // On its own connection (option replicas), the publish could overtake a batch of counts on its way.
    const batch = this.#publisher && this.#views.get(channel)?.sending;
    if (batch) await settledWithin([batch], this.#timeout);
    const keys = this.#keys(channel);
    const { contentType, eventType, eventId } = input;
    const r = list(
      await this.#run(channel, this.#scripts.publish, [
        keys.events,
        input.data,
        contentType === undefined ? '0' : '1',
        contentType ?? '',
        eventType === undefined ? '0' : '1',
        eventType ?? '',
        ...ruleArgs(rules),
        input.idempotencyKey ?? '',
        input.distinctSecond ? '1' : '0',
        eventId === undefined ? '0' : '1',
        eventId ?? '',
        String(Math.max(0, Math.floor(rules.minRecipients ?? 0))),
        input.response ? JSON.stringify(input.response) : '',
      ], this.#publisher),
    );
    if (text(r[0]) === 'toomany') this.#tooMany(channel);
    if (this.#publisher) await this.#replicated(channel, this.#publisher);
    const id = fromStreamId(text(r[0]))!;
    this.#presence.saw(channel, id);
    if (!input.uncounted && r.length <= 7) this.#countPublish();
    if (r.length > 7) {
      debug('publish %s: idempotency key already stored (%s), nothing published', channel, text(r[0]));
      return { message: messageOf(text(r[0]), list(r[7])), info: { messages: int(r[3]), requested: int(r[4]), subscribers: int(r[5]), lastMessageId: fromStreamId(text(r[8])) }, duplicate: true };
    }
    const message: StoredMessage = { id, previousId: fromStreamId(text(r[1])), data: input.data, contentType, eventType, eventId, seq: int(r[6]), ...(input.response ? { response: input.response } : {}) };
    debug('publish %s %s (%d bytes) to %d waiting', channel, text(r[0]), input.data.length, int(r[5]));
    // Heard at once on a channel this process watches and knows up to the message before: its
    // subscribers here get it now, and later polls find it, as they would on MemoryStore. The
    // wake-up that comes back is then not handed on again (ChannelView.published).
    if (!this.#closed && this.#subscriber.isReady && this.#views.get(channel)?.follows(message.seq)) {
      this.#subscriptions.hear(keys.events, { type: 'message', message, previous: fromStreamId(text(r[2])), kept: keptOf(rules) });
    }
    return { message, info: { messages: int(r[3]), requested: this.#requested(channel, int(r[4])), subscribers: int(r[5]), lastMessageId: id } };
  }

  /**
   * Seconds since a subscriber last asked for `channel`: Redis' figure, or this process's own when a
   * poll it answered without a script is more recent (Redis hears of those with the next heartbeat).
   */
  #requested(channel: string, inRedis: number): number {
    const at = this.#views.get(channel)?.requestedAt;
    if (!at) return inRedis;
    const here = Math.max(0, Math.floor((Date.now() - at) / 1000));
    return inRedis < 0 ? here : Math.min(inRedis, here);
  }

  #infoOf(channel: string, r: Reply[], from: number): ChannelInfo {
    const info = infoOf(r, from);
    return { ...info, requested: this.#requested(channel, info.requested) };
  }

  async create(channel: string, rules: BufferRules): Promise<ChannelInfo> {
    const r = list(await this.#run(channel, this.#scripts.create, ruleArgs(rules)));
    if (text(r[0]) === 'toomany') this.#tooMany(channel);
    return this.#infoOf(channel, r, 0);
  }

  async next(channel: string, after: MessageId | undefined): Promise<NextResult> {
    const epoch = this.#liveEpoch(channel);
    const r = list(await this.#run(channel, this.#scripts.next, [after ? toStreamId(after) : '']));
    const second = int(r[1]);
    if (int(r[0]) === 0) {
      // No channel, no message: every one published from now on will be heard.
      if (epoch >= 0) this.#views.get(channel)?.learned(epoch, undefined);
      const ahead = cursorAhead(after, fromStreamId(text(r[2])), second);
      return ahead ? { exists: false, message: undefined, ahead } : { exists: false, message: undefined };
    }
    const last = fromStreamId(text(r[2]));
    // Cursors of this channel's subscribers are at most its last id: never to be given again (presence.ts).
    this.#presence.saw(channel, last);
    if (epoch >= 0) this.#views.get(channel)?.learned(epoch, last);
    const ahead = cursorAhead(after, last, second);
    if (ahead) return { exists: true, message: undefined, ahead };
    return { exists: true, message: r.length < 5 ? undefined : messageOf(text(r[3]), list(r[4])) };
  }

  async startCursor(channel: string, newest: number): Promise<MessageId | undefined> {
    const r = list(await this.#run(channel, this.#scripts.startCursor, [String(Math.max(0, Math.floor(newest)))]));
    return int(r[0]) === 0 ? undefined : fromStreamId(text(r[1]));
  }

  async findEventId(channel: string, eventId: string): Promise<MessageId | undefined> {
    const r = list(await this.#run(channel, this.#scripts.findEventId, [eventId]));
    return int(r[0]) === 0 ? undefined : fromStreamId(text(r[1]));
  }

  async received(channel: string, id: MessageId): Promise<void> {
    // Served from memory no more (a cache miss if the script keeps it after all); other processes hear it from the script.
    this.#views.get(channel)?.dropped(id);
    await this.#run(channel, this.#scripts.received, [toStreamId(id), this.#keys(channel).events]);
  }

  async info(channel: string): Promise<ChannelInfo | undefined> {
    const r = list(await this.#run(channel, this.#scripts.info, []));
    return int(r[0]) === 0 ? undefined : this.#infoOf(channel, r, 1);
  }

  async delete(channel: string, notice?: string): Promise<ChannelInfo | undefined> {
    const r = list(await this.#run(channel, this.#scripts.delete, [this.#keys(channel).events, notice ?? '']));
    if (int(r[0]) === 0) return undefined;
    debug('delete %s', channel);
    return infoOf(r, 1);
  }

  /** Long-polls waiting to go to Redis together, by channel and join options (see nextOrJoin). */
  readonly #polls = new Map<string, PollBatch>();

  async join(channel: string, request: JoinRequest): Promise<JoinResult> {
    // Concurrency and limits are decided on the count in Redis: this process's batch goes first.
    this.#flush(channel);
    const r = list(await this.#run(channel, this.#scripts.join, this.#joinArgs(channel, request)));
    return this.#joined(channel, request, text(r[0]), fromStreamId(text(r[1])));
  }

  /**
   * A long-poll's read and join. On a channel this process watches, what its wake-ups told it may
   * answer at once (see channel-view.ts): the message that follows the cursor, or, for the newest
   * id, a join counted in Redis with the next batch (concurrency `broadcast` without a subscriber
   * limit only: the others are decided on the count in Redis). Otherwise the long-polls of one
   * channel that arrive in the same turn of the event loop go to Redis together: one script reads
   * and joins them all, in arrival order, so that concurrency and limits apply as one by one.
   */
  nextOrJoin(channel: string, after: MessageId | undefined, request: JoinRequest): NextOrJoinResult | Promise<NextOrJoinResult> {
    const view = this.#views.get(channel);
    const counted = request.concurrency === 'broadcast' && request.maxSubscribers === 0;
    if (view?.known && counted && !this.#recovering && this.#client.isReady && this.#subscriber.isReady) {
      // What this process heard of the channel answers the poll, or tells it that nothing is newer.
      const found = view.after(after, Date.now());
      if (found) {
        view.requestedAt = Date.now();
        this.#touch(view);
        return { message: found };
      }
      if (found === null) {
        this.#countIn(view, request);
        // Taking the place of one just answered sends nothing to Redis: the channel's last-requested
        // time goes with the next heartbeat (this process's own answers take it from here at once).
        view.requestedAt = Date.now();
        return JOINED;
      }
    }
    // Concurrency and limits are decided on the count in Redis: this process's batch goes first.
    if (!counted) {
      if (view) view.strict = true;
      this.#flush(channel);
    }
    const key = `${request.concurrency}|${request.maxSubscribers}|${request.create ? 1 : 0}|${request.channelTimeout}|${channel}`;
    let batch = this.#polls.get(key);
    if (!batch) {
      batch = { channel, request, cursors: [], waiting: [] };
      this.#polls.set(key, batch);
      if (this.#polls.size === 1) setImmediate(() => this.#flushPolls());
    }
    batch.cursors.push(after ? toStreamId(after) : '', request.subscriberId);
    return new Promise((resolve, reject) => batch.waiting.push({ request, resolve, reject }));
  }

  #flushPolls(): void {
    const batches = [...this.#polls.values()];
    this.#polls.clear();
    for (const batch of batches) void this.#poll(batch);
  }

  async #poll({ channel, request, cursors, waiting }: PollBatch): Promise<void> {
    let r: Reply[];
    const epoch = this.#liveEpoch(channel);
    try {
      const args = this.#joinArgs(channel, request);
      // The subscriber id is per long-poll: it travels with each cursor instead.
      args.splice(2, 1);
      r = list(await this.#run(channel, this.#scripts.poll, [...args, ...cursors]));
    } catch (err) {
      for (const w of waiting) w.reject(err);
      return;
    }
    const last = fromStreamId(text(r[0]));
    this.#presence.saw(channel, last);
    if (epoch >= 0) this.#views.get(channel)?.learned(epoch, last);
    // Each message once, however many polls it answers (one object: its answer is built once).
    const messages = list(r[1]).map((entry) => {
      const [id, fields] = list(entry);
      return this.#shared(channel, messageOf(text(id), list(fields)));
    });
    const results = list(r[2]);
    const second = int(r[3]);
    const newest = last ?? fromStreamId(text(r[4]));
    waiting.forEach((w, i) => {
      const result = results[i];
      try {
        if (typeof result === 'number') {
          w.resolve({ message: messages[result - 1]! });
          return;
        }
        const joined = this.#joined(channel, w.request, text(result), newest);
        const ahead = cursorAhead(fromStreamId(cursors[2 * i]!), newest, second);
        w.resolve(ahead ? { joined, ahead } : { joined });
      } catch (err) {
        w.reject(err);
      }
    });
  }

  #joinArgs(channel: string, request: JoinRequest): string[] {
    return [
      this.#keys(channel).events,
      this.processId,
      request.subscriberId,
      request.concurrency,
      String(request.maxSubscribers),
      request.create ? '1' : '0',
      String(this.#lease),
      ...ruleArgs({ ...DEFAULT_BUFFER_RULES, channelTimeout: request.channelTimeout }),
    ];
  }

  /** The join script's answer: counted in (presence, the workers' count), or why not. */
  #joined(channel: string, request: JoinRequest, result: string, newest: MessageId | undefined): JoinResult {
    if (result === 'toomany') this.#tooMany(channel);
    if (result !== 'ok') return { ok: false, reason: result as 'full' | 'conflict' | 'missing' };
    this.#presence.joined(channel, request.subscriberId, request.create, request.channelTimeout);
    this.#announceSoon();
    return newest ? { ok: true, newest } : { ok: true };
  }

  async leave(channel: string, subscriberIds: readonly string[]): Promise<void> {
    if (subscriberIds.length === 0) return;
    const view = this.#views.get(channel);
    if (view) return this.#countOut(view, subscriberIds);
    this.#presence.left(channel, subscriberIds);
    this.#announceSoon();
    const sent = this.#run(channel, this.#scripts.leave, [this.processId, ...subscriberIds]);
    this.#leaving.add(sent);
    try {
      await sent;
    } catch (err) {
      // Retried by the heartbeat; until then the lease keeps them counted (no drift either way).
      this.#presence.leaveFailed(channel, subscriberIds);
      throw err;
    } finally {
      this.#leaving.delete(sent);
    }
  }

  async watch(channel: string, listener: ChannelListener): Promise<() => void> {
    await this.#ensureConnected();
    let view = this.#views.get(channel);
    if (!view) this.#views.set(channel, (view = new ChannelView(channel)));
    view.watchers++;
    let unwatch: () => void;
    try {
      unwatch = await this.#subscriptions.watch(this.#keys(channel).events, channel, (name, event) => {
        if (event.type !== 'dropped') listener(name, event);
      });
    } catch (err) {
      this.#unview(view);
      throw err;
    }
    // Every wake-up from now on reaches the view: a read sent from now on tells it the channel's state.
    view.live = true;
    const watched = view;
    let watching = true;
    return () => {
      if (!watching) return;
      watching = false;
      unwatch();
      this.#unview(watched);
    };
  }

  async broadcast(text: string): Promise<void> {
    await this.#ensureConnected();
    await this.#client.publish(this.#broadcastChannel, `B\n${text}`);
  }

  async onBroadcast(listener: (text: string) => void): Promise<() => void> {
    await this.#ensureConnected();
    return this.#subscriptions.watch(this.#broadcastChannel, this.#broadcastChannel, (_name, event) => {
      if (event.type === 'broadcast') listener(event.text);
    });
  }

  /** Pub/sub channel of broadcasts: in no channel's hash slot (plain PUBLISH reaches every node). */
  get #broadcastChannel(): string {
    return `${this.prefix}:broadcast`;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#presence.stop();
    clearInterval(this.#workerTimer);
    clearTimeout(this.#announceTimer);
    const leavingStatistics = this.#client.isReady
      ? withDeadline(this.#client.sendCommand(['HDEL', this.#workersKey, this.processId]), this.#timeout).catch((err: unknown) => debug('removing this process from the statistics failed: %s', err))
      : undefined;
    // Count out what this process still holds, so others need not wait for its leases to pass: the
    // batches not sent yet, the leaves under way, those Redis did not take, and the subscribers still held.
    clearTimeout(this.#flushTimer);
    clearTimeout(this.#lingerTimer);
    if (this.#client.isReady) for (const view of this.#views.values()) this.#flush(view.channel);
    if (this.#leaving.size > 0) await settledWithin([...this.#leaving], this.#timeout);
    if (this.#client.isReady) {
      const held = new Map<string, string[]>();
      for (const channel of this.#presence.channels) held.set(channel, this.#presence.idsOf(channel));
      for (const [channel, ids] of this.#presence.takeFailedLeaves()) held.set(channel, [...(held.get(channel) ?? []), ...ids]);
      await Promise.all(
        [...held].map(([channel, ids]) =>
          runScript(this.#client, this.#scripts.leave, this.#keys(channel), [this.processId, ...ids], this.#timeout, this.#limitOf(channel)).catch((err: unknown) =>
            debug('counting out %d subscribers of %s on close failed: %s', ids.length, channel, err),
          ),
        ),
      );
    }
    await leavingStatistics;
    this.#subscriptions.clear();
    if (this.#subscriber.isOpen) this.#subscriber.destroy();
    if (this.#publisher?.isOpen) this.#publisher.destroy();
    if (this.#client.isOpen) this.#client.destroy();
  }

  async *listChannels(prefix: string): AsyncGenerator<ChannelStats[]> {
    await this.#ensureConnected();
    // The counts read below include this process's batches.
    for (const view of this.#views.values()) this.#flush(view.channel);
    // Meta keys only: `<prefix>:{<channel>}:meta` (no other key of a channel ends with "}:meta").
    const head = `${this.prefix}:{`;
    const pattern = `${globEscape(head + prefix)}*}:meta`;
    for await (const keys of this.#scan(pattern)) {
      const names = keys.map((key) => key.slice(head.length, -'}:meta'.length));
      const channelKeys = (name: string) => {
        const k = this.#keys(name);
        return [k.meta, k.messages, k.subscribers];
      };
      // One script for the page, reading without settling each channel (a script per channel
      // would cost a listing of 100,000 channels what 100,000 requests cost): see docs/statistics.md.
      // On a cluster a script touches one slot: one per channel there, sent together.
      const counts =
        isClustered(this.#client)
          ? (await Promise.all(names.map(async (name) => list(await this.#global(WORKER_SCRIPTS.countChannels, channelKeys(name), []))))).flat()
          : list(await this.#global(WORKER_SCRIPTS.countChannels, names.flatMap(channelKeys), []));
      const page: ChannelStats[] = [];
      names.forEach((name, i) => {
        if (int(counts[4 * i]) === 1) page.push({ channel: name, published: int(counts[4 * i + 1]), messages: int(counts[4 * i + 2]), subscribers: int(counts[4 * i + 3]) });
      });
      if (page.length > 0) yield page;
    }
  }

  /** Pages of the keys matching `pattern` (SCAN, on every master of a cluster). */
  async *#scan(pattern: string): AsyncGenerator<string[]> {
    const scanArgs = (cursor: string) => ['SCAN', cursor, 'MATCH', pattern, 'COUNT', String(SCAN_STEP)];
    const client = this.#client;
    const nodes = isClustered(client) ? client.masters : [undefined];
    for (const node of nodes) {
      let cursor = '0';
      do {
        const [next, keys] = (
          node && isClustered(client) ? await this.#deadline(client.onMaster(node as never, scanArgs(cursor))) : await this.#command(scanArgs(cursor))
        ) as [string | Buffer, Array<string | Buffer>];
        cursor = String(next);
        if (keys.length > 0) yield keys.map(String);
      } while (cursor !== '0');
    }
  }

  /** `sent` within the store's deadline, its errors as the store's (503 while Redis is away). */
  async #deadline<T>(sent: Promise<T>): Promise<T> {
    try {
      return await withDeadline(sent, this.#timeout);
    } catch (err) {
      throw toStoreError(err);
    }
  }

  async channelStats(names: readonly string[]): Promise<Array<ChannelStats | undefined>> {
    return Promise.all(
      names.map(async (name) => {
        const r = list(await this.#run(name, this.#scripts.info, []));
        if (int(r[0]) === 0) return undefined;
        return { channel: name, published: int(r[5]), messages: int(r[1]), subscribers: int(r[3]) };
      }),
    );
  }

  async summary(): Promise<StoreSummary> {
    await this.#announce();
    const [published, since] = (await this.#command(['HMGET', this.#statsKey, 'published', 'since'])) as [string | null, string | null];
    const live = list(await this.#global(WORKER_SCRIPTS.list, [this.#workersKey], []));
    const workers = live.map((entry) => JSON.parse(text(entry)) as StoreWorker);
    return { published: Number(published ?? 0), since: Number(since ?? this.#since), workers };
  }

  async onLifecycle(listener: (event: LifecycleEvent) => void): Promise<() => void> {
    this.#lifecycleListeners.add(listener);
    return () => void this.#lifecycleListeners.delete(listener);
  }

  // ---------------------------------------------------------------------------------------------

  /** The channel scripts: waking subscribers by sharded pub/sub on a Redis Cluster of Redis 7 or later. */
  get #scripts(): ChannelScripts {
    return isClustered(this.#client) && this.#client.sharded ? SHARDED_SCRIPTS : SCRIPTS;
  }

  get #statsKey(): string {
    return `${this.prefix}:stats`;
  }

  get #workersKey(): string {
    return `${this.prefix}:workers`;
  }

  /**
   * The all-time publish count, outside the channel's script (its key is in no channel's slot). The
   * publishes whose replies came in one read are counted with one HINCRBY, sent before any of their
   * callers goes on (a microtask), so that a statistics read after a publish includes it.
   */
  #countPublish(): void {
    if (this.#uncounted++ > 0) return;
    queueMicrotask(() => {
      const n = this.#uncounted;
      this.#uncounted = 0;
      this.#client.sendCommand(['HINCRBY', this.#statsKey, 'published', String(n)]).catch((err: unknown) => debug('counting %d publishes failed: %s', n, err));
    });
  }
  #uncounted = 0;

  /** The subscriber count changed: tell the other processes within a second (one write per second at most). */
  #announceSoon(): void {
    if (this.#announceTimer) return;
    this.#announceTimer = setTimeout(() => {
      this.#announceTimer = undefined;
      this.#announce().catch((err: unknown) => debug('announcing this process failed: %s', err));
    }, 1000);
    this.#announceTimer.unref();
  }

  /**
   * Channels Redis expires by itself (idle past their channelTimeout, nobody touching them) vanish
   * with no script to see it: with `notify-keyspace-events` holding E and x (or A), Redis says so,
   * and one process (the first to claim it) reports the channel destroyed. Left off otherwise.
   */
  async #watchExpiries(): Promise<void> {
    if (isClustered(this.#client)) {
      // Each node of a cluster tells only its own subscribers about the keys it expires.
      debug('on a Redis Cluster, channels Redis expires by itself are not reported destroyed');
      return;
    }
    let flags: string;
    try {
      const reply = (await this.#client.sendCommand(['CONFIG', 'GET', 'notify-keyspace-events'])) as unknown;
      flags = Array.isArray(reply) ? String(reply[1] ?? '') : String((reply as Record<string, unknown>)?.['notify-keyspace-events'] ?? '');
    } catch (err) {
      debug('CONFIG GET notify-keyspace-events failed (%s): channels Redis expires are not reported destroyed', err);
      return;
    }
    if (!flags.includes('E') || !(flags.includes('x') || flags.includes('A'))) {
      debug('notify-keyspace-events is "%s" (no E and x): channels Redis expires are not reported destroyed', flags);
      return;
    }
    const database = Number((this.#client.options as { database?: unknown } | undefined)?.database ?? 0);
    const head = `${this.prefix}:{`;
    await this.#subscriber.subscribe(`__keyevent@${database}__:expired`, (key: string) => {
      if (!key.startsWith(head) || !key.endsWith('}:meta') || this.#lifecycleListeners.size === 0) return;
      const channel = key.slice(head.length, -'}:meta'.length);
      const claim = `${head}${channel}}:gone`;
      this.#client
        .sendCommand(['SET', claim, this.processId, 'NX', 'PX', '2000'])
        .then((won) => {
          if (won !== null) this.#lifecycle(channel, 'd');
        })
        .catch((err: unknown) => debug('claiming the expiry of %s failed: %s', channel, err));
    });
  }

  /** Writes this process's line of the statistics summary (by_worker), valid for one lease. */
  async #announce(): Promise<void> {
    if (this.#closed || !this.#client.isReady) return;
    const me: StoreWorker = { pid: process.pid, hostname: hostname(), subscribers: this.#presence.count, since: this.#since };
    await Promise.all([
      this.#global(WORKER_SCRIPTS.announce, [this.#workersKey], [this.processId, JSON.stringify(me), String(this.#lease)]),
      // Since when the store's data exists: the first process on an empty Redis sets it.
      this.#command(['HSETNX', this.#statsKey, 'since', String(this.#since)]),
    ]);
  }

  /**
   * Waits until `replicas` replicas hold every write `publisher` made (WAIT, sent to the channel's
   * master on a cluster); 503 when they have not confirmed within replicaTimeout.
   */
  async #replicated(channel: string, publisher: RedisClient): Promise<void> {
    const args = ['WAIT', String(this.#replicas), String(this.#replicaTimeout)];
    const sent = isClustered(publisher) ? publisher.sendKeyed(this.#keys(channel).meta, args) : publisher.sendCommand(args);
    let confirmed: number;
    try {
      confirmed = Number(await withDeadline(sent, this.#replicaTimeout + this.#timeout));
    } catch (err) {
      if (err instanceof CommandTimeoutError) this.#resetConnection(publisher);
      throw toStoreError(err);
    }
    if (confirmed >= this.#replicas) return;
    debug('publish %s: %d of %d replicas confirmed within %d ms', channel, confirmed, this.#replicas, this.#replicaTimeout);
    throw unavailable(
      `the message is on the Redis master, but ${confirmed} of the ${this.#replicas} replicas the store waits for (option "replicas") confirmed it within ${this.#replicaTimeout} ms; it may still be delivered: retry with the same Idempotency-Key`,
    );
  }

  /** A command with the store's deadline and errors (503 while Redis is away). */
  async #command(args: string[]): Promise<unknown> {
    await this.#ensureConnected();
    try {
      return await withDeadline(this.#client.sendCommand(args), this.#timeout);
    } catch (err) {
      if (err instanceof CommandTimeoutError) {
        this.#resetConnection();
        throw unavailable(`${err.message}; the connection is reset`);
      }
      throw toStoreError(err);
    }
  }

  /** A script on keys of the store's own (not a channel's). */
  async #global(script: LuaScript, keys: string[], args: string[]): Promise<Reply> {
    await this.#ensureConnected();
    const tail = [String(keys.length), ...keys, ...args];
    return (await this.#command(['EVALSHA', script.sha, ...tail]).catch((err: unknown) => {
      if (!(err instanceof Error) || !err.message.includes('NOSCRIPT')) throw err;
      return this.#command(['EVAL', script.source, ...tail]);
    })) as Reply;
  }

  #limitOf(channel: string): ChannelLimit | undefined {
    return isWildcardKey(channel, this.wildcardChannelPrefix) ? this.#wildcardLimit : this.#limit;
  }

  #tooMany(channel: string): never {
    const limit = this.#limitOf(channel)!;
    throw tooManyChannelsInStore(limit.max, limit.option);
  }

  /** Reports what a script did to the channel ('c' created, 'd' removed, in order). */
  #lifecycle(channel: string, happened: string): void {
    for (const c of happened) {
      const event: LifecycleEvent = { type: c === 'c' ? 'created' : 'destroyed', channel };
      debug('channel %s %s', channel, event.type);
      for (const listener of this.#lifecycleListeners) {
        try {
          listener(event);
        } catch (err) {
          debug('a channel %s listener threw: %s', event.type, err);
        }
      }
    }
  }

  #keys(channel: string): ChannelKeys {
    return channelKeys(this.prefix, channel);
  }

  async #connect(): Promise<void> {
    const pending: Promise<unknown>[] = [this.#subscriber.connect()];
    if (this.#publisher) pending.push(this.#publisher.connect());
    pending.push(this.#client.connect());
    await Promise.all(pending);
    await this.#announce().catch((err: unknown) => debug('announcing this process failed: %s', err));
    await this.#watchExpiries().catch((err: unknown) => debug('listening for channels Redis expires failed: %s', err));
  }

  /**
   * Fails at once while Redis cannot be reached (a connection attempt failed since it was last
   * ready); while the first attempt is still under way, waits for it up to commandTimeout.
   */
  async #ensureConnected(): Promise<void> {
    if (this.#closed) throw storeClosed('Redis store');
    if (this.#client.isReady && this.#subscriber.isReady) return;
    if (this.#outage) throw unavailable(this.#outage.message || this.#outage.constructor.name);
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.#connecting,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(unavailable(`not connected within ${this.#timeout}ms`)), this.#timeout);
        }),
      ]);
    } catch (err) {
      throw toStoreError(err);
    } finally {
      clearTimeout(timer);
    }
    if (!this.#client.isReady) throw unavailable('not connected (reconnecting)');
  }

  #run(channel: string, script: LuaScript, args: ReadonlyArray<string | Buffer>, client = this.#client): Promise<Reply> {
    // Connected (nearly always): sent now, in call order with whatever the store sent before.
    if (this.#closed || !(this.#client.isReady && this.#subscriber.isReady)) return this.#ensureConnected().then(() => this.#send(channel, script, args, client));
    return this.#send(channel, script, args, client);
  }

  async #send(channel: string, script: LuaScript, args: ReadonlyArray<string | Buffer>, client: RedisClient): Promise<Reply> {
    try {
      const view = this.#views.get(channel);
      const uncounted = view ? view.added.size - view.free.length : 0;
      const [lifecycle, result] = list(await runScript(client, script, this.#keys(channel), args, this.#timeout, this.#limitOf(channel), uncounted));
      const happened = text(lifecycle);
      if (happened !== '') this.#lifecycle(channel, happened);
      return result ?? null;
    } catch (err) {
      if (err instanceof CommandTimeoutError) {
        this.#resetConnection(client);
        throw unavailable(`${err.message}; the connection is reset (a publish that timed out may still have been stored)`);
      }
      throw toStoreError(err);
    }
  }

  /**
   * A command timed out: its reply may still come, and every command behind it waits too. Drop the
   * connection (what is in flight fails at once) and open a new one; its 'ready' is a reconnect, so
   * the recovery (leases, resync of parked subscribers) runs as after any outage.
   */
  #resetConnection(client = this.#client): void {
    // On a cluster too: a connection kept to a hung master would queue writes there, which it runs
    // when it wakes up, possibly after its replica took over (duplicates under other ids).
    if (this.#closed || this.#resetting.has(client)) return;
    this.#resetting.add(client);
    debug('a command got no answer within %d ms: resetting the connection to Redis', this.#timeout);
    if (client.isOpen) client.destroy();
    client
      .connect()
      .catch((err: unknown) => debug('reconnecting after a command time-out failed: %s', err))
      .finally(() => {
        this.#resetting.delete(client);
      });
  }

  /** A connection failed: logged and emitted once per outage, not on every reconnection attempt. */
  #connectionFailed(err: Error): void {
    if (this.#closed) return;
    if (this.#outage) {
      debug('redis connection error (still): %s', err.message);
      return;
    }
    this.#outage = err;
    debug('cannot reach Redis at %s: %s (retrying; requests get 503 meanwhile)', this.#target, err.message);
    // An 'error' event nobody listens to would crash the host: emitted only to listeners.
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }

  /** Every 'ready' after the first is a reconnect: wake-ups may have been lost meanwhile. */
  #onReconnect(client: RedisClient): void {
    let connectedBefore = client.isReady;
    const onReady = () => {
      if (this.#client.isReady && this.#subscriber.isReady) {
        if (this.#outage) debug('connected to Redis at %s', this.#target);
        this.#outage = undefined;
        this.emit('ready');
      }
      if (!connectedBefore) {
        connectedBefore = true;
        return;
      }
      debug('reconnected to Redis');
      this.#recover();
    };
    client.on('ready', onReady);
  }

  /**
   * After a reconnect (node-redis has re-subscribed by then): count this process's subscribers in
   * again (Redis may have restarted empty), then have every parked subscriber re-read from its cursor.
   */
  #recover(): void {
    if (this.#recovering) {
      // A second connection came back while the first recovery ran (a cluster's two connections
      // heal one after the other): recover once more afterwards, so no wake-up falls between.
      this.#recoverAgain = true;
      return;
    }
    this.#recovering = (async () => {
      while (!this.#closed && !(this.#client.isReady && this.#subscriber.isReady)) await waitForReady(this.#client, this.#subscriber);
      if (this.#closed) return;
      await this.#presence.beat(true);
      debug('recovered: %d channels held, re-reading %d watched channels', this.#presence.channels.length, this.#subscriptions.size);
      this.#subscriptions.resyncAll();
    })()
      .catch((err: unknown) => debug('recovery failed: %s', err))
      .finally(() => {
        this.#recovering = undefined;
        if (this.#recoverAgain && !this.#closed) {
          this.#recoverAgain = false;
          this.#recover();
        }
      });
  }
  #recoverAgain = false;

  // ---------------------------------------------------------------------------------------------
  // What this process knows of the channels it watches (channel-view.ts), and its counting in batches.

  /** By channel: the channels this process watches. */
  readonly #views = new Map<string, ChannelView>();
  /** Views with subscribers counted in here and not in Redis yet (sent within COUNT_MS). */
  readonly #dirty = new Set<ChannelView>();
  #flushTimer: NodeJS.Timeout | undefined;
  /** Views whose only news is subscribers answered or gone (sent within LINGER_MS, unless others take their places). */
  readonly #lingering = new Set<ChannelView>();
  #lingerTimer: NodeJS.Timeout | undefined;
  /** Views whose only news is that a subscriber asked (their last-requested time). */
  readonly #touched = new Set<ChannelView>();
  #touchTimer: NodeJS.Timeout | undefined;

  /** The view's epoch when it is live (a read sent now may teach it), else -1. */
  #liveEpoch(channel: string): number {
    const view = this.#views.get(channel);
    return view?.live ? view.epoch : -1;
  }

  #unview(view: ChannelView): void {
    if (--view.watchers > 0 || this.#views.get(view.channel) !== view) return;
    // Its batch goes now: nothing counts for this channel here any more once the view is gone.
    this.#flush(view.channel);
    this.#views.delete(view.channel);
    this.#touched.delete(view);
  }

  /**
   * Every wake-up of a watched channel, once, before its watchers get it. False for the wake-up of a
   * message they heard already (this process's own publish, see publish()).
   */
  #observe(channel: string, event: WakeUp): boolean {
    const view = this.#views.get(channel);
    switch (event.type) {
      case 'message': {
        this.#presence.saw(channel, event.message.id);
        const heard = view?.published(this.#shared(channel, event.message), event.previous, event.kept, Date.now());
        if (heard === 'again') return false;
        // A gap in the channel's sequence numbers: wake-ups were missed (a Redis Cluster slot moved).
        if (heard === 'missed') this.#missed(view!);
        break;
      }
      case 'dropped':
        view?.dropped(event.id);
        break;
      case 'resync':
        view?.reset();
        break;
      case 'deleted':
        // Redis counts nobody on it any more, and this process's subscribers there are told so.
        view?.reset();
        if (view) {
          view.requestedAt = view.requestedSent = 0;
          view.free.length = 0;
          view.added.clear();
          view.members.clear();
          view.uncounted.clear();
          this.#dirty.delete(view);
          this.#lingering.delete(view);
          view.flushed?.resolve();
          view.flushed = undefined;
        }
        this.#presence.forget(channel);
        break;
      case 'conflict': {
        // A concurrency `last` join counted out everyone but `keep`: their leaves must count nothing.
        if (!view) break;
        const free = new Set(view.free);
        view.free.length = 0;
        for (const member of this.#presence.idsOf(channel)) {
          if (member === event.keep || view.added.has(member)) continue;
          this.#presence.left(channel, [member]);
          if (!free.has(member)) view.uncounted.add(member);
        }
        break;
      }
    }
    return true;
  }

  /**
   * Redis said the channel's last id is `last` (a heartbeat): if the view has not heard of it within a
   * second, wake-ups were missed, and every subscriber parked on the channel reads from its cursor.
   */
  #verify(channel: string, epoch: number, last: MessageId | undefined): void {
    const view = this.#views.get(channel);
    if (!view?.known || !last || view.epoch !== epoch || view.heard(last)) return;
    setTimeout(() => {
      if (this.#views.get(channel) === view && view.epoch === epoch && !view.heard(last)) this.#missed(view, true);
    }, 1000).unref();
  }

  /**
   * The view missed wake-ups: it knows nothing any more, and the channel's parked subscribers read
   * again. `silent`: none came at all for a second (the heartbeat found the message), so the
   * subscription itself may be gone (a cluster slot migrated): it is made again.
   */
  #missed(view: ChannelView, silent = false): void {
    debug('wake-ups of %s were missed: its subscribers read from their cursors again', view.channel);
    view.reset();
    const events = this.#keys(view.channel).events;
    if (silent) this.#subscriptions.resubscribe(events);
    else this.#subscriptions.resync(events);
  }

  /**
   * The message object this process already holds for that id on the channel, if it does: every
   * answer of one message then shares one object (and the answer built once for it).
   */
  #shared(channel: string, message: StoredMessage): StoredMessage {
    return this.#views.get(channel)?.recentMessage(message.id) ?? message;
  }

  /** A long-poll with nothing to read: counted in at the next flush, in the place of one answered meanwhile if any. */
  #countIn(view: ChannelView, request: JoinRequest): void {
    const member = view.free.pop();
    if (member !== undefined) view.members.set(request.subscriberId, member);
    else view.added.add(request.subscriberId);
    // What a join would create the channel with, should it be gone when the batch is counted in.
    view.createWith = request.create ? request.channelTimeout : undefined;
    this.#presence.joined(view.channel, member ?? request.subscriberId, request.create, request.channelTimeout);
    this.#dirty.add(view);
    this.#flushSoon();
    this.#announceSoon();
  }

  /**
   * Subscribers answered or gone: counted out at the next flush, unless a new one takes their place
   * first. Resolves once that flush is done (relay.close() waits for it).
   */
  #countOut(view: ChannelView, subscriberIds: readonly string[]): Promise<void> {
    for (const id of subscriberIds) {
      const member = view.members.get(id) ?? id;
      view.members.delete(id);
      if (!this.#presence.holds(view.channel, member)) {
        // Never counted (refused), counted out already, or removed from Redis by a `last` join.
        view.uncounted.delete(member);
        continue;
      }
      this.#presence.left(view.channel, [member]);
      if (!view.added.delete(member)) view.free.push(member);
    }
    this.#announceSoon();
    if (!view.dirty) return Promise.resolve();
    if (view.strict || view.unstored || view.added.size > 0) {
      this.#dirty.add(view);
      this.#flushSoon();
    } else {
      // A long-poll answered comes back soon, most often: it then takes its own place, and Redis hears nothing.
      this.#lingering.add(view);
      this.#lingerTimer ??= setTimeout(() => {
        this.#lingerTimer = undefined;
        for (const v of [...this.#lingering]) this.#flush(v.channel);
      }, LINGER_MS).unref();
    }
    return (view.flushed ??= deferred()).promise;
  }

  /** A poll answered from the view: the channel's last-requested time, sent with the next flush or within a second. */
  #touch(view: ChannelView): void {
    view.touched = true;
    this.#touched.add(view);
    if (this.#touchTimer) return;
    this.#touchTimer = setTimeout(() => {
      this.#touchTimer = undefined;
      for (const v of [...this.#touched]) this.#flush(v.channel);
    }, TOUCH_MS);
    this.#touchTimer.unref();
  }

  #flushSoon(): void {
    if (this.#flushTimer) return;
    this.#flushTimer = setTimeout(() => {
      this.#flushTimer = undefined;
      for (const view of [...this.#dirty]) this.#flush(view.channel);
    }, COUNT_MS);
    this.#flushTimer.unref();
  }

  /**
   * Sends the channel's batch (subscribers counted out, then in, and its last-requested time). Sent on
   * the store's connection, it reaches Redis before any script sent after it. Its failure is the
   * heartbeat's to mend: a leave is retried, a join counted in again by the recovery after an outage.
   */
  #flush(channel: string): Promise<unknown> | undefined {
    const view = this.#views.get(channel);
    if (!view) return undefined;
    this.#dirty.delete(view);
    this.#lingering.delete(view);
    if (!view.dirty) {
      // Those answered were replaced by new subscribers before anything had to be sent.
      view.flushed?.resolve();
      view.flushed = undefined;
      return undefined;
    }
    const out = view.free.splice(0);
    const into = [...view.added];
    const touched = view.touched;
    view.added.clear();
    view.touched = false;
    this.#touched.delete(view);
    const create = view.createWith !== undefined ? ruleArgs({ ...DEFAULT_BUFFER_RULES, channelTimeout: view.createWith }) : NO_RULES;
    const sent = this.#run(channel, this.#scripts.count, [this.processId, String(this.#lease), create === NO_RULES ? '0' : '1', ...create, `${out.length}${touched ? 't' : ''}`, ...out, ...into]);
    const waiting = view.flushed;
    view.flushed = undefined;
    view.sending = sent;
    sent.then(
      () => waiting?.resolve(),
      (err: unknown) => waiting?.reject(err),
    );
    this.#leaving.add(sent);
    sent
      .catch((err: unknown) => {
        debug('counting %d subscribers out and %d in on %s failed: %s', out.length, into.length, channel, err);
        if (out.length > 0) this.#presence.leaveFailed(channel, out);
        if (into.length > 0) this.#presence.joinFailed(channel);
      })
      .finally(() => {
        this.#leaving.delete(sent);
        if (view.sending === sent) view.sending = undefined;
      });
    return sent;
  }
}

function deferred(): { promise: Promise<void>; resolve: () => void; reject: (err: unknown) => void } {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** How long subscribers counted in wait to go to Redis together. */
const COUNT_MS = 5;
/** COUNT's rules when it may not create the channel: never read. */
const NO_RULES: readonly string[] = ['0', '0', '0', '0', '0'];
/**
 * How long answered or gone subscribers stay counted in Redis, on a channel with neither a subscriber
 * limit nor a concurrency other than `broadcast`, waiting for a long-poll coming back to take their place.
 */
const LINGER_MS = 100;
/** How often, at most, a channel's last-requested time is sent when its polls are answered from memory. */
const TOUCH_MS = 1000;
const JOINED: NextOrJoinResult = Object.freeze({ joined: Object.freeze({ ok: true }) });

/** `text` matched literally by a SCAN MATCH pattern. */
function globEscape(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}

/**
 * Keys SCAN visits per step of a channel listing. A step's script reads 4 values per channel found:
 * with 1,000 a step took 5 to 10 ms of Redis time (measured: 100,000 channels, a shared machine),
 * which held every other command up that long; with 250, about a quarter of that.
 */
const SCAN_STEP = 250;

function waitForReady(...clients: RedisClient[]): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      for (const c of clients) c.off('ready', done);
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(done, 1000);
    for (const c of clients) c.on('ready', done);
  });
}

/** Waits for `promises` to settle, at most `ms`. */
async function settledWithin(promises: Promise<unknown>[], ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([Promise.allSettled(promises), new Promise((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

/** Where the store connects, for messages (passwords masked). */
function targetOf({ url, client, cluster, sentinel }: RedisStoreOptions): string {
  if (sentinel) return `the master "${sentinel.name}" of the sentinels at ${sentinel.sentinelRootNodes.map((n) => `${n.host}:${n.port}`).join(', ')}`;
  if (cluster) {
    const node = (n: (typeof cluster.rootNodes)[number]) => {
      if (n.url) return redactedUrl(n.url);
      const socket = n.socket as { host?: string; port?: number } | undefined;
      return `${socket?.host ?? '127.0.0.1'}:${socket?.port ?? 6379}`;
    };
    return `the Redis Cluster of ${cluster.rootNodes.map(node).join(', ')}`;
  }
  return client ? 'the given client' : redactedUrl(url ?? 'redis://127.0.0.1:6379');
}

/** The URL with its password masked. */
function redactedUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString().replace(/\/$/, '');
  } catch {
    return 'the given url';
  }
}

function positive(ms: number, option: string): number {
  if (!(ms > 0)) throw new TypeError(`push-relay: RedisStore option "${option}" must be more than 0`);
  return ms;
}

/** What a publish under `rules` keeps of its message, as the publish script's wake-up says it. */
function keptOf(rules: BufferRules): Kept {
  return {
    max: rules.storeMessages ? Math.max(0, Math.floor(rules.maxMessages)) : 0,
    timeout: Math.ceil(rules.messageTimeout),
    recipients: Math.max(0, Math.floor(rules.minRecipients ?? 0)),
  };
}

function ruleArgs(rules: BufferRules): string[] {
  return [
    rules.storeMessages ? '1' : '0',
    String(Math.max(0, Math.floor(rules.minMessages))),
    String(Math.max(0, Math.floor(rules.maxMessages))),
    String(Math.ceil(rules.messageTimeout)),
    String(Math.ceil(rules.channelTimeout)),
  ];
}

function infoOf(r: Reply[], from: number): ChannelInfo {
  return { messages: int(r[from]), requested: int(r[from + 1]), subscribers: int(r[from + 2]), lastMessageId: fromStreamId(text(r[from + 3])) };
}

function messageOf(id: string, fields: Reply[]): StoredMessage {
  let data: Buffer = Buffer.alloc(0);
  let contentType: string | undefined;
  let eventType: string | undefined;
  let previousId: MessageId | undefined;
  let eventId: string | undefined;
  let seq: number | undefined;
  let response: HttpResponseHead | undefined;
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const value = fields[i + 1];
    switch (text(fields[i])) {
      case 'd':
        data = Buffer.isBuffer(value) ? value : Buffer.from(text(value));
        break;
      case 'c':
        contentType = text(value);
        break;
      case 'e':
        eventType = text(value);
        break;
      case 'p':
        previousId = fromStreamId(text(value));
        break;
      case 'i':
        eventId = text(value);
        break;
      case 's':
        seq = Number(text(value));
        break;
      case 'h':
        response = responseHead(text(value));
        break;
    }
  }
  return { id: fromStreamId(id)!, previousId, data, contentType, eventType, eventId, seq, ...(response ? { response } : {}) };
}

/** Long-polls of one channel, with the same join options, that go to Redis in one script. */
interface PollBatch {
  channel: string;
  /** The first one's request: every one's but for its subscriber id. */
  request: JoinRequest;
  /** Cursor and subscriber id of each, flat, in arrival order. */
  cursors: string[];
  waiting: Array<{ request: JoinRequest; resolve: (r: NextOrJoinResult) => void; reject: (err: unknown) => void }>;
}
