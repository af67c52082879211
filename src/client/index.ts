/**
 * `push-relay/client`: subscribe to a push-relay (or Nchan) channel from a browser or from Node, over
 * WebSocket, EventSource or long-poll, with one position kept across reconnects, transport switches,
 * page reloads (`persist`) and tabs (`shareAcrossTabs`). No dependencies. See docs/client.md.
 */
import { eventSource } from './eventsource.js';
import { longPoll } from './long-poll.js';
import { shareAcrossTabs, type Tabs } from './tabs.js';
import { webSocket } from './websocket.js';
import { idEntries, isAfter, type Connect, type Connection, type End, type Missed, type Sink, type WebSocketClass, type WireMeta } from './wire.js';

export type { End, EndReason, WebSocketClass, WebSocketLike } from './wire.js';

export type TransportName = 'websocket' | 'eventsource' | 'long-poll';

export interface SubscribeOptions {
  /** Tried in this order; the first that opens is kept. @default ['websocket', 'eventsource', 'long-poll'] */
  transports?: TransportName[];
  /** The channel ids the URL subscribes to, in the order the server's resolver lists them: names each message's `channel`. */
  channels?: string[];
  /** Resume after this message id (`time:tag`, or a composite id), as if it had been received. */
  lastId?: string;
  /** Keep the last id in sessionStorage or localStorage, so that a reloaded page resumes. @default 'none' */
  persist?: 'none' | 'session' | 'local';
  /** Request headers for EventSource and long-poll (a browser's WebSocket cannot send any). */
  headers?: Record<string, string>;
  /** Send cookies cross-origin. @default false */
  withCredentials?: boolean;
  /** One connection for all tabs of the origin (Web Locks + BroadcastChannel). @default false */
  shareAcrossTabs?: boolean;
  /** Reconnect back-off (ms): full jitter, `initial` doubled per failure up to `max`. @default { initial: 1000, max: 30000 } */
  backoff?: { initial?: number; max?: number };
  /** An event stream silent this long (ms; not even a ping) is taken for dead and reopened; 0: never. @default 70000 */
  idleTimeout?: number;
  /** The WebSocket class where there is no global one (Node 20: `import { WebSocket } from 'ws'`). */
  WebSocket?: WebSocketClass;
}

export interface MessageMeta extends WireMeta {
  /** The channel the message came from (from `channels`, else the URL's `id` argument). */
  channel: string | undefined;
  transport: TransportName;
}
export interface Message extends MessageMeta {
  data: string | Uint8Array;
}
export interface MissedInfo extends Missed {
  channel: string | undefined;
  transport: TransportName;
}
export type State = 'connecting' | 'open' | 'reconnecting' | 'closed';
export interface Status {
  state: State;
  transport: TransportName | undefined;
}

export interface SubscriptionEvents {
  message: (data: string | Uint8Array, meta: MessageMeta) => void;
  missed: (info: MissedInfo) => void;
  end: (end: End) => void;
  status: (status: Status) => void;
  error: (error: unknown) => void;
}

interface Storage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
}

const TRANSPORTS: Record<TransportName, (c: Connect, sink: Sink) => Connection | undefined> = {
  websocket: webSocket,
  eventsource: eventSource,
  'long-poll': longPoll,
};
/** A connection that has neither opened nor failed by then is given up (a proxy holding it). */
const OPEN_TIMEOUT = 10_000;
/** Open this long (or a message received): the connection counts as good, and the back-off starts over. */
const STABLE = 5000;
/** What a leader tab keeps for tabs that join late. */
const TAB_BUFFER = 100;
const MAX_DELAY = 2_147_483_647;

type Broadcast =
  | { t: 'm'; m: Message; missed: MissedInfo | undefined }
  | { t: 's'; s: Status }
  | { t: 'e'; e: End }
  /** A tab joined: the leader answers with its status and what it received after `after`. */
  | { t: 'hello'; after: string | undefined; tab: string }
  | { t: 'catchup'; tab: string; messages: Message[]; missed: boolean };

export class Subscription implements AsyncIterable<Message> {
  readonly url: string;
  #options: SubscribeOptions;
  #order: TransportName[];
  #listeners: Partial<Record<keyof SubscriptionEvents, Set<(...args: never[]) => void>>> = {};
  #lastId: string | undefined;
  #storage: Storage | undefined;
  #key: string;
  #kept = 0;
  #current = 0;
  #tried = 0;
  #attempt = 0;
  #connection: Connection | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #openTimer: ReturnType<typeof setTimeout> | undefined;
  #stableTimer: ReturnType<typeof setTimeout> | undefined;
  #state: State | undefined;
  #tabs: Tabs | undefined;
  #tab = Math.random().toString(36).slice(2);
  /** A leader's last messages, for tabs that join late. */
  #recent: Message[] = [];
  /** A follower waiting for the leader's catch-up: live messages wait here, so none comes before older ones. */
  #waiting: Array<[Message, MissedInfo | undefined]> | undefined;
  #waitTimer: ReturnType<typeof setTimeout> | undefined;
  #leader = false;
  #done = false;

  constructor(url: string, options: SubscribeOptions = {}) {
    const base = (globalThis as { location?: { href: string } }).location?.href;
    if (base === undefined && !URL.canParse(url)) {
      throw new TypeError(`push-relay/client: "${url}" is not an absolute URL, and there is no page to resolve it against (outside a browser, pass one such as "http://localhost:8080${url.startsWith('/') ? url : '/'}")`);
    }
    this.url = new URL(url, base).href;
    this.#options = options;
    this.#order = options.transports ?? ['websocket', 'eventsource', 'long-poll'];
    for (const t of this.#order) if (!TRANSPORTS[t]) throw new TypeError(`push-relay/client: unknown transport "${t}" (websocket, eventsource, long-poll)`);
    if (this.#order.length === 0) throw new TypeError('push-relay/client: transports is empty');
    this.#key = `push-relay:${this.url}`;
    const persist = options.persist ?? 'none';
    try {
      if (persist !== 'none') this.#storage = (globalThis as Record<string, unknown>)[persist === 'local' ? 'localStorage' : 'sessionStorage'] as Storage | undefined;
      this.#lastId = options.lastId ?? this.#storage?.getItem(this.#key) ?? undefined;
    } catch {
      // Storage refused (a sandboxed frame): no resume across reloads, the rest works.
      this.#storage = undefined;
      this.#lastId = options.lastId;
    }
    // Listeners attach after subscribe() returns: start on the next tick.
    setTimeout(() => this.#start(), 0);
  }

  /** The id of the last message received: give it as `lastId` to resume elsewhere. */
  get lastId(): string | undefined {
    return this.#lastId;
  }

  on<K extends keyof SubscriptionEvents>(type: K, listener: SubscriptionEvents[K]): this {
    (this.#listeners[type] ??= new Set()).add(listener);
    return this;
  }

  off<K extends keyof SubscriptionEvents>(type: K, listener: SubscriptionEvents[K]): this {
    this.#listeners[type]?.delete(listener);
    return this;
  }

  /** Stops for good: closes the connection, hands the tabs' connection to another tab. */
  close(): void {
    if (this.#done) return;
    this.#done = true;
    clearTimeout(this.#timer);
    clearTimeout(this.#openTimer);
    clearTimeout(this.#stableTimer);
    clearTimeout(this.#waitTimer);
    this.#connection?.close();
    this.#connection = undefined;
    this.#tabs?.close();
    this.#status('closed');
  }

  /** `for await (const message of subscription)`: ends when the subscription closes or ends; leaving the loop closes it. */
  async *[Symbol.asyncIterator](): AsyncGenerator<Message> {
    const queue: Message[] = [];
    let wake: (() => void) | undefined;
    const push = (data: string | Uint8Array, meta: MessageMeta) => {
      queue.push({ ...meta, data });
      wake?.();
    };
    const stop = ({ state }: Status) => state === 'closed' && wake?.();
    this.on('message', push).on('status', stop);
    try {
      for (;;) {
        const next = queue.shift();
        if (next) yield next;
        else if (this.#done) return;
        else await new Promise<void>((resolve) => (wake = resolve));
      }
    } finally {
      this.off('message', push).off('status', stop);
      this.close();
    }
  }

  #emit<K extends keyof SubscriptionEvents>(type: K, ...args: Parameters<SubscriptionEvents[K]>): void {
    for (const listener of this.#listeners[type] ?? []) {
      try {
        (listener as (...a: unknown[]) => void)(...args);
      } catch (err) {
        // A listener's bug must not stop delivery; it still surfaces.
        if (type !== 'error' && this.#listeners.error?.size) this.#emit('error', err);
        else
          setTimeout(() => {
            throw err;
          });
      }
    }
  }

  #post(b: Broadcast): void {
    try {
      this.#tabs?.post(b);
    } catch {
      // The channel closed under us (this tab is closing).
    }
  }

  #status(state: State, transport = this.#order[this.#current]): void {
    if (state === this.#state && state !== 'open') return;
    this.#state = state;
    const status = { state, transport };
    this.#emit('status', status);
    if (this.#leader && state !== 'closed') this.#post({ t: 's', s: status });
  }

  #start(): void {
    if (this.#done) return;
    this.#status('connecting');
    if (this.#options.shareAcrossTabs) {
      const { headers, withCredentials, transports } = this.#options;
      // Tabs share a connection only when it would be the same connection.
      const name = `${this.#key}|${JSON.stringify([headers ?? {}, withCredentials ?? false, transports ?? []])}`;
      this.#tabs = shareAcrossTabs(name, () => this.#lead(), (b) => this.#hear(b as Broadcast));
      if (this.#tabs) {
        this.#waiting = [];
        // No answer (no leader yet, it is being elected): go on with what comes.
        this.#waitTimer = setTimeout(() => this.#caughtUp([]), 1000);
        return this.#post({ t: 'hello', after: this.#lastId, tab: this.#tab });
      }
    }
    this.#lead();
  }

  #lead(): void {
    if (this.#done) return;
    this.#leader = true;
    this.#caughtUp([]);
    this.#connect();
  }

  /** The catch-up is in (or will not come): it first, then what arrived meanwhile. */
  #caughtUp(messages: Array<[Message, MissedInfo | undefined]>): void {
    clearTimeout(this.#waitTimer);
    const waiting = this.#waiting;
    this.#waiting = undefined;
    for (const [m, missed] of [...messages, ...(waiting ?? [])]) this.#follow(m, missed);
  }

  /** What the other tabs say: to a leader, a tab that joined; to a follower, what the leader received. */
  #hear(b: Broadcast): void {
    if (this.#done) return;
    if (this.#leader) {
      if (b.t !== 'hello') return;
      if (this.#state) this.#post({ t: 's', s: { state: this.#state, transport: this.#order[this.#current] } });
      const after = b.after;
      const messages = after === undefined ? this.#recent : this.#recent.filter((m) => m.id !== undefined && isAfter(m.id, after));
      // Behind what this tab still holds (its last TAB_BUFFER messages, since it took over): a loss for that tab.
      const missed = after !== undefined && after !== this.#lastId && this.#lastId !== undefined && isAfter(this.#lastId, after) && !this.#recent.some((m) => m.id === after);
      return this.#post({ t: 'catchup', tab: b.tab, messages, missed });
    }
    if (b.t === 's') return this.#status(b.s.state, b.s.transport);
    if (b.t === 'e') return this.#end(b.e);
    if (b.t === 'm') {
      if (this.#waiting) this.#waiting.push([b.m, b.missed]);
      else this.#follow(b.m, b.missed);
      return;
    }
    if (b.t === 'catchup' && b.tab === this.#tab && this.#waiting) {
      this.#caughtUp(b.messages.map((m, i) => [m, b.missed && i === 0 ? { after: this.#lastId, next: m.id, channel: m.channel, transport: m.transport } : undefined]));
    }
  }

  #follow(m: Message, missed: MissedInfo | undefined): void {
    // A signalled message not after this tab's id: the leader took it the same way (see #deliver); the
    // same message twice (its catch-up and its broadcast crossing) is still one.
    if (this.#done || (m.id !== undefined && !isAfter(m.id, this.#lastId) && (!missed || m.id === this.#lastId))) return;
    this.#remember(m.id);
    if (missed) this.#emit('missed', missed);
    const { data, ...meta } = m;
    if (!this.#done) this.#emit('message', data, meta);
  }

  #connect(): void {
    if (this.#done) return;
    const transport = this.#order[this.#current]!;
    let open = false;
    const live = () => this.#connection === connection && !this.#done;
    const sink: Sink = {
      opened: () => {
        if (!live() || open) return;
        open = true;
        clearTimeout(this.#openTimer);
        this.#kept = this.#current;
        this.#tried = 0;
        // Only a connection that stays up restarts the back-off (one that opens and drops at once must not).
        this.#stableTimer = setTimeout(() => (this.#attempt = 0), STABLE);
        this.#status('open', transport);
      },
      message: (data, meta, missed) => {
        if (!live()) return;
        this.#attempt = 0;
        this.#deliver(data, meta, missed, transport);
      },
      ended: (end) => {
        if (live()) this.#end(end);
      },
      dropped: (retryMs, cause, answered) => {
        if (!live()) return;
        clearTimeout(this.#openTimer);
        clearTimeout(this.#stableTimer);
        connection?.close();
        this.#connection = undefined;
        if (cause !== undefined && this.#listeners.error?.size) this.#emit('error', cause);
        if (!open && !answered && ++this.#tried < this.#order.length) {
          // This transport does not get through: the next one, at once.
          this.#current = (this.#current + 1) % this.#order.length;
          return this.#connect();
        }
        this.#tried = 0;
        this.#current = this.#kept;
        this.#status('reconnecting', transport);
        const { initial = 1000, max = 30_000 } = this.#options.backoff ?? {};
        const delay = retryMs ?? Math.random() * Math.min(max, initial * 2 ** this.#attempt);
        this.#attempt = Math.min(this.#attempt + 1, 30);
        this.#timer = setTimeout(() => this.#connect(), Math.min(delay, MAX_DELAY));
      },
    };
    let connection: Connection | undefined;
    this.#connection = connection = { close() {} };
    this.#openTimer = setTimeout(() => sink.dropped(undefined, new Error(`${transport}: no connection after ${OPEN_TIMEOUT} ms`)), OPEN_TIMEOUT);
    const connect: Connect = {
      url: this.url,
      lastId: this.#lastId,
      headers: this.#options.headers,
      withCredentials: this.#options.withCredentials ?? false,
      idleTimeout: this.#options.idleTimeout ?? 70_000,
      WebSocket: this.#options.WebSocket ?? (globalThis as { WebSocket?: WebSocketClass }).WebSocket,
    };
    const made = TRANSPORTS[transport](connect, sink);
    if (!live()) return made?.close();
    if (!made) return sink.dropped();
    Object.assign(connection, made);
  }

  #deliver(data: string | Uint8Array, wire: WireMeta, missed: Missed | undefined, transport: TransportName): void {
    const previous = this.#lastId;
    // A repeat (a server without resume, a replay after a reconnect) is not delivered twice. One that
    // carries the loss signal is no repeat: push-relay moved a position ahead of every id of the
    // channel back (a server whose clock was set back, an id from another server), and says so.
    if (wire.id !== undefined && !isAfter(wire.id, previous) && (!missed || wire.id === previous)) return;
    const meta: MessageMeta = { ...wire, channel: this.#channelOf(wire.id, previous), transport };
    const signal = missed ? { after: missed.after ?? previous, next: missed.next ?? wire.id, channel: meta.channel, transport } : undefined;
    this.#remember(wire.id);
    const message = { ...meta, data };
    if (this.#tabs) {
      this.#recent.push(message);
      if (this.#recent.length > TAB_BUFFER) this.#recent.shift();
      this.#post({ t: 'm', m: message, missed: signal });
    }
    if (signal) this.#emit('missed', signal);
    // A `missed` listener may have closed the subscription.
    if (!this.#done) this.#emit('message', data, meta);
  }

  #remember(id: string | undefined): void {
    if (id === undefined) return;
    this.#lastId = id;
    try {
      this.#storage?.setItem(this.#key, id);
    } catch {
      // Storage full or refused: resuming after a reload is best effort.
    }
  }

  /** The channel whose position moved between `previous` and `id`. */
  #channelOf(id: string | undefined, previous: string | undefined): string | undefined {
    const channels = this.#options.channels;
    if (!channels || channels.length <= 1) return channels?.[0] ?? new URL(this.url).searchParams.get('id') ?? undefined;
    if (id === undefined) return undefined;
    const now = idEntries(id);
    const before = previous ? idEntries(previous) : [];
    const moved = now.findIndex((entry, i) => entry !== '-' && entry !== before[i]);
    return moved >= 0 ? channels[moved] : undefined;
  }

  #end(end: End): void {
    if (this.#done) return;
    if (this.#leader) this.#post({ t: 'e', e: end });
    this.#emit('end', end);
    this.close();
  }
}

/** Subscribes to `url` (a push-relay subscriber endpoint, or an Nchan location). */
export function subscribe(url: string, options?: SubscribeOptions): Subscription {
  return new Subscription(url, options);
}
