/**
 * What the four HTTP streams share (EventSource, chunked, multipart/mixed, raw stream): the response
 * stays open and each message is written as a frame. Headers are written at the first write, so a
 * stream the store refuses (409/403) is answered with that status instead. A frame that is the same
 * bytes on every stream it goes to is built once per message and written straight to each socket.
 *
 * With templates (protocol/templates.ts), the header template follows the headers, each message is
 * its template's rendering, a deleted channel sends its synthetic message, and the footer template
 * comes before the relay's own end; each transport frames them in its own way (the `*Frame` hooks).
 */
import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { bodySocket, type WireFrame } from '../http/wire-frame.js';
import { MISSED_HEADER, type EndReason } from '../protocol/answers.js';
import type { MessageId } from '../protocol/message-id.js';
import type { StoredMessage } from '../store/channel-store.js';
import { noticeText, paddingBytes, paddingText } from '../protocol/templates.js';
import { startPings, stopPings } from './keep-alive.js';
import { QUEUED_WRITE_COST, StreamBacklog } from './backlog.js';
import type { SubscriberTransport, TransportSettings } from './transport.js';

export abstract class HttpStream implements SubscriberTransport {
  #opened = false;
  #ended = false;
  /**
   * The socket shared frames are written to, once found (see bodySocket); looked up once, not per
   * message: under Express every property read on `res` goes through its swapped prototype chain.
   */
  #socket: Socket | undefined;
  #chunked = false;
  /** What the client leaves unread (see backlog.ts). */
  readonly #backlog: StreamBacklog;

  constructor(
    readonly res: ServerResponse,
    protected readonly settings: TransportSettings,
  ) {
    this.#backlog = new StreamBacklog(
      settings.backlog,
      settings.maxStreamBacklog,
      QUEUED_WRITE_COST.http,
      () => (this.#socket ? this.#socket.writableLength : res.writableLength),
      // A client this far behind would hold the process's memory: cut it, it resumes from its last id.
      () => res.destroy(),
    );
  }

  /** The 200's headers. */
  protected abstract headers(): OutgoingHttpHeaders;
  /** Written right after the headers. */
  protected preamble(): string | undefined {
    return undefined;
  }
  /** The bytes of one message (see SubscriberTransport.send for the arguments). */
  protected abstract frame(message: StoredMessage, gapAfter: MessageId | undefined, position: string | undefined, channel: string): Array<string | Buffer>;
  /**
   * The frame of `message` when it is the same bytes on every stream it goes to (built once per
   * message and written to each socket as is), else undefined and `frame()` is used.
   */
  protected sharedFrame(_message: StoredMessage, _position: string | undefined, _channel: string): WireFrame | undefined {
    return undefined;
  }
  /** The final notice (may be empty). */
  protected abstract epilogue(reason: EndReason, endedBy: string | undefined): string;
  /** The keep-alive frame, if the transport has one. */
  protected pingFrame(): WireFrame | undefined {
    return undefined;
  }
  /** How this transport carries template text (the header and footer templates, a synthetic message); undefined: it does not. */
  protected textFrame(_text: Buffer, _kind: 'header' | 'footer' | 'message'): string | Buffer | undefined {
    return undefined;
  }
  /** Padding of `n` bytes, in this transport's framing. */
  protected paddingFrame(n: number): string {
    return paddingText(n, false);
  }

  /** The message's body as the endpoint's message template renders it (as it is without one). */
  protected body(message: StoredMessage, channel: string): Buffer {
    return this.settings.templates ? this.settings.templates.render(message, channel) : message.data;
  }

  /** The cache of this transport's shared frames: per endpoint templates when templated. */
  protected frameCache(kind: string, untemplated: WeakMap<StoredMessage, WireFrame>): WeakMap<StoredMessage, WireFrame> {
    const templates = this.settings.templates;
    if (!templates) return untemplated;
    let cache = templates.frames.get(kind) as WeakMap<StoredMessage, WireFrame> | undefined;
    if (!cache) templates.frames.set(kind, (cache = new WeakMap()));
    return cache;
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
    const header = this.#headerChunks();
    if (preamble) header.unshift(preamble);
    if (header.length > 0) this.write(header);
    else res.flushHeaders();
    if (this.pingFrame() !== undefined) startPings(this, this.settings.pingInterval);
  }

  send(message: StoredMessage, gapAfter: MessageId | undefined, position: string | undefined, channel: string): boolean {
    this.open(gapAfter !== undefined);
    const shared = gapAfter === undefined ? this.sharedFrame(message, position, channel) : undefined;
    const frame = shared ? undefined : this.frame(message, gapAfter, position, channel);
    if (shared) this.#writeShared(shared);
    else this.write(frame!);
    const padding = this.settings.padding;
    if (padding) {
      const length = shared ? shared.body.length : frame!.reduce((n, c) => n + (typeof c === 'string' ? Buffer.byteLength(c) : c.length), 0);
      const n = paddingBytes(length, padding.message, padding.max);
      if (n > 0) this.write([this.paddingFrame(n)]);
    }
    return false;
  }

  end(reason: EndReason, endedBy: string | undefined, _cursors?: unknown, channel?: string, notice?: string): void {
    this.open();
    const res = this.res;
    this.#ended = true;
    this.dispose();
    if (res.destroyed || res.writableEnded) return;
    const chunks: Array<string | Buffer> = [];
    const templates = this.settings.templates;
    if (templates) {
      // The channel deleted message (id -2), then the footer, before the relay's own end.
      const deleted = reason === 'deleted' ? templates.synthetic('deleted', channel ?? endedBy ?? '', noticeText(notice)) : undefined;
      const frame = deleted && this.textFrame(deleted, 'message');
      if (frame) chunks.push(frame);
      const footer = templates.footer && this.textFrame(templates.footer, 'footer');
      if (footer) chunks.push(footer);
    }
    const ending = this.epilogue(reason, endedBy);
    if (ending) chunks.push(ending);
    if (chunks.length > 0) this.write(chunks);
    res.end();
  }

  /** The header template (and its padding), framed, or nothing. */
  #headerChunks(): Array<string | Buffer> {
    const header = this.settings.templates?.header;
    const frame = header && this.textFrame(header, 'header');
    const chunks: Array<string | Buffer> = frame ? [frame] : [];
    const padding = this.settings.padding;
    if (padding) {
      const length = frame ? (typeof frame === 'string' ? Buffer.byteLength(frame) : frame.length) : 0;
      const n = paddingBytes(length, padding.header, padding.max);
      if (n > 0) chunks.push(this.paddingFrame(n));
    }
    return chunks;
  }

  ping(): void {
    const frame = this.pingFrame();
    if (frame) this.#writeShared(frame);
  }

  dispose(): void {
    stopPings(this, this.settings.pingInterval);
    this.#backlog.end();
  }

  abort(err: unknown): void {
    this.#ended = true;
    this.dispose();
    this.res.destroy(err instanceof Error ? err : undefined);
  }

  get closed(): boolean {
    return this.res.destroyed || (this.res.socket?.destroyed ?? false);
  }

  onClose(listener: () => void): void {
    this.res.once('close', listener);
  }

  protected write(chunks: Array<string | Buffer>): void {
    const res = this.res;
    if (!this.#writable()) return;
    if (chunks.length > 1) res.cork();
    for (const chunk of chunks) if (chunk.length > 0) res.write(chunk, this.#backlog.before());
    if (chunks.length > 1) res.uncork();
    if (!this.#backlog.after()) return;
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
    socket.write(this.#chunked ? frame.chunk : frame.body, this.#backlog.before());
    this.#backlog.after();
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
    return !res.destroyed && !res.writableEnded;
  }
}
