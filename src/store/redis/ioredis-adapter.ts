/**
 * An ioredis client behind the narrow part of node-redis' client that RedisStore uses (commands with
 * binary replies, pub/sub with Buffer payloads, connect / destroy / duplicate, 'ready' and 'error'),
 * so that an app that already holds an ioredis client can give it to RedisStore. ioredis is not
 * imported: the adapter only calls the client it is given.
 */

/** What RedisStore calls on an ioredis client (`new Redis()` from "ioredis" 5). */
export interface IORedisClient {
  readonly status: string;
  readonly options: { db?: number | undefined };
  duplicate(override?: Record<string, unknown>): IORedisClient;
  connect(): Promise<void>;
  disconnect(reconnect?: boolean): void;
  callBuffer(command: string, ...args: Array<string | Buffer>): Promise<unknown>;
  publish(channel: string, message: string | Buffer): Promise<number>;
  subscribe(...channels: string[]): Promise<unknown>;
  unsubscribe(...channels: string[]): Promise<unknown>;
  // ioredis types its listeners' arguments as any; anything narrower is not assignable from it.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  on(event: string, listener: (...args: any[]) => void): unknown;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  off(event: string, listener: (...args: any[]) => void): unknown;
}

/** Whether `client` looks like an ioredis client (node-redis clients have no `callBuffer`). */
export function isIORedis(client: unknown): client is IORedisClient {
  const c = client as Partial<IORedisClient> | null;
  return typeof c === 'object' && c !== null && typeof c.callBuffer === 'function' && typeof c.duplicate === 'function' && typeof c.status === 'string';
}

/**
 * ioredis' "not connected" failures (and a cluster that ran out of redirections in a failover), named
 * as node-redis names them, so that they answer 503.
 */
export class ClientOfflineError extends Error {
  override readonly name = 'ClientOfflineError';
}
const OFFLINE = /enableOfflineQueue|Connection is closed|max retries per request|Stream isn't writeable|Cluster isn't ready|Failed to refresh slots cache|None of startup nodes|Too many Cluster redirections/i;

/** `sent`, with ioredis' "not connected" failures as ClientOfflineError (503). */
export async function offlineAs503<T>(sent: Promise<T>): Promise<T> {
  try {
    return await sent;
  } catch (err) {
    if (err instanceof Error && OFFLINE.test(err.message)) throw new ClientOfflineError(err.message, { cause: err });
    throw err;
  }
}

type Listener = (message: Buffer | string, channel: Buffer | string) => void;
type Event = 'ready' | 'error';
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type EventListener = (...args: any[]) => void;

export class IORedisAdapter {
  /** The connection now: a new one after destroy() (see connect()). */
  #redis: IORedisClient;
  /** A new connection with the same settings, for connect() after destroy(). */
  readonly #open: () => IORedisClient;
  #destroyed = false;
  /** Pub/sub listeners by channel: `buffer` ones get Buffers, the others strings. */
  readonly #listeners = new Map<string, Array<{ listener: Listener; buffer: boolean }>>();
  /** 'ready' and 'error' listeners, moved to the new connection after destroy(). */
  readonly #events: Array<{ event: Event; listener: EventListener }> = [];
  readonly #onMessage = (channel: Buffer, message: Buffer) => this.#deliver(channel, message);

  constructor(redis: IORedisClient, open: () => IORedisClient = () => redis.duplicate({ lazyConnect: true })) {
    this.#open = open;
    this.#redis = redis;
    redis.on('messageBuffer', this.#onMessage);
  }

  get isReady(): boolean {
    return !this.#destroyed && this.#redis.status === 'ready';
  }

  get isOpen(): boolean {
    const status = this.#redis.status;
    return !this.#destroyed && status !== 'end' && status !== 'close' && status !== 'wait';
  }

  get options(): { database: number } {
    return { database: this.#redis.options.db ?? 0 };
  }

  /** A connection of its own, with the same settings; connected by connect(). */
  duplicate(options: { disableOfflineQueue?: boolean } = {}): IORedisAdapter {
    const source = this.#redis;
    // autoResendUnfulfilledCommands off: a publish whose reply a dropped connection lost may have run;
    // sent again by ioredis it would be stored twice. It fails instead (503), as with node-redis.
    const open = () => source.duplicate({ lazyConnect: true, autoResendUnfulfilledCommands: false, ...(options.disableOfflineQueue ? { enableOfflineQueue: false } : {}) });
    return new IORedisAdapter(open(), open);
  }

  /**
   * After destroy(), a new ioredis client (as node-redis' connect() after destroy() opens a new
   * socket): ioredis closes asynchronously, so the one destroyed still says 'ready' or 'connecting' and
   * its connect() rejects ("already connecting/connected"); and one disconnected between two
   * reconnection attempts keeps its manual-close flag, so it ends for good ('end') at its next close.
   */
  async connect(): Promise<void> {
    if (this.#destroyed) {
      this.#destroyed = false;
      this.#redis = this.#open();
      this.#redis.on('messageBuffer', this.#onMessage);
      for (const { event, listener } of this.#events) this.#redis.on(event, listener);
      await this.#redis.connect();
      if (this.#listeners.size > 0) await this.#redis.subscribe(...this.#listeners.keys());
      return;
    }
    await this.#redis.connect();
  }

  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    const old = this.#redis;
    old.off('messageBuffer', this.#onMessage);
    for (const { event, listener } of this.#events) old.off(event, listener);
    // Whatever it still reports while it closes is not news (and not an unhandled 'error').
    old.on('error', () => {});
    old.disconnect(false);
  }

  sendCommand(args: ReadonlyArray<string | Buffer>, _options?: unknown): Promise<unknown> {
    return offlineAs503(this.#redis.callBuffer(String(args[0]), ...args.slice(1)));
  }

  async publish(channel: string, message: string | Buffer): Promise<number> {
    return this.#redis.publish(channel, message);
  }

  async subscribe(channel: string, listener: Listener, buffer = false): Promise<void> {
    let listeners = this.#listeners.get(channel);
    const first = !listeners;
    if (!listeners) this.#listeners.set(channel, (listeners = []));
    const entry = { listener, buffer };
    listeners.push(entry);
    if (!first) return;
    try {
      await this.#redis.subscribe(channel);
    } catch (err) {
      // Not subscribed: the next subscribe() to the channel must send SUBSCRIBE again.
      const i = listeners.indexOf(entry);
      if (i >= 0) listeners.splice(i, 1);
      if (listeners.length === 0 && this.#listeners.get(channel) === listeners) this.#listeners.delete(channel);
      throw err;
    }
  }

  async unsubscribe(channel: string, listener: Listener, _buffer = false): Promise<void> {
    const listeners = this.#listeners.get(channel);
    if (!listeners) return;
    const i = listeners.findIndex((l) => l.listener === listener);
    if (i >= 0) listeners.splice(i, 1);
    if (listeners.length > 0) return;
    this.#listeners.delete(channel);
    await this.#redis.unsubscribe(channel);
  }

  on(event: Event, listener: (err?: Error) => void): this {
    this.#events.push({ event, listener });
    this.#redis.on(event, listener);
    return this;
  }

  off(event: Event, listener: (err?: Error) => void): this {
    const i = this.#events.findIndex((e) => e.event === event && e.listener === listener);
    if (i >= 0) this.#events.splice(i, 1);
    this.#redis.off(event, listener);
    return this;
  }

  #deliver(channel: Buffer, message: Buffer): void {
    const name = channel.toString('utf8');
    for (const { listener, buffer } of this.#listeners.get(name) ?? []) listener(buffer ? message : message.toString('utf8'), buffer ? channel : name);
  }
}
