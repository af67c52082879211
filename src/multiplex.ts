/**
 * Multiplexing: one subscriber, up to 255 channels (the resolver returned several ids). The
 * subscriber joins every channel through one `Leg` per channel in the parked-subscriber registry
 * (counted, concurrency and limits per channel), and a `Multiplex` merges what the legs receive into
 * one sequence in publish order, kept apart from the single-channel path so that path stays as it is.
 *
 * Position: one cursor per channel, in resolver order, carried as one composite cursor
 * (`formatComposite`) wherever a single-channel subscriber gets a message id: the long-poll `Etag`,
 * the EventSource `id:`, the multipart `Etag`, the WebSocket metadata `id:`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ResolvedChannel } from './channel-id.js';
import { firstCursor } from './first-message.js';
import { protocolError } from './http/protocol-error.js';
import { log } from './log.js';
import { compareIds, type MessageId } from './message-id.js';
import { formatComposite, readMultiplexCursor, type Cursors } from './multiplex-cursor.js';
import type { ResolvedSubscriber } from './options.js';
import type { EndReason, ParkedSubscriber, ParkedSubscribers } from './parked-subscribers.js';
import type { RelayCore } from './relay-core.js';
import type { StoredMessage } from './store/channel-store.js';
import { isStream, type Transport } from './transports/select-transport.js';
import { multiplexedLongPoll, multiplexedStream, multiplexedWebSocket, type MultiplexSink } from './transports/multiplexed.js';
import type { PendingUpgrade } from './upgrade.js';

const debug = log('subscriber');

/** Order across channels: by id, ties (ids are per channel) in resolver order. */
function compareDelivery(a: Held, b: Held): number {
  return compareIds(a.message.id, b.message.id) || a.channel - b.channel;
}

interface Held {
  channel: number;
  message: StoredMessage;
}

/** One channel of a multiplexed subscriber, as the registry sees it. */
class Leg implements ParkedSubscriber {
  slot = -1;
  parked = false;
  gone = false;
  // The multiplex acknowledges what it actually sent (a leg may receive a message that is never sent).
  readonly deletesReceived = false;

  constructor(
    readonly id: string,
    readonly channel: string,
    public cursor: MessageId | undefined,
    readonly index: number,
    readonly mux: Multiplex,
  ) {}

  deliver(message: StoredMessage): boolean {
    return this.mux.offer(this.index, message);
  }

  end(reason: EndReason): void {
    this.mux.legEnded(this.index, reason);
  }
}

export class Multiplex {
  readonly cursors: Cursors;
  readonly #legs: Leg[];
  readonly #parked: ParkedSubscribers;
  readonly #relay: RelayCore;
  readonly #channels: ResolvedChannel[];
  readonly #options: ResolvedSubscriber;
  #sink: MultiplexSink | undefined;
  /** Joined every channel: messages go out as they come; before, they are held and sorted. */
  #live = false;
  #done = false;
  #held: Held[] = [];

  constructor(relay: RelayCore, options: ResolvedSubscriber, channels: ResolvedChannel[], cursors: Cursors) {
    this.#relay = relay;
    this.#parked = relay.parked;
    this.#options = options;
    this.#channels = channels;
    this.cursors = cursors;
    this.#legs = channels.map((c, i) => new Leg(this.#parked.newId(), c.key, cursors[i], i, this));
  }

  get done(): boolean {
    return this.#done;
  }

  /**
   * Joins every channel. A refusal on any of them leaves the joined ones and throws it (403/409);
   * messages received meanwhile are held, then sent in order.
   */
  async join(sink: MultiplexSink): Promise<void> {
    this.#sink = sink;
    const o = this.#options;
    const join = { concurrency: o.concurrency, maxSubscribers: o.maxChannelSubscribers, create: !o.authorizedChannelsOnly, channelTimeout: o.channelTimeout };
    const results = await Promise.allSettled(this.#legs.map((leg) => this.#parked.park(leg, join, o.subscriberTimeout)));
    const refused = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (refused) {
      this.#leaveAll();
      throw refused.reason;
    }
    if (this.#done) return;
    this.#live = true;
    const held = this.#held.sort(compareDelivery);
    this.#held = [];
    for (const h of held) {
      if (this.#send(h.channel, h.message)) {
        this.#leaveAll();
        return;
      }
    }
  }

  /** Answers a long-poll with a message read before joining anything. */
  offerFirst(sink: MultiplexSink, channel: number, message: StoredMessage): void {
    this.#sink = sink;
    this.#done = true;
    this.#send(channel, message);
  }

  /** A leg received `message`; true when that answered the request (that leg is then detached by the registry). */
  offer(channel: number, message: StoredMessage): boolean {
    if (this.#done) return false;
    if (!this.#live) {
      this.#held.push({ channel, message });
      return false;
    }
    if (!this.#send(channel, message)) return false;
    this.#legs[channel]!.parked = false;
    this.#leaveAll();
    return true;
  }

  /** The registry ended one leg (deleted, conflict, timeout, closing, unavailable): end them all. */
  legEnded(channel: number, reason: EndReason): void {
    if (this.#done) return;
    this.#leaveAll();
    this.#sink?.end(reason, this.#channels[channel]!, this.cursors);
  }

  /** The client left: forget every leg at once. */
  gone(): void {
    this.#leaveAll();
  }

  #send(channel: number, message: StoredMessage): boolean {
    const before = this.cursors[channel];
    if (before && compareIds(before, message.id) >= 0) return false;
    this.cursors[channel] = message.id;
    const answered = this.#sink!.send(message, before, formatComposite(this.cursors));
    if (this.#options.deleteOldestReceivedMessage) {
      const key = this.#channels[channel]!.key;
      this.#relay.store.received(key, message.id).catch((err: unknown) => debug('received %s failed: %s', key, err));
    }
    return answered;
  }

  #leaveAll(): void {
    this.#done = true;
    this.#held = [];
    for (const leg of this.#legs) {
      leg.gone = true;
      this.#parked.remove(leg);
    }
  }
}

/** The cursors a subscriber without a resume position starts from, per channel (subscriberFirstMessage). */
async function startCursors(relay: RelayCore, options: ResolvedSubscriber, channels: ResolvedChannel[], resumeFrom: Cursors | undefined): Promise<Cursors> {
  if (resumeFrom) return resumeFrom;
  return Promise.all(channels.map((c) => firstCursor(relay.store, c.key, options.subscriberFirstMessage)));
}

/** Serves a multiplexed subscriber over HTTP: long-poll, interval-poll or a stream. */
export async function serveMultiplexed(
  relay: RelayCore,
  options: ResolvedSubscriber,
  transport: Transport,
  channels: ResolvedChannel[],
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const stream = isStream(transport);
  const resumeFrom = readMultiplexCursor(req.headers, req.url, stream, channels.length);
  const cursors = await startCursors(relay, options, channels, resumeFrom);
  const resumed = resumeFrom !== undefined;
  if (!stream) {
    const sink = multiplexedLongPoll(res, options.defaultContentType, resumed);
    // As a single channel: answer at once when a message is there, without joining.
    const reads = await Promise.all(channels.map((c, i) => relay.store.next(c.key, cursors[i])));
    if (options.authorizedChannelsOnly) {
      const missing = reads.findIndex((r) => !r.exists);
      if (missing >= 0) {
        throw protocolError(403, `push-relay: channel ${JSON.stringify(channels[missing]!.id)} does not exist (authorizedChannelsOnly)`, 'channel.missing');
      }
    }
    let first: Held | undefined;
    for (const [channel, r] of reads.entries()) {
      if (r.message && (!first || compareDelivery({ channel, message: r.message }, first) < 0)) first = { channel, message: r.message };
    }
    const mux = new Multiplex(relay, options, channels, cursors);
    if (first) {
      mux.offerFirst(sink, first.channel, first.message);
      return;
    }
    if (options.mode === 'interval-poll') {
      sink.end('timeout', channels[0]!, cursors);
      return;
    }
    if (res.destroyed || req.socket.destroyed) return;
    res.once('close', () => mux.gone());
    await mux.join(sink);
    return;
  }
  if (res.destroyed || req.socket.destroyed) return;
  const mux = new Multiplex(relay, options, channels, cursors);
  const settings = { defaultContentType: options.defaultContentType, deletesReceived: false, pingInterval: options.pingInterval };
  const sink = multiplexedStream(transport, relay.parked.newId(), channels[0]!.key, res, settings, resumed);
  res.once('close', () => {
    sink.dispose();
    mux.gone();
  });
  await mux.join(sink);
  if (!mux.done) sink.open();
}

/** Serves a multiplexed WebSocket subscriber (the upgrade already claimed and checked, see websocket.ts). */
export async function serveMultiplexedWebSocket(
  relay: RelayCore,
  options: ResolvedSubscriber,
  channels: ResolvedChannel[],
  req: IncomingMessage,
  res: ServerResponse,
  pending: PendingUpgrade,
): Promise<void> {
  const resumeFrom = readMultiplexCursor(req.headers, req.url, true, channels.length);
  const cursors = await startCursors(relay, options, channels, resumeFrom);
  if (pending.socket.destroyed) return;
  const mux = new Multiplex(relay, options, channels, cursors);
  const sink = multiplexedWebSocket(relay.parked.newId(), channels[0]!.key, req, pending, {
    defaultContentType: options.defaultContentType,
    deletesReceived: false,
    signalsLoss: resumeFrom !== undefined,
    pingInterval: options.pingInterval,
    onClose: () => mux.gone(),
  });
  res.once('close', sink.onResponseClose);
  await mux.join(sink);
  if (!mux.done) sink.open();
}
