/**
 * An ioredis Cluster (`new Cluster()` from "ioredis" 5) behind the narrow client interface RedisStore
 * uses, as cluster-adapter.ts does for node-redis: commands go where ioredis routes them (by their
 * keys), wake-ups by sharded pub/sub on Redis 7 and later (the adapter's copies are made with
 * `shardedSubscribers: true`), plain pub/sub otherwise. ioredis follows a failover by itself (it
 * refreshes its slots when a node fails); after a node was lost, its next slot refresh that finds
 * every master answering emits 'ready', so that the store recovers (re-reads for parked subscribers).
 */
import { EventEmitter } from 'node:events';
import calculateSlot from 'cluster-key-slot';
import { log } from '../../log.js';
import { ClientOfflineError, offlineAs503 } from './ioredis-adapter.js';
import { answersWithin, PING_TIMEOUT } from './cluster-adapter.js';

const debug = log('redis');

type Listener = (message: Buffer | string, channel: Buffer | string) => void;

interface IORedisNode {
  readonly options: { host?: string; port?: number };
  callBuffer(command: string, ...args: Array<string | Buffer>): Promise<unknown>;
}

/** What the adapter calls on an ioredis Cluster. */
export interface IORedisClusterClient {
  readonly isCluster: boolean;
  readonly status: string;
  readonly slots: ReadonlyArray<ReadonlyArray<string> | undefined>;
  readonly options?: { redisOptions?: Record<string, unknown> | undefined };
  duplicate(startupNodes?: unknown[], options?: Record<string, unknown>): IORedisClusterClient;
  connect(): Promise<void>;
  disconnect(reconnect?: boolean): void;
  nodes(role?: 'master' | 'slave' | 'all'): IORedisNode[];
  callBuffer(command: string, ...args: Array<string | Buffer>): Promise<unknown>;
  publish(channel: string, message: string | Buffer): Promise<number>;
  subscribe(...channels: string[]): Promise<unknown>;
  unsubscribe(...channels: string[]): Promise<unknown>;
  ssubscribe(...channels: string[]): Promise<unknown>;
  sunsubscribe(...channels: string[]): Promise<unknown>;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  on(event: string, listener: (...args: any[]) => void): unknown;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  once(event: string, listener: (...args: any[]) => void): unknown;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  off(event: string, listener: (...args: any[]) => void): unknown;
}

/** Whether `client` is an ioredis Cluster. */
export function isIORedisCluster(client: unknown): client is IORedisClusterClient {
  const c = client as Partial<IORedisClusterClient> | null;
  return typeof c === 'object' && c !== null && c.isCluster === true && typeof c.nodes === 'function' && typeof c.callBuffer === 'function';
}


export class IORedisClusterAdapter extends EventEmitter {
  /** The Cluster now: a new one after destroy() (see connect()). */
  #cluster: IORedisClusterClient;
  /** A new Cluster with the same startup nodes and options, for connect() after destroy(). */
  readonly #open: () => IORedisClusterClient;
  #destroyed = false;
  readonly #listeners = new Map<string, { listener: Listener; buffer: boolean; sharded: boolean }>();
  #connected = false;
  /** A node was lost since the last 'ready': the next complete slot refresh is a recovery. */
  #lost = false;
  /** A check that every master answers is under way (see #refreshed). */
  #checking = false;
  /** What the adapter listens to on its Cluster: moved to the new one after destroy(). */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly #handlers: Array<[string, (...args: any[]) => void]> = [
    ['messageBuffer', (channel: Buffer, message: Buffer) => this.#deliver(channel, message)],
    ['smessageBuffer', (channel: Buffer, message: Buffer) => this.#deliver(channel, message)],
    ['error', (err: Error) => this.emit('error', err)],
    [
      'node error',
      (err: Error) => {
        this.#lost = true;
        this.emit('error', err);
      },
    ],
    [
      '-node',
      () => {
        this.#lost = true;
      },
    ],
    ['refresh', () => void this.#refreshed()],
  ];

  /** Whether the servers have sharded pub/sub (Redis 7 and later): learnt on connect. */
  sharded = false;
  readonly clustered = true;

  constructor(cluster: IORedisClusterClient, open: () => IORedisClusterClient = () => cluster.duplicate([], { lazyConnect: true })) {
    super();
    this.#cluster = cluster;
    this.#open = open;
    for (const [event, handler] of this.#handlers) cluster.on(event, handler);
  }

  get isReady(): boolean {
    return !this.#destroyed && this.#connected && this.#cluster.status === 'ready';
  }

  get isOpen(): boolean {
    const status = this.#cluster.status;
    return !this.#destroyed && status !== 'end' && status !== 'close' && status !== 'wait';
  }

  get options(): { database: number } {
    return { database: 0 };
  }

  duplicate(options: { disableOfflineQueue?: boolean } = {}): IORedisClusterAdapter {
    const source = this.#cluster;
    // autoResendUnfulfilledCommands off, as in IORedisAdapter: a publish is never run twice behind the store's back.
    const redisOptions = { ...source.options?.redisOptions, autoResendUnfulfilledCommands: false };
    const open = () => source.duplicate([], { lazyConnect: true, shardedSubscribers: true, redisOptions, ...(options.disableOfflineQueue ? { enableOfflineQueue: false } : {}) });
    return new IORedisClusterAdapter(open(), open);
  }

  /**
   * After destroy(), a new Cluster (as node-redis' connect() after destroy() opens new sockets): the
   * one destroyed closes asynchronously, and its old node connections, ending, take the new ones of the
   * same address out of its pool; once that pool is empty it closes, and ends for good (it was closed
   * by hand), so the store answered 503 until restarted.
   */
  async connect(): Promise<void> {
    if (this.#destroyed) {
      this.#destroyed = false;
      this.#cluster = this.#open();
      for (const [event, handler] of this.#handlers) this.#cluster.on(event, handler);
    }
    const cluster = this.#cluster;
    try {
      await cluster.connect();
    } catch (err) {
      // The Cluster retries by itself (clusterRetryStrategy): its 'ready' completes this connect.
      cluster.once('ready', () => {
        if (cluster === this.#cluster && !this.#destroyed && !this.#connected) this.#ready(cluster).catch((e: unknown) => debug('connecting failed: %s', e));
      });
      throw err;
    }
    await this.#ready(cluster);
  }

  async #ready(cluster: IORedisClusterClient): Promise<void> {
    const info = String(await cluster.callBuffer('INFO', 'server'));
    if (cluster !== this.#cluster || this.#destroyed) return;
    this.sharded = Number(/redis_version:(\d+)/.exec(info)?.[1] ?? 0) >= 7;
    const channels = [...this.#listeners].filter(([, s]) => !s.sharded).map(([c]) => c);
    const shardChannels = [...this.#listeners].filter(([, s]) => s.sharded).map(([c]) => c);
    // A new Cluster after destroy(): the subscriptions the adapter holds, again.
    if (channels.length > 0) await cluster.subscribe(...channels);
    for (const channel of shardChannels) await cluster.ssubscribe(channel);
    this.#connected = true;
    this.emit('ready');
  }

  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    this.#connected = false;
    const old = this.#cluster;
    for (const [event, handler] of this.#handlers) old.off(event, handler);
    // Whatever it still reports while it closes is not news (and not an unhandled 'error').
    old.on('error', () => {});
    old.disconnect(false);
  }

  sendCommand(args: ReadonlyArray<string | Buffer>, _options?: unknown): Promise<unknown> {
    return offlineAs503(this.#cluster.callBuffer(String(args[0]), ...args.slice(1)));
  }

  /** `args` on the master of `key`'s slot (WAIT after a channel's publish). */
  async sendKeyed(key: string, args: ReadonlyArray<string | Buffer>): Promise<unknown> {
    const address = this.#cluster.slots[calculateSlot(key)]?.[0];
    const master = this.#cluster.nodes('master').find((n) => `${n.options.host}:${n.options.port}` === address);
    if (!master) throw new ClientOfflineError(`no master known for the slot of ${key}`);
    return master.callBuffer(String(args[0]), ...args.slice(1));
  }

  get masters(): ReadonlyArray<IORedisNode> {
    return this.#cluster.nodes('master');
  }

  onMaster(master: IORedisNode, args: ReadonlyArray<string | Buffer>): Promise<unknown> {
    return master.callBuffer(String(args[0]), ...args.slice(1));
  }

  async publish(channel: string, message: string | Buffer): Promise<number> {
    return this.#cluster.publish(channel, message);
  }

  async subscribe(channel: string, listener: Listener, buffer = false): Promise<void> {
    const sharded = this.sharded && channel.includes('{');
    const first = !this.#listeners.has(channel);
    this.#listeners.set(channel, { listener, buffer, sharded });
    if (!first) return;
    try {
      await offlineAs503(sharded ? this.#cluster.ssubscribe(channel) : this.#cluster.subscribe(channel));
    } catch (err) {
      this.#listeners.delete(channel);
      throw err;
    }
  }

  async unsubscribe(channel: string, _listener: Listener, _buffer = false): Promise<void> {
    const subscription = this.#listeners.get(channel);
    if (!subscription) return;
    this.#listeners.delete(channel);
    await (subscription.sharded ? this.#cluster.sunsubscribe(channel) : this.#cluster.unsubscribe(channel));
  }

  /**
   * A slot refresh after a node was lost: once every master answers, the store recovers. One check
   * at a time, each PING bounded (a hung master never answers), so a hang ends with one 'ready'.
   */
  async #refreshed(): Promise<void> {
    if (!this.#lost || !this.#connected || this.#checking) return;
    this.#checking = true;
    try {
      await Promise.all(this.#cluster.nodes('master').map((n) => answersWithin(n.callBuffer('PING'), PING_TIMEOUT)));
    } catch (err) {
      debug('after a slot refresh, a master does not answer yet: %s', err);
      return;
    } finally {
      this.#checking = false;
    }
    if (!this.#lost) return;
    this.#lost = false;
    debug('the cluster serves every slot again (%d masters)', this.#cluster.nodes('master').length);
    this.emit('ready');
  }

  #deliver(channel: Buffer, message: Buffer): void {
    const name = channel.toString('utf8');
    const subscription = this.#listeners.get(name);
    if (subscription) subscription.listener(subscription.buffer ? message : message.toString('utf8'), subscription.buffer ? channel : name);
  }
}
