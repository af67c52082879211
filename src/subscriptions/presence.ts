/**
 * Who is subscribed: the `subscribe` / `unsubscribe` events of `relay.on()`, and `relay.disconnect()`.
 *
 * A stream or a WebSocket is present from the moment it is counted in until it ends. A long-poll
 * client comes and goes with every message: its answer is not a departure. When a poll ends, the
 * client is given `grace` ms to come back, recognised by its `presenceKey(req)` when the app gives
 * one, else by its cursor lineage (the position the answer handed it, which its next poll sends back).
 * Coming back keeps its subscriber id and fires nothing; not coming back fires one `unsubscribe`.
 * Lineages are counted, not named: after a broadcast, a thousand pollers that come back with the same
 * position each take one of the thousand departures.
 */
import type { IncomingMessage } from 'node:http';
import { log } from '../log.js';
import type { ResolvedChannel } from '../protocol/channel-id.js';
import { TimerWheel, type WheelEntry } from '../timer-wheel.js';

const debug = log('events');

export interface SubscriberEvent {
  /** The channel id, as the app's resolver gave it (without the channel group). */
  channel: string;
  /** 'long-poll', 'interval-poll', 'eventsource', 'websocket', ... */
  transport: string;
  /** Stable across a long-poll client's re-polls. */
  subscriberId: string;
  /** The request that subscribed (the latest poll, for a long-poll client). */
  req?: IncomingMessage | undefined;
}

/** What a client has open now, which relay.disconnect() ends. */
export interface Revocable {
  revoke(): void;
}

/** One client's presence on its channels. */
export class Presence implements WheelEntry {
  slot = -1;
  req: IncomingMessage | undefined;
  /** Where it waits to come back (while a poll's grace runs). */
  returnKey: string | undefined = undefined;
  /** What this client has open now (relay.disconnect ends it). */
  open: Revocable | undefined = undefined;
  /** Accepted (answered, waiting or streaming): a refused first request never is. */
  accepted = false;
  /** Its `subscribe` was fired (only while someone listens): its `unsubscribe` will be. */
  announced = false;
  #id: string | undefined;

  constructor(
    readonly channels: readonly ResolvedChannel[],
    readonly transport: string,
    readonly key: string | undefined,
    req: IncomingMessage,
    /** Names it, with `serial`, once its id is asked for (most long-poll requests never are). */
    readonly prefix: string,
    readonly serial: number,
  ) {
    this.req = req;
  }

  /** Stable across a long-poll client's re-polls. */
  get subscriberId(): string {
    return (this.#id ??= `${this.prefix}-${this.serial}`);
  }
}

export interface DisconnectFilter {
  /** The store's name of the channel (see channelKey). */
  channel?: string | undefined;
  subscriberId?: string | undefined;
  presenceKey?: string | undefined;
}

type Emit = (type: 'subscribe' | 'unsubscribe', event: SubscriberEvent) => void;

export class PresenceRegistry {
  readonly #emit: Emit;
  readonly #grace: number;
  /** Departed pollers waiting to come back, by channel list + key or lineage. */
  readonly #returning = new Map<string, Presence[]>();
  readonly #wheel: TimerWheel<Presence>;
  /** Every present client with something open now. */
  readonly #open = new Set<Presence>();
  #counter = 0;
  readonly #prefix = Math.random().toString(36).slice(2, 8);

  /**
   * Whether anyone listens to subscribe/unsubscribe. Until then a poll's lineage is not followed: no
   * return keys, no grace timers (the cost a long-poll request would otherwise pay for nothing).
   */
  readonly #tracking: () => boolean;

  constructor(emit: Emit, grace: number, tracking: () => boolean = () => true) {
    this.#emit = emit;
    this.#grace = grace;
    this.#tracking = tracking;
    this.#wheel = new TimerWheel<Presence>(Math.max(50, Math.min(1000, grace / 10)), (p) => this.#expire(p));
  }

  /**
   * A subscriber request came in on `channels`: its presence, either the one of a departed poller it
   * is coming back as (named by its lineage or key), or a new one. Nothing is announced until
   * accept(): a request the relay then refuses was never there.
   */
  /** Subscribers connected now (a long-poll client between polls is not), by transport. */
  get tracking(): boolean {
    return this.#tracking();
  }

  countByTransport(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const p of this.#open) counts.set(p.transport, (counts.get(p.transport) ?? 0) + 1);
    return counts;
  }

  arrive(channels: readonly ResolvedChannel[], transport: string, req: IncomingMessage, key: string | undefined, lineage: string | undefined): Presence {
    const polls = transport === 'long-poll' || transport === 'interval-poll';
    if (polls && this.#tracking()) {
      const returnKey = returnKeyOf(channels, key, lineage);
      const waiting = returnKey !== undefined ? this.#returning.get(returnKey) : undefined;
      const back = waiting?.pop();
      if (back) {
        if (waiting!.length === 0) this.#returning.delete(returnKey!);
        this.#wheel.cancel(back);
        back.returnKey = undefined;
        back.req = req;
        this.#open.add(back);
        return back;
      }
    }
    const presence = new Presence(channels, transport, key, req, this.#prefix, ++this.#counter);
    this.#open.add(presence);
    return presence;
  }

  /** The request is answered, waiting or streaming: a new presence is announced (`subscribe`). */
  accept(presence: Presence): void {
    // Already accepted (a poller coming back), or gone before it was accepted (never there).
    if (presence.accepted || !this.#open.has(presence)) return;
    presence.accepted = true;
    // Nobody listens: nothing to build or fire (most long-poll requests of most relays).
    if (!this.#tracking()) return;
    presence.announced = true;
    for (const channel of presence.channels) this.#fire('subscribe', presence, channel.id);
  }

  /** The request ended. A poll's client may come back within the grace, naming `lineage` (its new position). */
  depart(presence: Presence, lineage: string | undefined): void {
    if (!this.#open.delete(presence)) return;
    presence.open = undefined;
    // Refused before it was ever announced: it was never there.
    if (!presence.announced) return;
    // Nobody listens: nothing to announce, no grace to wait out.
    if (!this.#tracking()) return;
    const polls = presence.transport === 'long-poll' || presence.transport === 'interval-poll';
    const returnKey = polls ? returnKeyOf(presence.channels, presence.key, lineage) : undefined;
    if (returnKey === undefined || this.#grace <= 0) return this.#leave(presence);
    presence.returnKey = returnKey;
    let waiting = this.#returning.get(returnKey);
    if (!waiting) this.#returning.set(returnKey, (waiting = []));
    waiting.push(presence);
    this.#wheel.schedule(presence, Date.now() + this.#grace);
  }

  /** Ends the matching clients' open requests now; those waiting to come back leave at once. Returns how many. */
  disconnect(filter: DisconnectFilter): number {
    const matches = (p: Presence) =>
      (filter.channel === undefined || p.channels.some((c) => c.key === filter.channel)) &&
      (filter.subscriberId === undefined || p.subscriberId === filter.subscriberId) &&
      (filter.presenceKey === undefined || p.key === filter.presenceKey);
    let count = 0;
    for (const p of [...this.#open]) {
      if (!matches(p) || !p.accepted) continue;
      count++;
      p.open?.revoke();
    }
    for (const [returnKey, waiting] of [...this.#returning]) {
      for (const p of waiting.filter(matches)) {
        count++;
        this.#wheel.cancel(p);
        waiting.splice(waiting.indexOf(p), 1);
        this.#leave(p);
      }
      if (waiting.length === 0) this.#returning.delete(returnKey);
    }
    return count;
  }

  /** relay.close(): everyone waiting to come back leaves now. */
  close(): void {
    for (const waiting of this.#returning.values()) {
      for (const p of waiting) {
        this.#wheel.cancel(p);
        this.#leave(p);
      }
    }
    this.#returning.clear();
  }

  #expire(p: Presence): void {
    const waiting = p.returnKey !== undefined ? this.#returning.get(p.returnKey) : undefined;
    if (waiting) {
      waiting.splice(waiting.indexOf(p), 1);
      if (waiting.length === 0) this.#returning.delete(p.returnKey!);
    }
    p.returnKey = undefined;
    this.#leave(p);
  }

  #leave(p: Presence): void {
    for (const channel of p.channels) this.#fire('unsubscribe', p, channel.id);
    p.req = undefined;
  }

  #fire(type: 'subscribe' | 'unsubscribe', p: Presence, channel: string): void {
    try {
      this.#emit(type, { channel, transport: p.transport, subscriberId: p.subscriberId, req: p.req });
    } catch (err) {
      debug('a %s listener threw: %s', type, err);
    }
  }
}

/** Where a departed poller waits to come back: its channels and its key, else its lineage. */
function returnKeyOf(channels: readonly ResolvedChannel[], key: string | undefined, lineage: string | undefined): string | undefined {
  if (key === undefined && lineage === undefined) return undefined;
  const names = channels.length === 1 ? channels[0]!.key : channels.map((c) => c.key).join('\n');
  return key !== undefined ? `k${names}\n\n${key}` : `c${names}\n\n${lineage}`;
}
