/**
 * WebSocket subscribers (RFC 6455, via the optional `ws` package): one socket receives every message
 * of its channels, each as one frame, until a channel goes, a newer subscriber takes over, the
 * subscriber time-out passes or the relay closes; the close code says which (docs/transports.md).
 *
 * The upgrade request comes through the app's route like any request (http/upgrade.ts): the
 * resolver, authorize hook and join (concurrency, maxChannelSubscribers) run first and refuse with a
 * plain HTTP answer; the handshake completes only once the subscriber is counted in.
 *
 * Templates: the header template is the first text frame, each message its rendering, a deleted
 * channel's message and the footer the last ones before the close. With websocketPublish, the
 * client's text messages are published (endpoints/websocket-publish.ts).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isUtf8 } from 'node:buffer';
import type { WebSocket } from 'ws';
import { claimUpgrade, completeUpgrade, handshakeProblem, NCHAN_META_PROTOCOL, upgradesHandled, WEBSOCKET_META_PROTOCOL, type PendingUpgrade } from '../http/upgrade.js';
import { log } from '../log.js';
import { badHandshake, endSentence, webSocketNotEnabled, webSocketRequired, type EndReason } from '../protocol/answers.js';
import { formatId, type MessageId } from '../protocol/message-id.js';
import type { StoredMessage } from '../store/channel-store.js';
import { startPings, stopPings } from './keep-alive.js';
import { QUEUED_WRITE_COST, StreamBacklog } from './backlog.js';
import { oneLine, type SubscriberTransport, type TransportSettings } from './transport.js';
import { noticeText, type Templates } from '../protocol/templates.js';

const debug = log('subscriber');

/**
 * Close codes: 4000-4999 are the application's (RFC 6455 §7.4.2), here 4000 + the HTTP status a
 * long-poll would get (408 for a time-out); 1001 going away and 1013 try again later are the
 * registered ones. The close reason is the same sentence the other streams end with.
 */
export const CLOSE_CODES: Readonly<Record<EndReason, number>> = {
  deleted: 4410,
  conflict: 4409,
  timeout: 4408,
  closing: 1001,
  unavailable: 1013,
  revoked: 4403,
};

/**
 * The WebSocket upgrade a subscriber request carries, checked before the subscriber is counted in;
 * refusals throw the HTTP answer (426, 501, 400).
 */
export function acceptUpgrade(req: IncomingMessage): PendingUpgrade {
  const pending = claimUpgrade(req);
  if (!pending) {
    // A plain GET on a WebSocket-only endpoint (RFC 9110 §15.5.22: 426 names the protocol to use).
    if (String(req.headers.upgrade).toLowerCase() !== 'websocket') throw webSocketRequired();
    // Node hands a request to the request handler when the server has no 'upgrade' listener, or when
    // its Connection header does not name "upgrade" (a proxy that drops it).
    if (upgradesHandled(req)) throw badHandshake('the Connection header does not name "upgrade": a proxy on the way may drop it (nginx: proxy_set_header Connection "upgrade", docs/deploy.md)');
    warnNotEnabled();
    throw webSocketNotEnabled();
  }
  const problem = handshakeProblem(req);
  if (problem) throw badHandshake(problem);
  return pending;
}

let warnedNotEnabled = false;

/**
 * The 501 a WebSocket client gets without relay.handleUpgrade(server) never reaches a page (browsers
 * show only "Unexpected response code: 501"): the app's own output says it, once per process.
 */
function warnNotEnabled(): void {
  if (warnedNotEnabled) return;
  warnedNotEnabled = true;
  process.emitWarning('push-relay: a WebSocket client was answered 501: call `await relay.handleUpgrade(server)` with the server the app listens on (docs/transports.md)', {
    code: 'PUSH_RELAY_NO_UPGRADE',
  });
}

/** Why a client's message was not published: the close code and reason the transport closes with. */
export class PublishRefused extends Error {
  constructor(
    readonly code: number,
    reason: string,
  ) {
    super(reason);
  }
}

/** What a WebSocket subscriber that may publish is given. */
export interface WebSocketPublishing {
  /** Most messages per second (websocketPublishRate). */
  readonly rate: number;
  /** Publishes one complete text message to every channel; rejects with PublishRefused. */
  publish(data: Buffer): Promise<void>;
}

export class WebSocketTransport implements SubscriberTransport {
  #ws: WebSocket | undefined;
  #pending: PendingUpgrade | undefined;
  /** The connection ws speaks on, written to directly for shared frames (see send). */
  readonly #socket: PendingUpgrade['socket'];
  #meta: MetaFraming = false;
  #gone = false;
  /** Answered the last keep-alive ping (or was just opened). */
  #alive = true;
  readonly #req: IncomingMessage;
  readonly #settings: TransportSettings;
  readonly #backlog: StreamBacklog;
  readonly #onClose: Array<() => void> = [];
  /** With websocketPublish: what publishes the client's messages. */
  readonly #publishing: WebSocketPublishing | undefined;
  /**
   * When the client's last websocketPublishRate messages came, epoch ms (a ring, grown as they come):
   * a message is refused when the one that many messages before it is less than a second old, so
   * that no second, wherever it starts, holds more than the rate.
   */
  readonly #sentAt: number[] = [];
  #oldestSent = 0;
  /** Publishes in the order the client sent them. */
  #publishQueue: Promise<void> = Promise.resolve();

  constructor(req: IncomingMessage, res: ServerResponse, pending: PendingUpgrade, settings: TransportSettings, publishing?: WebSocketPublishing) {
    this.#req = req;
    this.#publishing = publishing;
    this.#pending = pending;
    this.#socket = pending.socket;
    this.#settings = settings;
    this.#backlog = new StreamBacklog(
      settings.backlog,
      settings.maxStreamBacklog,
      QUEUED_WRITE_COST.websocket,
      () => this.#ws?.bufferedAmount ?? 0,
      // A client this far behind would hold the process's memory: cut it, it resumes from its last id.
      () => this.#ws?.terminate(),
    );
    // Until the handshake, the socket belongs to the HTTP response: a client leaving closes it. The
    // handshake also detaches the socket from the response: only a real departure counts.
    res.once('close', () => {
      if (!this.#ws && this.#pending?.socket.destroyed) this.#left();
    });
  }

  get closed(): boolean {
    return this.#gone || (this.#pending?.socket.destroyed ?? false);
  }

  /** `listener`: the client left, before or after the handshake (at once if it already has). */
  onClose(listener: () => void): void {
    if (this.closed) listener();
    else this.#onClose.push(listener);
  }

  /** Completes the handshake once. */
  open(): void {
    this.#open();
  }

  send(message: StoredMessage, gapAfter: MessageId | undefined, position: string | undefined, channel: string): boolean {
    if (!this.#open()) return false;
    const ws = this.#ws!;
    const templates = this.#settings.templates;
    let frame = templates?.message
      ? templatedFrame(templates, message, channel, this.#settings.defaultContentType, this.#meta, gapAfter !== undefined)
      : messageFrame(message, this.#settings.defaultContentType, this.#meta, gapAfter !== undefined);
    if (this.#meta && position !== undefined) {
      // The shared frame starts with the message's own `id:` line; this socket names its composite cursor.
      frame = { binary: frame.binary, data: Buffer.concat([Buffer.from(`id: ${position}\n`, 'utf8'), frame.data.subarray(frame.data.indexOf(10) + 1)]) };
      ws.send(frame.data, { binary: frame.binary }, this.#backlog.before());
    } else if (this.#socket.writable) {
      // The message's frame, built once with its header, written as one buffer to every socket (ws
      // would write its header and the payload apart). ws writes its own frames (pings, the close)
      // straight to the socket too, without compression: the order holds.
      this.#socket.write(wireOf(frame), this.#backlog.before());
    }
    this.#backlog.after();
    return false;
  }

  end(reason: EndReason, endedBy: string | undefined, _cursors?: unknown, channel?: string, notice?: string): void {
    if (!this.#open()) return;
    const templates = this.#settings.templates;
    if (templates) {
      // The channel deleted message (id -2) and the footer, each a text frame, before the close.
      const deleted = reason === 'deleted' ? templates.synthetic('deleted', channel ?? endedBy ?? '', noticeText(notice)) : undefined;
      if (deleted) this.#ws!.send(deleted, { binary: false });
      if (templates.footer) this.#ws!.send(templates.footer, { binary: false });
    }
    // The close frame's reason holds at most 123 bytes.
    this.#ws!.close(CLOSE_CODES[reason], truncateUtf8(oneLine(endSentence(reason, endedBy)), 123));
    stopPings(this, this.#settings.pingInterval);
  }

  dispose(): void {
    stopPings(this, this.#settings.pingInterval);
    this.#backlog.end();
  }

  abort(err: unknown): void {
    debug('websocket %s: %s', this.#req.url, err);
    stopPings(this, this.#settings.pingInterval);
    if (this.#ws) this.#ws.terminate();
    else this.#pending?.socket.destroy();
  }

  /** Sends a keep-alive ping, or cuts a peer that did not answer the previous one. */
  ping(): void {
    const ws = this.#ws;
    if (!ws || ws.readyState !== 1) return;
    if (!this.#alive) {
      debug('websocket %s: no pong since the last ping, closing', this.#req.url);
      ws.terminate();
      return;
    }
    this.#alive = false;
    ws.ping();
  }

  /** Completes the handshake once; false when the socket is not (or no longer) open. */
  #open(): boolean {
    if (this.#ws) return this.#ws.readyState === 1;
    const pending = this.#pending;
    if (!pending || this.#gone) return false;
    this.#pending = undefined;
    const opened = completeUpgrade(this.#req, pending, (ws) => {
      this.#ws = ws;
      this.#meta = ws.protocol === WEBSOCKET_META_PROTOCOL ? 'push-relay' : ws.protocol.startsWith(NCHAN_META_PROTOCOL) ? 'nchan' : false;
      ws.on('close', () => this.#left());
      ws.on('pong', () => {
        this.#alive = true;
      });
      // Without websocketPublish, frames from the client are read (ws must, to see control frames) and dropped.
      if (this.#publishing) ws.on('message', (data, binary) => this.#received(data as Buffer, binary));
      ws.on('error', (err) => debug('websocket %s: %s', this.#req.url, err.message));
      const header = this.#settings.templates?.header;
      if (header) ws.send(header, { binary: false });
      startPings(this, this.#settings.pingInterval);
    });
    if (!opened) this.#left();
    return opened;
  }

  /**
   * A complete message from the client (ws reassembles fragments and closes with 1007 on invalid
   * UTF-8): text is published to every channel of the connection; binary closes with 1003, more than
   * websocketPublishRate a second with 1008, a refusal with its own code (4403 not authorized).
   */
  #received(data: Buffer, binary: boolean): void {
    const ws = this.#ws;
    const publishing = this.#publishing;
    if (!ws || !publishing || ws.readyState !== 1) return;
    if (binary) {
      ws.close(1003, 'binary messages are not published; send text');
      return;
    }
    if (!this.#withinRate(publishing.rate, Date.now())) {
      ws.close(1008, `more than ${publishing.rate} messages a second (websocketPublishRate)`);
      return;
    }
    const copy = Buffer.from(data);
    this.#publishQueue = this.#publishQueue.then(
      () => publishing.publish(copy),
    ).catch((err: unknown) => {
      debug('websocket %s: publishing failed: %s', this.#req.url, err);
      if (ws.readyState !== 1) return;
      if (err instanceof PublishRefused) ws.close(err.code, truncateUtf8(err.message, 123));
      else ws.close(1011, 'publishing failed; try again');
    });
  }

  /** Counts a message received at `now` against the rate; false when it is one too many. */
  #withinRate(rate: number, now: number): boolean {
    const sentAt = this.#sentAt;
    if (sentAt.length < rate) {
      sentAt.push(now);
      return true;
    }
    if (now - sentAt[this.#oldestSent]! < 1000) return false;
    sentAt[this.#oldestSent] = now;
    this.#oldestSent = (this.#oldestSent + 1) % rate;
    return true;
  }

  #left(): void {
    if (this.#gone) return;
    this.#gone = true;
    stopPings(this, this.#settings.pingInterval);
    this.#backlog.end();
    for (const listener of this.#onClose.splice(0)) listener();
  }
}

/** The frame of a templated message, built once per message and endpoint (see messageFrame for `meta`). */
function templatedFrame(templates: Templates, message: StoredMessage, channel: string, defaultContentType: string | undefined, meta: MetaFraming, missed: boolean): Frame {
  const key = `ws:${meta || 'p'}${missed && meta === 'push-relay' ? '!' : ''}`;
  let cache = templates.frames.get(key) as WeakMap<StoredMessage, Frame> | undefined;
  if (!cache) templates.frames.set(key, (cache = new WeakMap()));
  let frame = cache.get(message);
  if (!frame) {
    const rendered = { ...message, data: templates.render(message, channel), contentType: defaultContentType };
    frame = messageFrame(rendered, defaultContentType, meta, missed);
    cache.set(message, frame);
  }
  return frame;
}

/** At most `max` bytes of `text`, cut at a character boundary. */
function truncateUtf8(text: string, max: number): string {
  if (Buffer.byteLength(text) <= max) return text;
  let out = '';
  for (const ch of text) {
    if (Buffer.byteLength(out + ch) > max - 3) return `${out}...`;
    out += ch;
  }
  return out;
}

export interface Frame {
  data: Buffer;
  binary: boolean;
  /** The whole frame on the wire (header and payload), built the first time a socket takes it. */
  wire?: Buffer;
}

/** A frame as a server sends it (RFC 6455 §5.2: FIN, text or binary opcode, unmasked), built once per frame. */
export function wireOf(frame: Frame): Buffer {
  if (frame.wire) return frame.wire;
  const length = frame.data.length;
  const head = length < 126 ? 2 : length < 65_536 ? 4 : 10;
  const wire = Buffer.allocUnsafe(head + length);
  wire[0] = frame.binary ? 0x82 : 0x81;
  if (length < 126) {
    wire[1] = length;
  } else if (length < 65_536) {
    wire[1] = 126;
    wire.writeUInt16BE(length, 2);
  } else {
    wire[1] = 127;
    wire.writeBigUInt64BE(BigInt(length), 2);
  }
  frame.data.copy(wire, head);
  frame.wire = wire;
  return wire;
}

/** Frames per message, built once and shared by every socket it goes to (keyed by meta + default type). */
const frames = new WeakMap<StoredMessage, Map<string, Frame>>();

/**
 * How a socket frames messages: `false`, the body alone; `'push-relay'` (ws+meta.push-relay):
 * `id: <time:tag>`, `content-type:`, `event:` and `missed: 1` lines, a blank line, then the body;
 * `'nchan'` (ws+meta.nchan): exactly what Nchan sends and its client parses, `id:` and
 * `content-type:` only (`^id: (.*)\n(content-type: (.*)\n)?\n`).
 */
export type MetaFraming = false | 'push-relay' | 'nchan';

/** The frame that carries `message`. Binary frame unless the message is text (see isText). */
export function messageFrame(message: StoredMessage, defaultContentType: string | undefined, meta: MetaFraming, missed = false): Frame {
  // A fan-out asks for the same frame once per socket, thousands of times in a row.
  const last = lastFrame;
  if (last.message === message && last.defaultContentType === defaultContentType && last.meta === meta && last.missed === missed) return last.frame;
  const frame = buildFrame(message, defaultContentType, meta, missed);
  lastFrame = { message, defaultContentType, meta, missed, frame };
  return frame;
}

let lastFrame: { message: StoredMessage | undefined; defaultContentType: string | undefined; meta: MetaFraming; missed: boolean; frame: Frame } = {
  message: undefined,
  defaultContentType: undefined,
  meta: false,
  missed: false,
  frame: { data: Buffer.alloc(0), binary: false },
};

function buildFrame(message: StoredMessage, defaultContentType: string | undefined, meta: MetaFraming, missed: boolean): Frame {
  const contentType = message.contentType ?? defaultContentType;
  const key = `${meta === 'push-relay' ? 'm' : meta === 'nchan' ? 'n' : 'p'}${missed && meta === 'push-relay' ? '!' : ''}${message.contentType ? '' : (defaultContentType ?? '')}`;
  let byKey = frames.get(message);
  const hit = byKey?.get(key);
  if (hit) return hit;
  const binary = !isText(message.data, contentType);
  let data = message.data;
  if (meta) {
    let head = `id: ${formatId(message.id)}\n`;
    if (contentType) head += `content-type: ${oneLine(contentType)}\n`;
    if (meta === 'push-relay') {
      if (message.eventType) head += `event: ${oneLine(message.eventType)}\n`;
      if (missed) head += 'missed: 1\n';
    }
    data = Buffer.concat([Buffer.from(`${head}\n`, 'utf8'), message.data]);
  }
  const frame = { data, binary };
  if (!byKey) frames.set(message, (byKey = new Map()));
  byKey.set(key, frame);
  return frame;
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
