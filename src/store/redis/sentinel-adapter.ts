/**
 * A node-redis Sentinel client (`createSentinel()`) behind the narrow client interface RedisStore
 * uses. node-redis asks the sentinels where the master is, and moves its connections (and its pub/sub
 * connection, with its subscriptions) to the new master when the sentinels announce a failover.
 * Once the new master answers and every subscription is in place again, the adapter emits 'ready',
 * which makes the store recover as after any reconnect: its subscribers re-read from their cursors,
 * so nothing published around the switch is missed.
 */
import { EventEmitter } from 'node:events';
import type { RedisSentinelOptions } from 'redis';
import { log } from '../../log.js';

const debug = log('redis');

type Listener = (message: Buffer | string, channel: Buffer | string) => void;

/** The part of node-redis' RedisSentinel the adapter calls. */
export interface RedisSentinelClient {
  readonly isOpen: boolean;
  readonly isReady: boolean;
  connect(): Promise<unknown>;
  destroy(): Promise<void>;
  sendCommand(isReadonly: boolean | undefined, args: ReadonlyArray<string | Buffer>, options?: unknown): Promise<unknown>;
  subscribe(channel: string, listener: Listener, buffer?: boolean): Promise<unknown>;
  unsubscribe(channel: string, listener?: Listener, buffer?: boolean): Promise<unknown>;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  on(event: string, listener: (...args: any[]) => void): unknown;
}

export type SentinelOptions = RedisSentinelOptions;
export type SentinelFactory = (options: SentinelOptions) => RedisSentinelClient;

export class SentinelAdapter extends EventEmitter {
  readonly #options: SentinelOptions;
  readonly #create: SentinelFactory;
  #sentinel: RedisSentinelClient;
  readonly #subscriptions = new Map<string, { listener: Listener; buffer: boolean }>();
  #connected = false;
  #following: Promise<void> | undefined;
  /** The client a reset closed, until it has closed: connect() then opens a new one. */
  #closing: Promise<void> | undefined;

  constructor(options: SentinelOptions, create: SentinelFactory) {
    super();
    this.#options = options;
    this.#create = create;
    this.#sentinel = this.#make();
  }

  #make(): RedisSentinelClient {
    const sentinel = this.#create(this.#options);
    sentinel.on('error', (err: unknown) => this.emit('error', err instanceof Error ? err : new Error(String(err))));
    sentinel.on('topology-change', (event: { type?: string; node?: { host: string; port: number } }) => {
      if (event.type !== 'MASTER_CHANGE' || !this.#connected) return;
      debug('the sentinels moved the master to %s:%d', event.node?.host, event.node?.port);
      if (this.#following) return;
      this.#following = this.#follow().finally(() => {
        this.#following = undefined;
      });
    });
    return sentinel;
  }

  /** Not while following a new master: the store answers 503 until it has recovered on it. */
  get isReady(): boolean {
    return this.#connected && !this.#following && !this.#closing && this.#sentinel.isReady;
  }

  get isOpen(): boolean {
    return !this.#closing && this.#sentinel.isOpen;
  }

  get options(): { database: number } {
    return { database: Number((this.#options.nodeClientOptions as { database?: number } | undefined)?.database ?? 0) };
  }

  /** A connection of its own (its own sentinel, master and pub/sub connections), same options. */
  duplicate(): SentinelAdapter {
    return new SentinelAdapter(this.#options, this.#create);
  }

  async connect(): Promise<void> {
    if (this.#closing) {
      // A connection reset (a command timed out) closed the client: a new one, same options.
      await this.#closing;
      this.#closing = undefined;
      this.#sentinel = this.#make();
    }
    if (!this.#sentinel.isOpen) await this.#sentinel.connect();
    this.#connected = true;
    this.emit('ready');
  }

  destroy(): void {
    if (this.#closing) return;
    this.#closing = this.#sentinel.destroy().catch((err: unknown) => debug('closing the sentinel client failed: %s', err));
  }

  sendCommand(args: ReadonlyArray<string | Buffer>, options?: unknown): Promise<unknown> {
    return this.#sentinel.sendCommand(false, args, options).catch(whileSwitching);
  }

  async publish(channel: string, message: string | Buffer): Promise<number> {
    return Number(await this.#sentinel.sendCommand(false, ['PUBLISH', channel, message]).catch(whileSwitching));
  }

  async subscribe(channel: string, listener: Listener, buffer = false): Promise<void> {
    this.#subscriptions.set(channel, { listener, buffer });
    try {
      await this.#sentinel.subscribe(channel, listener, buffer);
    } catch (err) {
      this.#subscriptions.delete(channel);
      throw err;
    }
  }

  async unsubscribe(channel: string, listener: Listener, buffer = false): Promise<void> {
    this.#subscriptions.delete(channel);
    await this.#sentinel.unsubscribe(channel, listener, buffer);
  }

  /** After a failover: the new master answers, every subscription is on it again, then 'ready'. */
  async #follow(): Promise<void> {
    for (;;) {
      try {
        await this.#sentinel.sendCommand(false, ['PING']);
        // Already subscribed channels cost no command; awaiting them waits for the new pub/sub connection.
        for (const [channel, { listener, buffer }] of this.#subscriptions) await this.#sentinel.subscribe(channel, listener, buffer);
        debug('following the new master');
        this.#following = undefined;
        this.emit('ready');
        return;
      } catch (err) {
        if (!this.#sentinel.isOpen) return;
        debug('the new master does not answer yet (%s)', err instanceof Error ? err.message : err);
        await new Promise((resolve) => setTimeout(resolve, 250).unref());
      }
    }
  }
}

/**
 * node-redis' Sentinel client (5.x) can throw a TypeError of its own while it moves to a new master
 * (`Cannot read properties of undefined (reading 'isReady')`): a failover under way, which the
 * store answers 503 like any other, not a bug of the command sent.
 */
export class SentinelSwitchError extends Error {
  override readonly name = 'SentinelSwitchError';
}

function whileSwitching(err: unknown): never {
  if (err instanceof TypeError) throw new SentinelSwitchError(`the Sentinel client is moving to a new master (${err.message})`, { cause: err });
  throw err;
}
