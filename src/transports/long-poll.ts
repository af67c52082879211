/**
 * Long-poll and interval-poll (push_subscriber): one message per request. A waiting request is
 * answered with the message exactly as if it had been stored already (rev 2.23 §3.1), or ends with
 * 304 (time-out, or interval-poll with nothing new), 410, 409 or 503.
 *
 * The 200's header block is built once per message (and default content type) and shared by every
 * subscriber it goes to, as is the body Buffer: fan-out writes, it does not rebuild.
 */
import type { ServerResponse } from 'node:http';
import { sendText } from '../http/respond.js';
import { endSentence, ENDINGS, MISSED_HEADER, type EndReason } from '../protocol/answers.js';
import { cursorHeaders } from '../protocol/cursor.js';
import type { MessageId } from '../protocol/message-id.js';
import { positionHeaders, type Cursors } from '../protocol/position.js';
import type { StoredMessage } from '../store/channel-store.js';
import type { SubscriberTransport } from './transport.js';

/** Flat `[name, value, name, value, ...]`, the form `writeHead` takes without building an object. */
type RawHeaders = string[];

const cache = new WeakMap<StoredMessage, Map<string, RawHeaders>>();
let lastMessage: StoredMessage | undefined;
let lastKey = '';
let lastHeaders: RawHeaders = [];

/**
 * The caching headers: the protocol's (the old module's and Nchan's Vary), or, for pages that leave
 * the cursor to the browser's cache (`browserCache`), no Vary (Chromium then revalidates with both
 * validators) and `private` (a shared cache must not hand one client's position to another).
 */
const CACHING: Readonly<Record<'protocol' | 'browser', RawHeaders>> = {
  protocol: ['Vary', 'If-None-Match, If-Modified-Since', 'Cache-Control', 'no-cache, no-transform'],
  browser: ['Cache-Control', 'private, no-cache, no-transform'],
};

/** Headers of the 200 for `message`: Last-Modified, Etag, Content-Type, Vary, Cache-Control, Content-Length. */
function messageHeaders(message: StoredMessage, defaultContentType: string | undefined, browserCache: boolean): RawHeaders {
  const key = `${browserCache ? 'b' : 'p'}${message.contentType ? '' : (defaultContentType ?? '')}`;
  // A fan-out asks for the same message thousands of times in a row.
  if (message === lastMessage && key === lastKey) return lastHeaders;
  let byDefault = cache.get(message);
  let headers = byDefault?.get(key);
  if (!headers) {
    const { lastModified, etag } = cursorHeaders(message.id);
    const contentType = message.contentType ?? defaultContentType;
    headers = ['Last-Modified', lastModified, 'Etag', etag];
    if (contentType) headers.push('Content-Type', contentType);
    // no-transform: compression middleware and proxies must pass messages through untouched.
    headers.push(...CACHING[browserCache ? 'browser' : 'protocol'], 'Content-Length', String(message.data.length));
    if (!byDefault) cache.set(message, (byDefault = new Map()));
    byDefault.set(key, headers);
  }
  lastMessage = message;
  lastKey = key;
  lastHeaders = headers;
  return headers;
}

export class LongPoll implements SubscriberTransport {
  /** One answer per request, whichever comes first. */
  #answered = false;
  #onAnswered: Array<() => void> | undefined;

  constructor(
    readonly res: ServerResponse,
    readonly defaultContentType: string | undefined,
    readonly browserCache = false,
  ) {}

  send(message: StoredMessage, gapAfter: MessageId | undefined, position: string | undefined): boolean {
    if (this.#answered) return true;
    const res = this.res;
    // `destroyed` is an own field; `headersSent` would be a getter through Express's swapped prototype
    // chain, which costs microseconds per delivery there.
    if (res.destroyed) {
      this.#answered = true;
      return true;
    }
    let headers = messageHeaders(message, this.defaultContentType, this.browserCache);
    if (position !== undefined || gapAfter !== undefined) {
      // A copy for this one answer: the shared array goes to every other subscriber of the message.
      headers = [...headers];
      if (position !== undefined) headers[headers.indexOf('Etag') + 1] = position;
      if (gapAfter !== undefined) headers.push(MISSED_HEADER, '1');
    }
    // Answered once written: should writing throw, abort() cuts the request instead of leaving it hanging.
    res.writeHead(200, headers);
    res.end(message.data);
    this.#answer();
    return true;
  }

  /**
   * Calls `listener` once the request is answered (at once if it is already): synchronously, before
   * the client can come back with its next poll, which the response's 'close' event may not be.
   */
  onAnswered(listener: () => void): void {
    if (this.#answered) listener();
    else (this.#onAnswered ??= []).push(listener);
  }

  #answer(): void {
    this.#answered = true;
    const listeners = this.#onAnswered;
    this.#onAnswered = undefined;
    if (listeners) for (const listener of listeners) listener();
  }

  end(reason: EndReason, endedBy: string | undefined, cursors: Cursors): void {
    if (this.#answered) return;
    try {
      this.#end(reason, endedBy, cursors);
    } finally {
      this.#answer();
    }
  }

  #end(reason: EndReason, endedBy: string | undefined, cursors: Cursors): void {
    const res = this.res;
    if (reason !== 'timeout') {
      const ending = ENDINGS[reason];
      sendText(res, ending.status, endSentence(reason, endedBy), ending.headers);
      return;
    }
    // 304 echoes the position, so that the client's next request asks for the same next message. To
    // a browser's cache a 304 means "show the cached message again": there, an empty 200 naming the
    // position replaces the cached message, and the next request carries the same cursor.
    if (res.headersSent) return;
    const { lastModified, etag } = positionHeaders(cursors);
    const headers = [...CACHING[this.browserCache ? 'browser' : 'protocol']];
    if (lastModified) headers.push('Last-Modified', lastModified);
    if (etag) headers.push('Etag', etag);
    if (this.browserCache) headers.push('Content-Length', '0');
    res.writeHead(this.browserCache ? 200 : 304, headers);
    res.end();
  }

  open(): void {}

  dispose(): void {
    this.#answered = true;
  }

  abort(err: unknown): void {
    this.#answered = true;
    this.res.destroy(err instanceof Error ? err : undefined);
  }

  get closed(): boolean {
    return this.res.destroyed;
  }

  onClose(listener: () => void): void {
    // res 'close', not req 'close': since Node 16 req closes when its body is read.
    this.res.once('close', listener);
  }
}
