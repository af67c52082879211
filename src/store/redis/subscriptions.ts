/**
 * Wake-ups by Redis pub/sub: ONE subscription per channel per process, whatever the number of relays
 * and watchers sharing the store (ref-counted here), on one dedicated connection. After Redis comes
 * back, node-redis re-subscribes before it reports 'ready'; then every watcher gets `resync` so its
 * parked subscribers re-read from their cursors and nothing published meanwhile is missed.
 */
import { log } from '../../log.js';

import { toStoreError, unavailable } from './errors.js';
import type { RedisClient } from './redis-client.js';
import { decodeWakeUp, type WakeUp, type WakeUpListener } from './wake-ups.js';

const debug = log('redis');

interface Subscription {
  /** Store name of the channel. */
  readonly channel: string;
  readonly listeners: Set<WakeUpListener>;
  /** Resolves once Redis confirmed SUBSCRIBE. */
  readonly ready: Promise<void>;
}

export class ChannelSubscriptions {
  readonly #client: RedisClient;
  readonly #timeout: number;
  /** By pub/sub channel name. */
  readonly #subscriptions = new Map<string, Subscription>();
  /** One function for every channel, so node-redis never holds two listeners for one channel. */
  readonly #onWakeUp = (payload: Buffer, name: Buffer | string) => this.#dispatch(name.toString(), payload);

  /** Sees every wake-up once, before the watchers do (RedisStore's view of its channels); false keeps it from them. */
  readonly #observe: (channel: string, event: WakeUp) => boolean;

  constructor(client: RedisClient, timeout: number, observe: (channel: string, event: WakeUp) => boolean = () => true) {
    this.#client = client;
    this.#timeout = timeout;
    this.#observe = observe;
  }

  /** Channels watched now (for tests and stats). */
  get size(): number {
    return this.#subscriptions.size;
  }

  async watch(name: string, channel: string, listener: WakeUpListener): Promise<() => void> {
    let subscription = this.#subscriptions.get(name);
    if (!subscription) {
      subscription = { channel, listeners: new Set(), ready: this.#subscribe(name) };
      this.#subscriptions.set(name, subscription);
    }
    const current = subscription;
    current.listeners.add(listener);
    try {
      await current.ready;
    } catch (err) {
      this.#drop(name, current, listener);
      throw err;
    }
    let watching = true;
    return () => {
      if (!watching) return;
      watching = false;
      this.#drop(name, current, listener);
    };
  }

  /** Tells the watchers of one channel to re-read from their cursors (its wake-ups were missed). */
  /** Hands `event` to the channel's watchers as if its wake-up had come (a publish of this process's own). */
  hear(name: string, event: WakeUp): void {
    const subscription = this.#subscriptions.get(name);
    if (subscription) this.#emit(subscription, event);
  }

  resync(name: string): void {
    const subscription = this.#subscriptions.get(name);
    if (subscription) this.#emit(subscription, { type: 'resync' });
  }

  /**
   * Subscribes to the channel again, then its watchers re-read. For wake-ups that stopped coming
   * while the subscription still looks alive here: a Redis Cluster slot migration drops a sharded
   * subscription, and node-redis 5 neither moves it nor says so.
   */
  resubscribe(name: string): void {
    const subscription = this.#subscriptions.get(name);
    if (!subscription || !this.#client.isReady) return;
    debug('subscribing to %s again', name);
    const again = async () => {
      await this.#client.unsubscribe(name, this.#onWakeUp, true).catch((err: unknown) => debug('unsubscribe %s failed: %s', name, err));
      if (this.#subscriptions.get(name) !== subscription) return;
      await this.#subscribe(name);
      // Dropped meanwhile: release what was just taken.
      if (this.#subscriptions.get(name) !== subscription) {
        if (!this.#subscriptions.has(name)) this.#unsubscribe(name);
        return;
      }
      this.#emit(subscription, { type: 'resync' });
    };
    again().catch((err: unknown) => debug('subscribing to %s again failed: %s', name, err));
  }

  /** Tells every watcher to re-read from its cursors (Redis came back). */
  resyncAll(): void {
    for (const [name, subscription] of this.#subscriptions) {
      subscription.ready.then(
        () => {
          if (this.#subscriptions.get(name) === subscription) this.#emit(subscription, { type: 'resync' });
        },
        () => {},
      );
    }
  }

  clear(): void {
    this.#subscriptions.clear();
  }

  async #subscribe(name: string): Promise<void> {
    if (!this.#client.isReady) throw unavailable('not connected');
    const subscribed = this.#client.subscribe(name, this.#onWakeUp, true);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(unavailable(`SUBSCRIBE not confirmed within ${this.#timeout}ms`)), this.#timeout);
    });
    try {
      await Promise.race([subscribed, timeout]);
    } catch (err) {
      // A SUBSCRIBE confirmed after we gave up must not leave a subscription nobody will release.
      subscribed.then(
        () => {
          if (!this.#subscriptions.has(name)) this.#unsubscribe(name);
        },
        () => {},
      );
      throw toStoreError(err);
    } finally {
      clearTimeout(timer);
    }
  }

  #drop(name: string, subscription: Subscription, listener: WakeUpListener): void {
    subscription.listeners.delete(listener);
    if (subscription.listeners.size > 0 || this.#subscriptions.get(name) !== subscription) return;
    this.#subscriptions.delete(name);
    subscription.ready.then(
      () => {
        if (!this.#subscriptions.has(name)) this.#unsubscribe(name);
      },
      () => {},
    );
  }

  #unsubscribe(name: string): void {
    if (!this.#client.isOpen) return;
    this.#client.unsubscribe(name, this.#onWakeUp, true).catch((err: unknown) => debug('unsubscribe %s failed: %s', name, err));
  }

  #dispatch(name: string, payload: Buffer): void {
    const subscription = this.#subscriptions.get(name);
    if (!subscription) return;
    const event = decodeWakeUp(payload);
    if (!event) {
      debug('ignored an unknown wake-up on %s', name);
      return;
    }
    this.#emit(subscription, event);
  }

  #emit(subscription: Subscription, event: WakeUp): void {
    try {
      if (!this.#observe(subscription.channel, event)) return;
    } catch (err) {
      process.emitWarning(err instanceof Error ? err : new Error(String(err)), 'PushRelayListenerWarning');
    }
    for (const listener of subscription.listeners) {
      try {
        listener(subscription.channel, event);
      } catch (err) {
        process.emitWarning(err instanceof Error ? err : new Error(String(err)), 'PushRelayListenerWarning');
      }
    }
  }
}
