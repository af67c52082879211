/**
 * What every streaming transport shares (EventSource, chunked, multipart/mixed, raw stream): the
 * response stays open, each message is written as a frame, and the subscriber stays parked (its
 * `deliver` returns false; the registry then moves its cursor). Headers are written at the first
 * write, so a stream the store refuses (409/403) is answered with that status instead.
 */
import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { missedBefore } from '../cursor.js';
import { MISSED_HEADER } from '../http/message-response.js';
import { bodySocket, type WireFrame } from '../http/wire-frame.js';
import type { MessageId } from '../message-id.js';
import type { EndReason, ParkedSubscriber } from '../parked-subscribers.js';
import type { StoredMessage } from '../store/channel-store.js';

/** The end-of-stream notice header (multipart part header, chunked / raw stream trailer). */
export const END_HEADER = 'X-Push-Relay-End';

/** Bytes a client may leave unread before its stream is cut (it can resume from its last id). */
export const MAX_BACKLOG = 16 * 1024 * 1024;

/** Why a stream ended, as its final notice says it. */
export const END_SENTENCES: Record<EndReason, string> = {
  deleted: 'push-relay: channel deleted',
  conflict: 'push-relay: a newer subscriber took over this channel (concurrency "last")',
  timeout: 'push-relay: subscriberTimeout reached; reconnect with the last id to resume',
  closing: 'push-relay: the relay is shutting down',
  unavailable: 'push-relay: the channel store is unavailable',
};

export interface StreamSettings {
  defaultContentType: string | undefined;
  deletesReceived: boolean;
  /** ms between keep-alive frames, 0 = none (only transports with a ping frame use it). */
  pingInterval: number;
}

export abstract class StreamSubscriber implements ParkedSubscriber {
  slot = -1;
  parked = false;
  gone = false;
  readonly deletesReceived: boolean;
  #opened = false;
  #ended = false;
  /**
   * The socket shared frames are written to, once found (see bodySocket); looked up once, not per
   * message: under Express every property read on `res` goes through its swapped prototype chain.
   */
  #socket: Socket | undefined;
  #chunked = false;
  /** False until it has a real position: a first connection without a cursor cannot have missed anything. */
  #signalsLoss: boolean;

  constructor(
    readonly id: string,
    readonly channel: string,
    public cursor: MessageId | undefined,
    readonly res: ServerResponse,
    protected readonly settings: StreamSettings,
    resumed: boolean,
  ) {
    this.deletesReceived = settings.deletesReceived;
    this.#signalsLoss = resumed;
  }

  /** The 200's headers. */
  protected abstract headers(): OutgoingHttpHeaders;
  /** Written right after the headers. */
  protected preamble(): string | undefined {
    return undefined;
  }
  /** The bytes of one message; `missed`: messages were lost right before it. */
  protected abstract frame(message: StoredMessage, missed: boolean): Array<string | Buffer>;
  /**
   * The frame of `message` when it is the same bytes on every stream it goes to (built once per
   * message and written to each socket as is), else undefined and `frame()` is used.
   */
  protected sharedFrame(_message: StoredMessage): WireFrame | undefined {
    return undefined;
  }
  /** The final notice (may be empty). */
  protected abstract epilogue(reason: EndReason): string;
  /** The keep-alive frame, if the transport has one. */
  protected pingFrame(): WireFrame | undefined {
    return undefined;
  }

  /** Sends the headers, once. `missed`: the stream opens on a message that follows a gap. */
  open(missed = false): void {
    const res = this.res;
    if (this.#opened || res.headersSent || res.destroyed) return;
    this.#opened = true;
    const headers = this.headers();
    if (missed) headers[MISSED_HEADER] = '1';
    res.writeHead(200, headers);
    const preamble = this.preamble();
    if (preamble) this.write([preamble]);
    else res.flushHeaders();
    if (this.pingFrame() !== undefined) startPings(this, this.settings.pingInterval);
  }

  deliver(message: StoredMessage): boolean {
    const missed = this.#signalsLoss && missedBefore(this.cursor, message);
    this.#signalsLoss = true;
    this.open(missed);
    const shared = missed ? undefined : this.sharedFrame(message);
    if (shared) this.#writeShared(shared);
    else this.write(this.frame(message, missed));
    return false;
  }

  end(reason: EndReason): void {
    this.open();
    const res = this.res;
    this.#ended = true;
    this.dispose();
    if (res.destroyed || res.writableEnded) return;
    const notice = this.epilogue(reason);
    if (notice) this.write([notice]);
    res.end();
  }

  ping(): void {
    const frame = this.pingFrame();
    if (frame) this.#writeShared(frame);
  }

  /** Stops its keep-alive; the registry forgets it separately. */
  dispose(): void {
    stopPings(this, this.settings.pingInterval);
  }

  protected write(chunks: Array<string | Buffer>): void {
    const res = this.res;
    if (!this.#writable()) return;
    if (chunks.length > 1) res.cork();
    for (const chunk of chunks) if (chunk.length > 0) res.write(chunk);
    if (chunks.length > 1) res.uncork();
    // The compression middleware buffers until flushed (no-transform already makes it pass through).
    (res as ServerResponse & { flush?: () => void }).flush?.();
  }

  #writeShared(frame: WireFrame): void {
    if (this.#ended || frame.body.length === 0) return; // an empty chunk would end a chunked response
    const socket = this.#socket ?? this.#findSocket();
    if (!socket) {
      // Something wraps the body (compression), or the response still waits for its connection.
      this.write([frame.body]);
      return;
    }
    if (socket.destroyed) return;
    if (socket.writableLength > MAX_BACKLOG) {
      socket.destroy(); // as #writable(): it resumes from its last id
      return;
    }
    socket.write(this.#chunked ? frame.chunk : frame.body);
  }

  #findSocket(): Socket | undefined {
    const socket = bodySocket(this.res);
    if (socket) {
      this.#socket = socket;
      this.#chunked = this.res.chunkedEncoding;
    }
    return socket;
  }

  #writable(): boolean {
    const res = this.res;
    if (res.destroyed || res.writableEnded) return false;
    if (res.writableLength > MAX_BACKLOG) {
      // A client this far behind would hold the process's memory: cut it, it resumes from its last id.
      res.destroy();
      return false;
    }
    return true;
  }
}

/** Anything with a keep-alive: the streams here, WebSocket subscribers (websocket.ts). */
export interface Pingable {
  ping(): void;
}

/** Pings `s` every `interval` ms, from the one timer every subscriber with that interval shares. */
export function startPings(s: Pingable, interval: number): void {
  if (interval > 0) pingerFor(interval).add(s);
}

export function stopPings(s: Pingable, interval: number): void {
  pingers.get(interval)?.delete(s);
}

/** Ping timers running now (one per distinct interval in use). */
export function pingTimers(): number {
  return pingers.size;
}

/** One timer per ping interval for every open stream, not one per stream. */
class Pinger {
  readonly #streams = new Set<Pingable>();
  #timer: NodeJS.Timeout | undefined;

  constructor(readonly interval: number) {}

  add(stream: Pingable): void {
    this.#streams.add(stream);
    if (this.#timer) return;
    this.#timer = setInterval(() => {
      for (const s of this.#streams) s.ping();
    }, this.interval);
    this.#timer.unref();
  }

  delete(stream: Pingable): void {
    if (!this.#streams.delete(stream) || this.#streams.size > 0) return;
    clearInterval(this.#timer);
    this.#timer = undefined;
    pingers.delete(this.interval);
  }
}

const pingers = new Map<number, Pinger>();

function pingerFor(interval: number): Pinger {
  let pinger = pingers.get(interval);
  if (!pinger) pingers.set(interval, (pinger = new Pinger(interval)));
  return pinger;
}
