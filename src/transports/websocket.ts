/**
 * WebSocket subscribers (RFC 6455, via the optional `ws` package): one socket receives every message
 * of the channel, each as one frame, until the channel goes, a newer subscriber takes over, the
 * subscriber time-out passes or the relay closes; the close code says which (docs/transports.md).
 *
 * The upgrade request comes through the app's route like any request (upgrade.ts): the resolver,
 * authorize hook and join (concurrency, maxChannelSubscribers) run first and refuse with a plain HTTP
 * answer; the handshake completes only once the subscriber is counted in.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isUtf8 } from 'node:buffer';
import type { WebSocket } from 'ws';
import { resolveChannels } from '../channel-id.js';
import { missedBefore, readStreamCursor } from '../cursor.js';
import { firstCursor } from '../first-message.js';
import { protocolError } from '../http/protocol-error.js';
import { log } from '../log.js';
import { formatId, type MessageId } from '../message-id.js';
import type { ResolvedSubscriber } from '../options.js';
import type { EndReason, ParkedSubscriber } from '../parked-subscribers.js';
import type { RelayCore } from '../relay-core.js';
import type { StoredMessage } from '../store/channel-store.js';
import { END_SENTENCES, MAX_BACKLOG, startPings, stopPings } from './stream-subscriber.js';
import { claimUpgrade, completeUpgrade, handshakeProblem, WEBSOCKET_META_PROTOCOL, type PendingUpgrade } from '../upgrade.js';

const debug = log('subscriber');

/**
 * Close codes: 4000-4999 are the application's (RFC 6455 §7.4.2), here 4000 + the HTTP status a
 * long-poll would get; 1001 going away and 1013 try again later are the registered ones. The close
 * reason is the same sentence the other streams end with.
 */
export const CLOSE_CODES: Readonly<Record<EndReason, number>> = {
  deleted: 4410,
  conflict: 4409,
  timeout: 4408,
  closing: 1001,
  unavailable: 1013,
};

/**
 * Serves a subscriber request that carries a WebSocket upgrade. Refusals throw protocol errors, which
 * the middleware answers over HTTP on the upgrade socket as for any request.
 */
export async function serveWebSocket(relay: RelayCore, options: ResolvedSubscriber, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const pending = claimUpgrade(req);
  if (!pending) {
    // A plain GET on a WebSocket-only endpoint (RFC 9110 §15.5.22: 426 names the protocol to use).
    if (String(req.headers.upgrade).toLowerCase() !== 'websocket') {
      throw protocolError(426, 'push-relay: this endpoint serves WebSocket subscribers only', 'websocket.required', {
        Upgrade: 'websocket',
        Connection: 'Upgrade',
      });
    }
    // Node hands upgrades to the request handler only when the server has no 'upgrade' listener.
    throw protocolError(501, 'push-relay: WebSocket upgrades need relay.handleUpgrade(server) (docs/transports.md)', 'websocket.not.enabled');
  }
  const problem = handshakeProblem(req);
  if (problem) throw protocolError(400, `push-relay: WebSocket handshake: ${problem}`, 'websocket.handshake', { 'Sec-WebSocket-Version': '13' });
  relay.assertOpen();
  const channel = await resolveChannels(req, options, 'subscriber');
  if (Array.isArray(channel)) {
    // Loaded on use: multiplex.ts builds on this module (a static import would be a cycle).
    const { serveMultiplexedWebSocket } = await import('../multiplex.js');
    return serveMultiplexedWebSocket(relay, options, channel, req, res, pending);
  }
  const { key } = channel;
  const resumeFrom = readStreamCursor(req.headers, req.url);
  const cursor = resumeFrom ?? (await firstCursor(relay.store, key, options.subscriberFirstMessage));
  if (pending.socket.destroyed) return;
  const parked = relay.parked;
  const subscriber = new WebSocketSubscriber(parked.newId(), key, cursor, req, pending, {
    defaultContentType: options.defaultContentType,
    deletesReceived: options.deleteOldestReceivedMessage,
    signalsLoss: resumeFrom !== undefined,
    pingInterval: options.pingInterval,
    onClose: (s) => parked.remove(s),
  });
  // Until the handshake, the socket belongs to the HTTP response: a client leaving closes it.
  res.once('close', subscriber.onResponseClose);
  await parked.park(
    subscriber,
    {
      concurrency: options.concurrency,
      maxSubscribers: options.maxChannelSubscribers,
      create: !options.authorizedChannelsOnly,
      channelTimeout: options.channelTimeout,
    },
    options.subscriberTimeout,
  );
  // Counted in (or already answered): complete the handshake if nothing did yet.
  if (subscriber.parked) subscriber.open();
}

export interface SubscriberSettings {
  defaultContentType: string | undefined;
  deletesReceived: boolean;
  /** False when the client sent no cursor: it cannot have missed anything. */
  signalsLoss: boolean;
  /** ms between keep-alive pings; 0 = none. */
  pingInterval: number;
  /** The socket closed: forget the subscriber. */
  onClose: (s: WebSocketSubscriber) => void;
}

export class WebSocketSubscriber implements ParkedSubscriber {
  slot = -1;
  parked = false;
  gone = false;
  readonly deletesReceived: boolean;
  #ws: WebSocket | undefined;
  #pending: PendingUpgrade | undefined;
  #meta = false;
  /** Answered the last keep-alive ping (or was just opened). */
  #alive = true;
  /** False until it has a real position: a first connection without a cursor cannot have missed anything. */
  #signalsLoss: boolean;
  readonly #req: IncomingMessage;
  readonly #settings: SubscriberSettings;

  constructor(
    readonly id: string,
    readonly channel: string,
    public cursor: MessageId | undefined,
    req: IncomingMessage,
    pending: PendingUpgrade,
    settings: SubscriberSettings,
  ) {
    this.#req = req;
    this.#pending = pending;
    this.#settings = settings;
    this.deletesReceived = settings.deletesReceived;
    this.#signalsLoss = settings.signalsLoss;
  }

  readonly onResponseClose = (): void => {
    // Also fires when the handshake detaches the socket from the response: only a real departure counts.
    if (this.#ws || !this.#pending?.socket.destroyed) return;
    this.#gone();
  };

  /** Completes the handshake once; false when the socket is not (or no longer) open. */
  open(): boolean {
    if (this.#ws) return this.#ws.readyState === 1;
    const pending = this.#pending;
    if (!pending || this.gone) return false;
    this.#pending = undefined;
    const opened = completeUpgrade(this.#req, pending, (ws) => {
      this.#ws = ws;
      this.#meta = ws.protocol === WEBSOCKET_META_PROTOCOL;
      ws.on('close', () => this.#gone());
      ws.on('pong', () => {
        this.#alive = true;
      });
      // Subscribers do not publish: frames from the client are read (ws must, to see control frames) and dropped.
      ws.on('error', (err) => debug('websocket on %s: %s', this.channel, err.message));
      startPings(this, this.#settings.pingInterval);
    });
    if (!opened) this.#gone();
    return opened;
  }

  deliver(message: StoredMessage): boolean {
    if (!this.open()) return false;
    const missed = this.#signalsLoss && missedBefore(this.cursor, message);
    this.#signalsLoss = true;
    const ws = this.#ws!;
    if (ws.bufferedAmount > MAX_BACKLOG) {
      // A client this far behind would hold the process's memory: cut it, it resumes from its last id.
      ws.terminate();
      return false;
    }
    const frame = this.frameFor(message, this.#meta, missed);
    ws.send(frame.data, { binary: frame.binary });
    return false;
  }

  end(reason: EndReason): void {
    if (!this.open()) return;
    this.#ws!.close(CLOSE_CODES[reason], this.closeReason(reason));
    stopPings(this, this.#settings.pingInterval);
  }

  /** The frame for `message` (a multiplexed socket names it by its composite cursor instead). */
  protected frameFor(message: StoredMessage, meta: boolean, missed: boolean): Frame {
    return messageFrame(message, this.#settings.defaultContentType, meta, missed);
  }

  /** The close frame's reason (at most 123 bytes). */
  protected closeReason(reason: EndReason): string {
    return END_SENTENCES[reason];
  }

  /** Sends a keep-alive ping, or cuts a peer that did not answer the previous one. */
  ping(): void {
    const ws = this.#ws;
    if (!ws || ws.readyState !== 1) return;
    if (!this.#alive) {
      debug('websocket on %s: no pong since the last ping, closing', this.channel);
      ws.terminate();
      return;
    }
    this.#alive = false;
    ws.ping();
  }

  #gone(): void {
    if (this.gone) return;
    this.gone = true;
    stopPings(this, this.#settings.pingInterval);
    this.#settings.onClose(this);
  }
}

export interface Frame {
  data: Buffer;
  binary: boolean;
}

/** Frames per message, built once and shared by every socket it goes to (keyed by meta + default type). */
const frames = new WeakMap<StoredMessage, Map<string, Frame>>();

/**
 * The frame that carries `message`. Plain: the body alone. Metadata subprotocol: `id: <time:tag>`,
 * `content-type:`, `event:` and `missed: 1` lines, a blank line, then the body (as Nchan's
 * ws+meta.nchan does). Binary frame unless the message is text (see isText).
 */
export function messageFrame(message: StoredMessage, defaultContentType: string | undefined, meta: boolean, missed = false): Frame {
  const contentType = message.contentType ?? defaultContentType;
  const key = `${meta ? 'm' : 'p'}${missed ? '!' : ''}${message.contentType ? '' : (defaultContentType ?? '')}`;
  let byKey = frames.get(message);
  const hit = byKey?.get(key);
  if (hit) return hit;
  const binary = !isText(message.data, contentType);
  let data = message.data;
  if (meta) {
    let head = `id: ${formatId(message.id)}\n`;
    if (contentType) head += `content-type: ${oneLine(contentType)}\n`;
    if (message.eventType) head += `event: ${oneLine(message.eventType)}\n`;
    if (missed) head += 'missed: 1\n';
    data = Buffer.concat([Buffer.from(`${head}\n`, 'utf8'), message.data]);
  }
  const frame = { data, binary };
  if (!byKey) frames.set(message, (byKey = new Map()));
  byKey.set(key, frame);
  return frame;
}

/** A header value cannot hold a line break: anything after one would read as a line of its own. */
function oneLine(value: string): string {
  return value.replace(/[\r\n]+/g, ' ');
}

const TEXT_TYPE = /^(text\/|application\/(json|xml|javascript|ecmascript|x-www-form-urlencoded|x-ndjson)\b|[^;]*\+(json|xml)\b)/i;

/**
 * Text frame for text messages: no content type or a textual one (text/*, JSON, XML, JavaScript,
 * form data), and a body that is valid UTF-8, as text frames must be (RFC 6455 §5.6). Everything
 * else (application/octet-stream, images, ...) goes in a binary frame.
 */
function isText(data: Buffer, contentType: string | undefined): boolean {
  if (contentType && !TEXT_TYPE.test(contentType.trim())) return false;
  return isUtf8(data);
}
