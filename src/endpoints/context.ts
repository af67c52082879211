/** What the endpoints of one relay share: the store, the parked subscribers, its events, and whether it still serves. */
import { log } from '../log.js';
import { eventsChannelRefused, relayClosing } from '../protocol/answers.js';
import type { ResolvedChannel } from '../protocol/channel-id.js';
import type { Role } from '../options.js';
import type { ChannelStore } from '../store/channel-store.js';
import { ParkedSubscribers } from '../subscriptions/parked-subscribers.js';
import { PresenceRegistry, type SubscriberEvent } from '../subscriptions/presence.js';
import { Backlog } from '../transports/backlog.js';
import { BodyBudget } from '../http/request-body.js';
import { RelayCounters } from '../statistics/metrics.js';

const debug = log('events');

/** What `relay.on()` reports. */
export interface RelayEventMap {
  subscribe: SubscriberEvent;
  unsubscribe: SubscriberEvent;
  /** A message was published (over HTTP or with relay.publish()); not for duplicates of an Idempotency-Key. */
  publish: PublishEvent;
  /** A channel came into being: by a publish, a PUT or a subscriber. Once, in one process. */
  'channel-created': ChannelLifecycleEvent;
  /** A channel was removed: deleted, or idle past its channelTimeout. Once, in one process. */
  'channel-destroyed': ChannelLifecycleEvent;
}

export interface ChannelLifecycleEvent {
  /** The channel id, without its channel group. */
  channel: string;
  /** Its channel group, if it has one. */
  channelGroup: string | undefined;
}

export interface PublishEvent {
  channel: string;
  /** `time:tag`. */
  id: string;
  /** Body bytes. */
  size: number;
  contentType: string | undefined;
  eventType: string | undefined;
}

export type RelayEventName = keyof RelayEventMap;
export type RelayListener<K extends RelayEventName> = (event: RelayEventMap[K]) => void;

export interface EventsChannelSettings {
  /** The store's name of the events channel. */
  key: string;
  allowConnections: boolean;
}

export class RelayContext {
  readonly store: ChannelStore;
  readonly parked: ParkedSubscribers;
  /** What the relay's streams leave unread, together. */
  readonly backlog: Backlog;
  /** What the publish bodies being received hold, together. */
  readonly bodies: BodyBudget;
  readonly presence: PresenceRegistry;
  readonly eventsChannel: EventsChannelSettings | undefined;
  /** What relay.metrics() reports of this relay's own work. */
  readonly counters: RelayCounters;
  readonly #listeners = new Map<RelayEventName, Set<(event: never) => void>>();
  closed = false;

  constructor(store: ChannelStore, maxTotalBacklog: number, maxTotalBodies: number, presenceGrace: number, eventsChannel?: EventsChannelSettings) {
    this.counters = new RelayCounters();
    // Every store call of the relay's requests is timed for relay.metrics().
    this.store = this.counters.instrument(store);
    this.parked = new ParkedSubscribers(this.store);
    this.backlog = new Backlog(maxTotalBacklog);
    this.bodies = new BodyBudget(maxTotalBodies);
    this.eventsChannel = eventsChannel;
    this.presence = new PresenceRegistry((type, event) => this.emit(type, event), presenceGrace, () => this.listens('subscribe') || this.listens('unsubscribe'));
  }

  assertOpen(): void {
    if (this.closed) throw relayClosing();
  }

  /** The events channel is read-only to publishers, and closed to subscribers unless allowed. */
  checkEventsChannel(channels: readonly ResolvedChannel[], role: Exclude<Role, 'statistics'>, method: string | undefined): void {
    const events = this.eventsChannel;
    if (!events || !channels.some((c) => c.key === events.key)) return;
    if (role === 'subscriber' ? !events.allowConnections : method !== 'GET') throw eventsChannelRefused(role);
  }

  on<K extends RelayEventName>(type: K, listener: RelayListener<K>): void {
    let set = this.#listeners.get(type);
    if (!set) this.#listeners.set(type, (set = new Set()));
    set.add(listener as (event: never) => void);
  }

  off<K extends RelayEventName>(type: K, listener: RelayListener<K>): void {
    this.#listeners.get(type)?.delete(listener as (event: never) => void);
  }

  /** Whether `type` has listeners (publish events are only built when someone listens). */
  listens(type: RelayEventName): boolean {
    return (this.#listeners.get(type)?.size ?? 0) > 0;
  }

  /** A message was published on the channel the app calls `channel`: the `publish` event. */
  published(channel: string, message: { id: { time: number; tag: number }; data: Buffer; contentType?: string | undefined; eventType?: string | undefined }): void {
    this.counters.published++;
    if (!this.listens('publish')) return;
    this.emit('publish', { channel, id: `${message.id.time}:${message.id.tag}`, size: message.data.length, contentType: message.contentType, eventType: message.eventType });
  }

  /** Calls every listener of `type`; a listener that throws is logged (push-relay:events), never rethrown. */
  emit<K extends RelayEventName>(type: K, event: RelayEventMap[K]): void {
    const set = this.#listeners.get(type);
    if (!set) return;
    for (const listener of [...set]) {
      try {
        (listener as RelayListener<K>)(event);
      } catch (err) {
        debug('a %s listener threw: %s', type, err);
      }
    }
  }
}
