/**
 * Long-poll and interval-poll (push_subscriber): one message per request. A waiting request is
 * answered with the message exactly as if it had been stored already (rev 2.23 §3.1), or ends with
 * 304 (time-out, or interval-poll with nothing new), 410, 409 or 503.
 *
 * The 200's header block is built once per message (and default content type) and shared by every
 * subscriber it goes to, as is the body Buffer: fan-out writes, it does not rebuild.
 *
 * With templates (protocol/templates.ts) the body is the header template, the message template's
 * rendering and the footer template, and a deleted channel or (timeoutWithBody) a time-out answers
 * 200 with its synthetic message. JSONP (a `callback` argument) wraps the message as `name([...]);`.
 */
import type { ServerResponse } from 'node:http';
import { sendText } from '../http/respond.js';
import { endSentence, ENDINGS, MISSED_HEADER, type EndReason } from '../protocol/answers.js';
import { cursorHeaders } from '../protocol/cursor.js';
import type { MessageId } from '../protocol/message-id.js';
import { positionHeaders, type Cursors } from '../protocol/position.js';
import type { StoredMessage } from '../store/channel-store.js';
import { noticeText, type Templates } from '../protocol/templates.js';
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
const CACHING: Readonly<Record<'protocol' | 'browser' | 'protocol+origin' | 'browser+origin', RawHeaders>> = {
  protocol: ['Vary', 'If-None-Match, If-Modified-Since', 'Cache-Control', 'no-cache, no-transform'],
  browser: ['Cache-Control', 'private, no-cache, no-transform'],
  // An allowOrigin that answers each origin its own way (a list, a RegExp, a function) varies by Origin too.
  'protocol+origin': ['Vary', 'If-None-Match, If-Modified-Since, Origin', 'Cache-Control', 'no-cache, no-transform'],
  'browser+origin': ['Vary', 'Origin', 'Cache-Control', 'private, no-cache, no-transform'],
};

function caching(settings: { browserCache: boolean; varyOrigin?: boolean | undefined }): RawHeaders {
  return CACHING[`${settings.browserCache ? 'browser' : 'protocol'}${settings.varyOrigin ? '+origin' : ''}`];
}

/** Headers of the 200 for `message` (its `body`, as sent): Last-Modified, Etag, Content-Type, Vary, Cache-Control, Content-Length. */
function messageHeaders(message: StoredMessage, body: Buffer, contentType: string | undefined, settings: PollSettings, templated: number): RawHeaders {
  const key = `${settings.browserCache ? 'b' : 'p'}${settings.varyOrigin ? 'o' : ''}${templated}|${contentType ?? ''}`;
  // A fan-out asks for the same message thousands of times in a row.
  if (message === lastMessage && key === lastKey) return lastHeaders;
  let byDefault = cache.get(message);
  let headers = byDefault?.get(key);
  if (!headers) {
    const { lastModified, etag } = cursorHeaders(message.id);
    headers = ['Last-Modified', lastModified, 'Etag', etag];
    if (contentType) headers.push('Content-Type', contentType);
    // no-transform: compression middleware and proxies must pass messages through untouched.
    headers.push(...caching(settings), 'Content-Length', String(body.length));
    if (!byDefault) cache.set(message, (byDefault = new Map()));
    byDefault.set(key, headers);
  }
  lastMessage = message;
  lastKey = key;
  lastHeaders = headers;
  return headers;
}

const responses = new WeakMap<StoredMessage, Map<string, RawHeaders>>();

/**
 * The answer of a message/http message: the publisher's headers, then the relay's own cursor,
 * caching and framing headers (built once per message and kind of endpoint).
 */
function responseHeaders(message: StoredMessage, contentType: string | undefined, settings: PollSettings): RawHeaders {
  const key = `${settings.browserCache ? 'b' : 'p'}${settings.varyOrigin ? 'o' : ''}|${contentType ?? ''}`;
  let byKey = responses.get(message);
  let headers = byKey?.get(key);
  if (!headers) {
    headers = [];
    for (const [name, value] of message.response!.headers) headers.push(name, value);
    const { lastModified, etag } = cursorHeaders(message.id);
    headers.push('Last-Modified', lastModified, 'Etag', etag);
    if (contentType) headers.push('Content-Type', contentType);
    headers.push(...caching(settings), 'Content-Length', String(message.data.length));
    if (!byKey) responses.set(message, (byKey = new Map()));
    byKey.set(key, headers);
  }
  return headers;
}

/** What a poll's answers look like, per endpoint (and, for JSONP, per request). */
export interface PollSettings {
  /** Content-Type of messages published without one. */
  defaultContentType: string | undefined;
  /** See SubscriberOptions.browserCache. */
  browserCache: boolean;
  templates?: Templates | undefined;
  /** The JSONP callback this request named, if any (already validated). */
  jsonp?: string | undefined;
  /** Answers add `Vary: Origin` (allowOrigin answers each origin its own way). */
  varyOrigin?: boolean | undefined;
}

const templateIds = new WeakMap<Templates, number>();
let nextTemplateId = 1;
function templateId(templates: Templates | undefined): number {
  if (!templates) return 0;
  let id = templateIds.get(templates);
  if (id === undefined) templateIds.set(templates, (id = nextTemplateId++));
  return id;
}

/** A poll body with the header and footer templates around `middle`. */
function framed(templates: Templates, middle: Buffer): Buffer {
  const { header, footer } = templates;
  return header || footer ? Buffer.concat([header ?? EMPTY, middle, footer ?? EMPTY]) : middle;
}
const EMPTY = Buffer.alloc(0);
const pollBodies = new WeakMap<Templates, WeakMap<StoredMessage, Buffer>>();

/** `name([item]);`: the template's rendering, or without a message template the body as a JSON string. */
function jsonpBody(callback: string, templates: Templates | undefined, item: Buffer | undefined, text: Buffer): Buffer {
  const inner = item ?? Buffer.from(JSON.stringify(text.toString('utf8')), 'utf8');
  return Buffer.concat([Buffer.from(`${callback}([`, 'latin1'), inner, JSONP_END]);
}
const JSONP_END = Buffer.from(']);', 'latin1');
const JSONP_TYPE = 'application/javascript; charset=utf-8';

export class LongPoll implements SubscriberTransport {
  /** One answer per request, whichever comes first. */
  #answered = false;
  #onAnswered: Array<() => void> | undefined;
  readonly #settings: PollSettings;
  readonly #templateId: number;

  constructor(
    readonly res: ServerResponse,
    settings: PollSettings,
  ) {
    this.#settings = settings;
    this.#templateId = templateId(settings.templates);
  }

  send(message: StoredMessage, gapAfter: MessageId | undefined, position: string | undefined, channel: string): boolean {
    if (this.#answered) return true;
    const res = this.res;
    // `destroyed` is an own field; `headersSent` would be a getter through Express's swapped prototype
    // chain, which costs microseconds per delivery there.
    if (res.destroyed) {
      this.#answered = true;
      return true;
    }
    const { templates, jsonp, defaultContentType } = this.#settings;
    let body = message.data;
    let headers: RawHeaders;
    if (jsonp !== undefined) {
      body = jsonpBody(jsonp, templates, templates?.message ? templates.render(message, channel) : undefined, message.data);
      const { lastModified, etag } = cursorHeaders(message.id);
      headers = ['Last-Modified', lastModified, 'Etag', etag, 'Content-Type', JSONP_TYPE, 'X-Content-Type-Options', 'nosniff', ...caching(this.#settings), 'Content-Length', String(body.length)];
    } else if (message.response) {
      headers = responseHeaders(message, message.contentType ?? defaultContentType, this.#settings);
    } else {
      if (templates) body = this.#templated(templates, message, channel);
      // A templated body is the endpoint's own text: its type is the endpoint's (defaultContentType).
      const contentType = templates ? (defaultContentType ?? message.contentType) : (message.contentType ?? defaultContentType);
      headers = messageHeaders(message, body, contentType, this.#settings, this.#templateId);
    }
    if (position !== undefined || gapAfter !== undefined) {
      // A copy for this one answer: the shared array goes to every other subscriber of the message.
      headers = [...headers];
      if (position !== undefined) headers[headers.indexOf('Etag') + 1] = position;
      if (gapAfter !== undefined) headers.push(MISSED_HEADER, '1');
    }
    // Answered once written: should writing throw, abort() cuts the request instead of leaving it hanging.
    res.writeHead(message.response?.status ?? 200, headers);
    res.end(body);
    this.#answer();
    return true;
  }

  /** Header, message and footer templates, built once per message and endpoint. */
  #templated(templates: Templates, message: StoredMessage, channel: string): Buffer {
    let bodies = pollBodies.get(templates);
    if (!bodies) pollBodies.set(templates, (bodies = new WeakMap()));
    let body = bodies.get(message);
    if (!body) bodies.set(message, (body = framed(templates, templates.render(message, channel))));
    return body;
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

  end(reason: EndReason, endedBy: string | undefined, cursors: Cursors, channel?: string, notice?: string): void {
    if (this.#answered) return;
    try {
      this.#end(reason, endedBy, cursors, channel, notice);
    } finally {
      this.#answer();
    }
  }

  #end(reason: EndReason, endedBy: string | undefined, cursors: Cursors, channel: string | undefined, notice: string | undefined): void {
    const res = this.res;
    const { templates, browserCache } = this.#settings;
    // With templates, a deleted channel (a message template) and a time-out (timeoutWithBody) answer
    // 200 with their synthetic message, as the Push Stream Module does.
    if (templates && ((reason === 'deleted' && templates.message) || (reason === 'timeout' && templates.settings.timeoutWithBody))) {
      if (res.headersSent) return;
      const kind = reason === 'deleted' ? 'deleted' : 'timeout';
      this.#answerSynthetic(templates, kind, kind === 'deleted' ? (channel ?? '') : '', cursors, notice);
      return;
    }
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
    const headers = [...caching(this.#settings)];
    if (lastModified) headers.push('Last-Modified', lastModified);
    if (etag) headers.push('Etag', etag);
    if (browserCache) headers.push('Content-Length', '0');
    res.writeHead(browserCache ? 200 : 304, headers);
    res.end();
  }

  /** 200 with a synthetic message (-2 deleted, -3 time-out), naming the position the client keeps. */
  #answerSynthetic(templates: Templates, kind: 'deleted' | 'timeout', channel: string, cursors: Cursors, notice: string | undefined): void {
    const { jsonp, defaultContentType } = this.#settings;
    const text = noticeText(notice) ?? Buffer.from(templates.textOf(kind), 'utf8');
    const rendered = templates.synthetic(kind, channel, text);
    const body = jsonp !== undefined ? jsonpBody(jsonp, templates, rendered, text) : framed(templates, rendered ?? text);
    const { lastModified, etag } = positionHeaders(cursors);
    const headers = [...caching(this.#settings)];
    if (lastModified) headers.push('Last-Modified', lastModified);
    if (etag) headers.push('Etag', etag);
    const type = jsonp !== undefined ? JSONP_TYPE : defaultContentType;
    if (type) headers.push('Content-Type', type);
    if (jsonp !== undefined) headers.push('X-Content-Type-Options', 'nosniff');
    headers.push('Content-Length', String(body.length));
    this.res.writeHead(200, headers);
    this.res.end(body);
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
    // res 'close', not req 'close': since Node 16 req closes when its body is read. Emitted once.
    this.res.on('close', listener);
  }
}
