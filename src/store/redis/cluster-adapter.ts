/**
 * A node-redis Redis Cluster client (`createCluster()`) behind the narrow client interface RedisStore
 * uses, the way ioredis-adapter.ts puts an ioredis client behind it:
 *
 * - commands go to the master of their first key's slot (every key of a channel shares one slot);
 * - wake-ups use sharded pub/sub (SSUBSCRIBE on the channel's master, SPUBLISH from the scripts) on
 *   Redis 7 and later, where a wake-up is sent to one shard instead of the whole cluster; plain
 *   pub/sub otherwise, and for the store-wide channels (broadcasts);
 * - failover: node-redis learns the slots again only on a MOVED reply, and a dead master sends none,
 *   so on a node's failure the adapter asks the cluster for its slots again, every `HEAL_STEP` ms,
 *   until every master answers; then it subscribes every channel again (the dead master's
 *   subscriptions went with it) and emits 'ready', which makes the store recover as after any
 *   reconnect (its subscribers re-read from their cursors). Meanwhile only the failed shard's
 *   channels get 503; the other shards serve on.
 */
import { EventEmitter } from 'node:events';
import { log } from '../../log.js';

const debug = log('redis');

/** How often the adapter asks for the slots again while a node is failing (ms). */
const HEAL_STEP = 250;
/** How long a master has to answer the PING that tells the cluster is whole again (ms). */
export const PING_TIMEOUT = 1000;

type Listener = (message: Buffer | string, channel: Buffer | string) => void;

/** The part of node-redis' RedisCluster (createCluster() from "redis" 5) the adapter calls. */
export interface RedisClusterClient {
  readonly isOpen: boolean;
  readonly masters: ReadonlyArray<ClusterNodeRef>;
  readonly _options: { rootNodes: ReadonlyArray<object>; defaults?: object | undefined };
  /** node-redis' slot map; its rediscover() is what a MOVED reply calls (see #heal). */
  readonly _slots?: unknown;
  duplicate(overrides?: Record<string, unknown>): RedisClusterClient;
  connect(): Promise<unknown>;
  destroy(): void;
  sendCommand(firstKey: string | Buffer | undefined, isReadonly: boolean | undefined, args: ReadonlyArray<string | Buffer>, options?: unknown): Promise<unknown>;
  nodeClient(node: ClusterNodeRef): Promise<{ sendCommand(args: ReadonlyArray<string | Buffer>, options?: unknown): Promise<unknown> }>;
  publish(channel: string, message: string | Buffer): Promise<unknown>;
  subscribe(channel: string, listener: Listener, buffer?: boolean): Promise<void>;
  unsubscribe(channel: string, listener?: Listener, buffer?: boolean): Promise<void>;
  sSubscribe(channel: string, listener: Listener, buffer?: boolean): Promise<void>;
  sUnsubscribe(channel: string, listener?: Listener, buffer?: boolean): Promise<void>;
  // node-redis types its listeners' arguments loosely; anything narrower is not assignable from it.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  on(event: string, listener: (...args: any[]) => void): unknown;
}

export interface ClusterNodeRef {
  readonly address: string;
  readonly host: string;
  readonly port: number;
}

/** What the store asks of a cluster connection, node-redis' or ioredis' (ioredis-cluster-adapter.ts). */
export interface ClusteredConnection {
  readonly clustered: true;
  /** Whether the servers have sharded pub/sub (Redis 7 and later): learnt on connect. */
  readonly sharded: boolean;
  readonly masters: ReadonlyArray<unknown>;
  /** `args` on one master (SCAN). */
  onMaster(master: never, args: ReadonlyArray<string | Buffer>): Promise<unknown>;
  /** `args` on the master of `key`'s slot (WAIT after a channel's publish). */
  sendKeyed(key: string, args: ReadonlyArray<string | Buffer>): Promise<unknown>;
}

export function isClustered(connection: unknown): connection is ClusteredConnection {
  return (connection as Partial<ClusteredConnection> | null)?.clustered === true;
}

/** Whether `client` looks like a node-redis cluster client. */
export function isRedisCluster(client: unknown): client is RedisClusterClient {
  const c = client as Partial<RedisClusterClient> | null;
  return typeof c === 'object' && c !== null && typeof c.nodeClient === 'function' && typeof c.sSubscribe === 'function' && typeof c.sendCommand === 'function';
}

/** Commands whose first argument is not a key (sent to any node). */
const KEYLESS = new Set(['SCAN', 'CONFIG', 'INFO', 'PING', 'PUBLISH', 'CLUSTER']);

export class ClusterAdapter extends EventEmitter {
  readonly #cluster: RedisClusterClient;
  /** Channels subscribed with SSUBSCRIBE (or SUBSCRIBE), to subscribe again after a failover. */
  readonly #subscriptions = new Map<string, { listener: Listener; buffer: boolean; sharded: boolean }>();
  #connected = false;
  #destroyed = false;
  #healing: Promise<void> | undefined;
  /** Whether the servers have sharded pub/sub (Redis 7 and later): learnt on connect. */
  sharded = false;
  readonly clustered = true;

  constructor(cluster: RedisClusterClient) {
    super();
    this.#cluster = cluster;
    cluster.on('error', (err: Error) => this.#failed(err));
    cluster.on('node-error', (err: Error) => this.#failed(err));
  }

  get isReady(): boolean {
    return this.#connected && this.#cluster.isOpen;
  }

  get isOpen(): boolean {
    return !this.#destroyed && this.#cluster.isOpen;
  }

  get options(): { database: number } {
    return { database: 0 };
  }

  duplicate(options: { disableOfflineQueue?: boolean } = {}): ClusterAdapter {
    const defaults = { ...this.#cluster._options.defaults, ...(options.disableOfflineQueue ? { disableOfflineQueue: true } : {}) };
    return new ClusterAdapter(this.#cluster.duplicate({ defaults }));
  }

  async connect(): Promise<void> {
    this.#destroyed = false;
    if (!this.#cluster.isOpen) await this.#cluster.connect();
    const info = String(await this.#cluster.sendCommand(undefined, true, ['INFO', 'server']));
    const major = Number(/redis_version:(\d+)/.exec(info)?.[1] ?? 0);
    this.sharded = major >= 7;
    this.#connected = true;
    debug('connected to a Redis Cluster of %d masters (Redis %d: %s pub/sub)', this.#cluster.masters.length, major, this.sharded ? 'sharded' : 'plain');
    this.emit('ready');
  }

  destroy(): void {
    this.#destroyed = true;
    this.#connected = false;
    if (this.#cluster.isOpen) this.#cluster.destroy();
  }

  async sendCommand(args: ReadonlyArray<string | Buffer>, options?: unknown): Promise<unknown> {
    const name = String(args[0]).toUpperCase();
    let key: string | Buffer | undefined;
    if (name === 'EVAL' || name === 'EVALSHA') key = Number(args[2]) > 0 ? args[3] : undefined;
    else if (!KEYLESS.has(name)) key = args[1];
    try {
      return await this.#cluster.sendCommand(key, false, args, options);
    } catch (err) {
      if (isConnectionFailure(err)) this.#failed(err as Error);
      throw err;
    }
  }

  /** `args` on the master of `key`'s slot (WAIT after a channel's publish). */
  sendKeyed(key: string, args: ReadonlyArray<string | Buffer>): Promise<unknown> {
    return this.#cluster.sendCommand(key, false, args);
  }

  /** The masters' addresses, for a listing that visits each. */
  get masters(): ReadonlyArray<ClusterNodeRef> {
    return this.#cluster.masters;
  }

  /** `args` on one master. */
  async onMaster(master: ClusterNodeRef, args: ReadonlyArray<string | Buffer>): Promise<unknown> {
    return (await this.#cluster.nodeClient(master)).sendCommand(args);
  }

  async publish(channel: string, message: string | Buffer): Promise<number> {
    return Number(await this.#cluster.publish(channel, message));
  }

  /** Channels with a hash tag (a channel's wake-ups) go by sharded pub/sub when the servers have it. */
  async subscribe(channel: string, listener: Listener, buffer = false): Promise<void> {
    const sharded = this.sharded && channel.includes('{');
    this.#subscriptions.set(channel, { listener, buffer, sharded });
    try {
      await (sharded ? this.#cluster.sSubscribe(channel, listener, buffer) : this.#cluster.subscribe(channel, listener, buffer));
    } catch (err) {
      this.#subscriptions.delete(channel);
      if (isConnectionFailure(err)) this.#failed(err as Error);
      throw err;
    }
  }

  async unsubscribe(channel: string, listener: Listener, buffer = false): Promise<void> {
    const subscription = this.#subscriptions.get(channel);
    this.#subscriptions.delete(channel);
    await (subscription?.sharded ? this.#cluster.sUnsubscribe(channel, listener, buffer) : this.#cluster.unsubscribe(channel, listener, buffer));
  }

  /** A node failed: learn the slots again until every master answers (see the file's comment). */
  #failed(err: Error): void {
    if (this.#destroyed || !this.#connected) {
      if (!this.#destroyed) this.emit('error', err);
      return;
    }
    this.emit('error', err);
    if (this.#healing) return;
    this.#healing = this.#heal().finally(() => {
      this.#healing = undefined;
    });
  }

  async #heal(): Promise<void> {
    const rootNodes = this.#cluster._options.rootNodes;
    const slots = this.#cluster._slots as { rediscover?: (startWith: { options: object }) => Promise<void> } | undefined;
    const rediscover = typeof slots?.rediscover === 'function' ? slots.rediscover.bind(slots) : undefined;
    for (let attempt = 0; !this.#destroyed; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, HEAL_STEP).unref());
      if (this.#destroyed) return;
      try {
        if (!rediscover) throw new Error('this node-redis cluster client cannot be asked for its slots again');
        // Asked of a master that answers: a hung node would hold the question (and node-redis shares
        // one question at a time), a dead one refuses it; the root nodes when none answers.
        const answering = await this.#answeringMaster();
        await rediscover({ options: answering ? nodeOptions(rootNodes[0]!, answering) : rootNodes[attempt % rootNodes.length]! });
        // A hung master never answers: bounded, so that the next attempt can find its replica promoted.
        await Promise.all(this.#cluster.masters.map(async (master) => answersWithin((await this.#cluster.nodeClient(master)).sendCommand(['PING']), PING_TIMEOUT)));
        for (const [channel, { listener, buffer, sharded }] of this.#subscriptions) {
          await (sharded ? this.#cluster.sSubscribe(channel, listener, buffer) : this.#cluster.subscribe(channel, listener, buffer));
        }
        debug('the cluster serves every slot again (%d masters)', this.#cluster.masters.length);
        this.emit('ready');
        return;
      } catch (err) {
        debug('the cluster is not whole yet (%s): asking again in %d ms', err instanceof Error ? err.message : err, HEAL_STEP);
      }
    }
  }

  /** A master that answers PING now, if any does. */
  async #answeringMaster(): Promise<ClusterNodeRef | undefined> {
    const masters = this.#cluster.masters;
    const answers = await Promise.allSettled(masters.map(async (master) => answersWithin((await this.#cluster.nodeClient(master)).sendCommand(['PING']), PING_TIMEOUT)));
    const i = answers.findIndex((a) => a.status === 'fulfilled');
    return i < 0 ? undefined : masters[i];
  }
}

/** `rootNode`'s options (credentials, TLS) for the node at `at`'s address. */
function nodeOptions(rootNode: object, at: ClusterNodeRef): object {
  const given = rootNode as { url?: string; socket?: object };
  if (given.url) {
    const url = new URL(given.url);
    url.hostname = at.host;
    url.port = String(at.port);
    return { ...given, url: url.toString() };
  }
  return { ...given, socket: { ...given.socket, host: at.host, port: at.port } };
}

/** `reply`, or a rejection once `ms` have passed (a hung node never answers). */
export function answersWithin(reply: Promise<unknown>, ms: number): Promise<unknown> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`a master did not answer PING within ${ms} ms`)), ms);
  });
  return Promise.race([reply, late]).finally(() => clearTimeout(timer));
}

function isConnectionFailure(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as NodeJS.ErrnoException).code;
  return (
    ['ClientOfflineError', 'ClientClosedError', 'SocketClosedUnexpectedlyError', 'ConnectionTimeoutError', 'SocketTimeoutError'].includes(err.constructor.name) ||
    (typeof code === 'string' && /^(ECONN|EPIPE|ETIMEDOUT|EHOSTUNREACH)/.test(code)) ||
    /^(CLUSTERDOWN|Cannot find node)/.test(err.message)
  );
}
