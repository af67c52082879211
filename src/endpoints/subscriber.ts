/**
 * The subscriber endpoint (rev 2.23 §3.1): GET only. Resolves and authorizes the channels, reads
 * where the client resumes, then hands the request to its transport: a poll is answered from the
 * store at once when a message is there, else every transport waits as a subscription.
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { allowCrossOrigin, answerPreflight, originAllowed, SUBSCRIBER_CORS } from '../http/cors.js';
import { answerError, type Middleware } from '../http/respond.js';
import { log } from '../log.js';
import { queryArgument, type ResolvedPublisher, type ResolvedSubscriber } from '../options.js';
import { badJsonpCallback, methodNotAllowed, originNotAllowed, retryableEnding, tooManyWildcardChannelsInRequest } from '../protocol/answers.js';
import { positionText, publisherEventId, readPosition, type Cursors } from '../protocol/position.js';
import { Templates, validCallback } from '../protocol/templates.js';
import type { ChannelStore } from '../store/channel-store.js';
import { chooseTransport, type StreamTransport, type SubscriberMode } from '../protocol/transport-choice.js';
import { backtrack, startPosition } from '../subscriptions/start-position.js';
import { Subscription, type SubscriptionSettings } from '../subscriptions/subscription.js';
import { ChunkedStream } from '../transports/chunked.js';
import { EventSourceStream } from '../transports/eventsource.js';
import type { HttpStream } from '../transports/http-stream.js';
import { LongPoll, type PollSettings } from '../transports/long-poll.js';
import { MultipartStream } from '../transports/multipart.js';
import { RawStream } from '../transports/raw-stream.js';
import type { TransportSettings } from '../transports/transport.js';
import { enableTcpKeepAlive } from '../http/tcp-keep-alive.js';
import { acceptUpgrade, WebSocketTransport } from '../transports/websocket.js';
import type { PendingUpgrade } from '../http/upgrade.js';
import { isPromiseLike, type MaybePromise } from '../maybe-async.js';
import type { Presence } from '../subscriptions/presence.js';
import { webSocketPublisher } from './websocket-publish.js';
import type { RelayContext } from './context.js';
import { resolveChannels } from './resolve-channels.js';
import { isWildcardKey, type ResolvedChannel } from '../protocol/channel-id.js';
import { wildcardPrefixOf } from '../statistics/collect.js';

const debug = log('subscriber');

const STREAMS: Record<StreamTransport, new (res: ServerResponse, settings: TransportSettings) => HttpStream> = {
  eventsource: EventSourceStream,
  chunked: ChunkedStream,
  multipart: MultipartStream,
  'raw-stream': RawStream,
};

interface Endpoint {
  readonly context: RelayContext;
  readonly options: ResolvedSubscriber;
  readonly subscription: SubscriptionSettings;
  readonly transport: TransportSettings;
  readonly templates: Templates | undefined;
  /** How this endpoint's polls answer (a request naming a JSONP callback gets its own copy). */
  readonly poll: PollSettings;
  /** How WebSocket subscribers' messages are stored (the relay's publisher settings), with websocketPublish. */
  readonly publishing: ResolvedPublisher;
}

export function subscriberMiddleware(context: RelayContext, options: ResolvedSubscriber, publishing: ResolvedPublisher): Middleware {
  const templates = Templates.from(options.templates);
  const endpoint: Endpoint = {
    context,
    options,
    templates,
    publishing,
    subscription: {
      join: {
        concurrency: options.concurrency,
        maxSubscribers: options.maxChannelSubscribers,
        create: !options.authorizedChannelsOnly,
        channelTimeout: options.channelTimeout,
        wildcardPrefix: wildcardPrefixOf(context.store),
      },
      timeout: options.subscriberTimeout,
      deletesReceived: options.deleteOldestReceivedMessage,
      counters: context.counters,
    },
    transport: {
      defaultContentType: options.defaultContentType,
      pingInterval: options.pingInterval,
      backlog: context.backlog,
      maxStreamBacklog: options.maxStreamBacklog,
      templates,
    },
    poll: {
      defaultContentType: options.defaultContentType,
      browserCache: options.browserCache,
      templates,
      jsonp: undefined,
      varyOrigin: options.allowOrigin !== undefined && typeof options.allowOrigin !== 'string',
    },
  };
  return function pushRelaySubscriber(req, res, next) {
    if (options.allowOrigin) {
      if (req.method === 'OPTIONS') return answerPreflight(req, res, options.allowOrigin, SUBSCRIBER_CORS);
      allowCrossOrigin(req, res, options.allowOrigin, SUBSCRIBER_CORS);
    }
    // HEAD too: Express routes it to GET handlers, the protocol allows GET only.
    if (req.method !== 'GET') {
      answerError(methodNotAllowed('GET'), req, res, next);
      return;
    }
    const request = new SubscriberRequest(endpoint, req, res, next);
    try {
      const served = request.serve();
      if (served) served.catch((err: unknown) => request.fail(err));
    } catch (err) {
      request.fail(err);
    }
  };
}

/**
 * One subscriber request, from its headers to its subscription. Each step runs at once when it can:
 * only a resolver or authorize hook that returns a Promise, or a store that must be asked where a
 * first request starts, makes it wait.
 */
class SubscriberRequest {
  /** Read once: under Express, `req.headers` is a getter found through a swapped prototype chain. */
  readonly headers: IncomingHttpHeaders;
  readonly mechanism: SubscriberMode;
  readonly polls: boolean;
  #subscription: Subscription | undefined;
  #present: Presence | undefined;

  constructor(
    readonly endpoint: Endpoint,
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    readonly next: ((err?: unknown) => void) | undefined,
  ) {
    this.headers = req.headers;
    this.mechanism = chooseTransport(this.headers, endpoint.options.mode);
    this.polls = this.mechanism === 'long-poll' || this.mechanism === 'interval-poll';
  }

  serve(): MaybePromise<void> {
    const { context, options } = this.endpoint;
    const req = this.req;
    const upgrade = this.mechanism === 'websocket' ? acceptUpgrade(req) : undefined;
    if (upgrade && options.allowOrigin && !originAllowed(options.allowOrigin, this.headers.origin, req)) throw originNotAllowed(this.headers.origin!);
    context.assertOpen();
    const jsonp = this.polls ? jsonpCallback(req.url, options.jsonpCallback) : undefined;
    const channels = resolveChannels(req, options, 'subscriber');
    if (isPromiseLike(channels)) return Promise.resolve(channels).then((resolved) => this.#position(resolved, upgrade, jsonp));
    return this.#position(channels, upgrade, jsonp);
  }

  /** Where the client resumes: its cursor, else (asking the store when a policy needs it) where a first request starts. */
  #position(channels: ResolvedChannel[], upgrade: PendingUpgrade | undefined, jsonp: string | undefined): MaybePromise<void> {
    const { context, options, subscription: settings } = this.endpoint;
    const req = this.req;
    const headers = this.headers;
    context.checkEventsChannel(channels, 'subscriber', req.method);
    if (options.wildcardChannelMaxQtd !== undefined) checkWildcards(channels, settings.join.wildcardPrefix, options.wildcardChannelMaxQtd);
    const args = options.cursorArguments;
    const resumeFrom = readPosition(headers, req.url, !this.polls, channels.length, args);
    if (resumeFrom) return this.#subscribe(channels, resumeFrom, true, upgrade, jsonp);
    const eventId = context.store.findEventId ? publisherEventId(headers, req.url, args) : undefined;
    if (eventId === undefined && options.subscriberFirstMessage === 'oldest' && !channels.some((c) => c.backtrack !== undefined)) {
      return this.#subscribe(channels, channels.map(() => undefined), false, upgrade, jsonp);
    }
    return this.#firstPosition(channels, eventId).then(([cursors, resumed]) => this.#subscribe(channels, cursors, resumed, upgrade, jsonp));
  }

  async #firstPosition(channels: ResolvedChannel[], eventId: string | undefined): Promise<[Cursors, boolean]> {
    const { context, options } = this.endpoint;
    const store = context.store;
    const resumeFrom = eventId !== undefined ? await eventIdPosition(store, channels, eventId) : undefined;
    if (resumeFrom) return [resumeFrom, true];
    const cursors = await startPosition(store, channels, options.subscriberFirstMessage);
    // A backtrack starts a subscription; a request that names its position (a re-poll, an EventSource
    // reconnecting with Last-Event-ID, both sent to the same backtracking URL) resumes from there.
    return [channels.some((c) => c.backtrack !== undefined) ? await backtrack(store, channels, cursors) : cursors, false];
  }

  #subscribe(channels: ResolvedChannel[], cursors: Cursors, resumed: boolean, upgrade: PendingUpgrade | undefined, jsonp: string | undefined): MaybePromise<void> {
    const { context, options, subscription: settings, templates } = this.endpoint;
    const req = this.req;
    const subscription = new Subscription(context.parked, channels, cursors, resumed, settings);
    this.#subscription = subscription;
    enableTcpKeepAlive(req, options.tcpKeepAlive);

    const presence = context.presence;
    // A poll's lineage: the position it names ('' for none), which its previous answer handed it.
    const lineage = this.polls && presence.tracking ? ((resumed && positionText(cursors)) || '') : undefined;
    const present = presence.arrive(channels, this.mechanism, req, options.presenceKey?.(req), lineage);
    this.#present = present;
    let started: MaybePromise<void>;
    try {
      if (this.polls) {
        const poll = new LongPoll(this.res, jsonp === undefined ? this.endpoint.poll : { ...this.endpoint.poll, jsonp });
        poll.onClose(this.#depart);
        started = subscription.poll(poll, this.mechanism === 'interval-poll', options.authorizedChannelsOnly);
        // Answered (now, or once a message comes): departed before the client can come back with its next poll.
        if (!isPromiseLike(started)) return this.#started(poll);
        return Promise.resolve(started).then(
          () => this.#started(poll),
          (err: unknown) => this.#refused(err),
        );
      }
      const padding = templates?.paddingFor(this.headers['user-agent']);
      const transportSettings = padding ? { ...this.endpoint.transport, padding } : this.endpoint.transport;
      const transport = upgrade
        ? new WebSocketTransport(req, this.res, upgrade, transportSettings, options.websocketPublish ? webSocketPublisher(this.endpoint, req, channels) : undefined)
        : new STREAMS[this.mechanism as StreamTransport](this.res, transportSettings);
      transport.onClose(this.#depart);
      started = subscription.stream(transport);
    } catch (err) {
      this.#depart();
      throw err;
    }
    return started.then(
      () => this.#started(undefined),
      (err: unknown) => this.#refused(err),
    );
  }

  /** Waiting, streaming or answered: announced, and revocable by relay.disconnect(). */
  #started(poll: LongPoll | undefined): void {
    const present = this.#present!;
    this.endpoint.context.presence.accept(present);
    poll?.onAnswered(this.#depart);
    present.open = this.#subscription;
  }

  /** Refused on the way (403, 409, the store down): gone, and the error goes on to be answered. */
  #refused(err: unknown): never {
    this.#depart();
    throw err;
  }

  readonly #depart = (): void => {
    const presence = this.endpoint.context.presence;
    presence.depart(this.#present!, presence.tracking ? (positionText(this.#subscription!.cursors) ?? '') : undefined);
  };

  /** Answers what went wrong (an HTTP error, or a stream that ends at once when a retry can cure it). */
  fail(err: unknown): void {
    const { req, res, endpoint } = this;
    debug('GET %s failed: %s', req.url, err);
    // An HTTP error would stop a browser's EventSource for good: a refusal a retry can cure goes
    // as a stream that ends at once, with a reconnection hint.
    const retry = retryableEnding(err);
    if (retry && !res.headersSent && this.mechanism === 'eventsource') {
      new EventSourceStream(res, endpoint.transport).end(retry, undefined);
      return;
    }
    answerError(err, req, res, this.next);
  }
}

/**
 * Where a request without a cursor resumes when its `Last-Event-ID` names a publisher's `Event-Id`:
 * after that message on each channel that stores it (a channel that does not starts as without a
 * cursor). undefined: no channel stores it.
 */
async function eventIdPosition(store: ChannelStore, channels: readonly ResolvedChannel[], eventId: string): Promise<Cursors | undefined> {
  const found = await Promise.all(channels.map((c) => store.findEventId!(c.key, eventId)));
  return found.some((id) => id !== undefined) ? found : undefined;
}

/** The JSONP callback a poll names (validated: 400 unless a dotted JavaScript name), or undefined. */
function jsonpCallback(url: string | undefined, argument: string | undefined): string | undefined {
  if (!argument || !url) return undefined;
  const q = url.indexOf('?');
  if (q < 0) return undefined;
  const name = queryArgument(url, q + 1, argument);
  if (name === undefined || name === '') return undefined;
  if (!validCallback(name)) throw badJsonpCallback();
  return name;
}

/** push_stream_wildcard_channel_max_qtd: at most `max` wildcard channels, and never only those (403). */
function checkWildcards(channels: readonly ResolvedChannel[], prefix: string | undefined, max: number): void {
  let wildcards = 0;
  for (const c of channels) if (isWildcardKey(c.key, prefix)) wildcards++;
  if (wildcards > max || (wildcards > 0 && wildcards === channels.length)) throw tooManyWildcardChannelsInRequest(max);
}
