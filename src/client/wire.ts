/**
 * What every client transport shares: the events a transport reports to the subscription, message
 * ids, and reading HTTP answers. No Node and no DOM imports: this runs in browsers and in Node.
 */

/** How a transport tells the subscription what happened. */
export interface Sink {
  /** The connection is up (a stream's headers, a WebSocket's open, a long-poll's first answer). */
  opened(): void;
  /** A message; `missed` when the server signals that messages before it are gone. */
  message(data: string | Uint8Array, meta: WireMeta, missed?: Missed): void;
  /** The server ended the subscription for good: no reconnect. */
  ended(end: End): void;
  /**
   * The connection went: reconnect, after `retryMs` if the server named a delay. `answered`: the
   * server answered on this transport (a 503, say), so trying another transport would not help.
   */
  dropped(retryMs?: number, cause?: unknown, answered?: boolean): void;
}

export interface WireMeta {
  id: string | undefined;
  contentType: string | undefined;
  eventType: string | undefined;
}

/** The loss signal: messages between `after` and `next` are gone (ids when the server names them). */
export interface Missed {
  after?: string | undefined;
  next?: string | undefined;
}

export type EndReason = 'deleted' | 'conflict' | 'forbidden' | 'not-found' | 'refused';

export interface End {
  reason: EndReason;
  /** The HTTP status, or the WebSocket close code. */
  status?: number | undefined;
  /** The server's own words. */
  detail?: string | undefined;
}

export interface Connect {
  url: string;
  lastId: string | undefined;
  headers: Record<string, string> | undefined;
  withCredentials: boolean;
  /** ms of silence after which an event stream is taken for dead; 0: never. */
  idleTimeout: number;
  WebSocket: WebSocketClass | undefined;
}

/**
 * An event handler property. Checked bivariantly (a method's type), so that the browser's handlers
 * and `ws`'s, each typed with its own event classes, fit.
 */
type Handler<E> = { handle(event: E): void }['handle'];

/** The part of the WHATWG WebSocket the client uses (the browser's own, or the `ws` package's in Node). */
export interface WebSocketLike {
  binaryType: string;
  readonly protocol: string;
  onopen: Handler<unknown> | null;
  onmessage: Handler<{ data: unknown }> | null;
  onclose: Handler<{ code: number; reason: string }> | null;
  onerror: Handler<unknown> | null;
  close(code?: number): void;
}
export type WebSocketClass = new (url: string, protocols?: string[]) => WebSocketLike;

/** A running connection: `close()` stops it and reports nothing more. */
export interface Connection {
  close(): void;
}

/** `url` with `last_event_id=<id>` (both push-relay and Nchan resume from it on every transport). */
export function withLastId(url: string, id: string | undefined): string {
  if (id === undefined) return url;
  return `${url}${url.includes('?') ? '&' : '?'}last_event_id=${encodeURIComponent(id)}`;
}

const TEXT = /^(text\/|application\/(json|xml|javascript|ecmascript|x-www-form-urlencoded|x-ndjson)\b|[^;]*\+(json|xml)\b)/i;

/** Whether a body of this content type is text (what the relay sends in WebSocket text frames). */
export function isTextType(contentType: string | undefined): boolean {
  return !contentType || TEXT.test(contentType.trim());
}

/** Seconds or an HTTP date -> milliseconds from now; undefined when absent or unreadable. */
export function retryAfter(value: string | null): number | undefined {
  if (!value) return undefined;
  const s = Number(value);
  const ms = Number.isFinite(s) ? s * 1000 : Date.parse(value) - Date.now();
  return Number.isFinite(ms) ? Math.max(0, ms) : undefined;
}

/** The end an HTTP refusal means, or undefined when a retry may cure it (408, 429, 5xx). */
export function endOfStatus(status: number, detail?: string): End | undefined {
  if (status === 408 || status === 429 || status >= 500 || status < 400) return undefined;
  const reason: EndReason = status === 410 ? 'deleted' : status === 409 ? 'conflict' : status === 403 || status === 401 ? 'forbidden' : status === 404 ? 'not-found' : 'refused';
  return { reason, status, detail };
}

/**
 * Per-channel positions of an id, for telling which channel a message came from: `time:tag` is one
 * channel; the relay's composite cursor `M<base>.<dt>:<tag>.-...` one `time:tag` (or `-`) per channel.
 */
export function idEntries(id: string): string[] {
  if (!id.startsWith('M')) return [id];
  const [base, ...entries] = id.slice(1).split('.');
  return entries.map((e) => (e === '-' ? e : `${Number(base) + Number(e.split(':')[0])}:${e.split(':')[1]}`));
}

/**
 * Whether id `a` comes after `b`: `time:tag` by value; composite ids channel by channel (at least one
 * position further, none behind). Ids of another form only differ or not.
 */
export function isAfter(a: string, b: string | undefined): boolean {
  if (b === undefined) return true;
  const as = idEntries(a);
  const bs = idEntries(b);
  if (as.length !== bs.length) return a !== b;
  let ahead = false;
  for (let i = 0; i < as.length; i++) {
    const order = compare(as[i]!, bs[i]!);
    if (order === undefined) return a !== b;
    if (order < 0) return false;
    if (order > 0) ahead = true;
  }
  return ahead;
}

/** `time:tag` (or `-`, nothing yet) order; undefined for anything else. */
function compare(a: string, b: string): number | undefined {
  if (a === '-' || b === '-') return a === b ? 0 : a === '-' ? -1 : 1;
  const [at = NaN, ag = NaN] = a.split(':').map(Number);
  const [bt = NaN, bg = NaN] = b.split(':').map(Number);
  if (Number.isNaN(at + ag + bt + bg)) return undefined;
  return at - bt || ag - bg;
}
