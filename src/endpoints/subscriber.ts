/**
 * The subscriber endpoint (rev 2.23 §3.1): GET only. Resolves and authorizes the channels, reads
 * where the client resumes, then hands the request to its transport: a poll is answered from the
 * store at once when a message is there, else every transport waits as a subscription.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { allowCrossOrigin, answerPreflight, originAllowed, SUBSCRIBER_CORS } from '../http/cors.js';
import { answerError, type Middleware } from '../http/respond.js';
import { log } from '../log.js';
import { queryArgument, type ResolvedPublisher, type ResolvedSubscriber } from '../options.js';
import { badJsonpCallback, methodNotAllowed, originNotAllowed, retryableEnding, tooManyWildcardChannelsInRequest } from '../protocol/answers.js';
import { positionText, publisherEventId, readPosition, type Cursors } from '../protocol/position.js';
import { Templates, validCallback } from '../protocol/templates.js';
import type { ChannelStore } from '../store/channel-store.js';
import { chooseTransport, type StreamTransport } from '../protocol/transport-choice.js';
import { backtrack, startPosition } from '../subscriptions/start-position.js';
import { Subscription, type SubscriptionSettings } from '../subscriptions/subscription.js';
import { ChunkedStream } from '../transports/chunked.js';
import { EventSourceStream } from '../transports/eventsource.js';
import type { HttpStream } from '../transports/http-stream.js';
import { LongPoll } from '../transports/long-poll.js';
import { MultipartStream } from '../transports/multipart.js';
import { RawStream } from '../transports/raw-stream.js';
import type { TransportSettings } from '../transports/transport.js';
import { enableTcpKeepAlive } from '../http/tcp-keep-alive.js';
import { acceptUpgrade, WebSocketTransport } from '../transports/websocket.js';
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
    serveSubscriber(endpoint, req, res).catch((err: unknown) => {
      debug('GET %s failed: %s', req.url, err);
      // An HTTP error would stop a browser's EventSource for good: a refusal a retry can cure goes
      // as a stream that ends at once, with a reconnection hint.
      const retry = retryableEnding(err);
      if (retry && !res.headersSent && chooseTransport(req.headers, options.mode) === 'eventsource') {
        new EventSourceStream(res, endpoint.transport).end(retry, undefined);
        return;
      }
      answerError(err, req, res, next);
    });
  };
}

async function serveSubscriber(endpoint: Endpoint, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const { context, options, subscription: settings, templates } = endpoint;
  // Read once: under Express, `req.headers` is a getter found through a swapped prototype chain.
  const headers = req.headers;
  const mechanism = chooseTransport(headers, options.mode);
  const upgrade = mechanism === 'websocket' ? acceptUpgrade(req) : undefined;
  if (upgrade && options.allowOrigin && !originAllowed(options.allowOrigin, headers.origin, req)) throw originNotAllowed(headers.origin!);
  context.assertOpen();
  const polls = mechanism === 'long-poll' || mechanism === 'interval-poll';
  const jsonp = polls ? jsonpCallback(req.url, options.jsonpCallback) : undefined;
  const channels = await resolveChannels(req, options, 'subscriber');
  context.checkEventsChannel(channels, 'subscriber', req.method);
  if (options.wildcardChannelMaxQtd !== undefined) checkWildcards(channels, settings.join.wildcardPrefix, options.wildcardChannelMaxQtd);
  const args = options.cursorArguments;
  let resumeFrom = readPosition(headers, req.url, !polls, channels.length, args);
  const eventId = !resumeFrom && context.store.findEventId ? publisherEventId(headers, req.url, args) : undefined;
  if (eventId !== undefined) resumeFrom = await eventIdPosition(context.store, channels, eventId);
  let cursors = resumeFrom ?? (await startPosition(context.store, channels, options.subscriberFirstMessage));
  // A backtrack starts a subscription; a request that names its position (a re-poll, an EventSource
  // reconnecting with Last-Event-ID, both sent to the same backtracking URL) resumes from there.
  if (!resumeFrom && channels.some((c) => c.backtrack !== undefined)) cursors = await backtrack(context.store, channels, cursors);
  const subscription = new Subscription(context.parked, channels, cursors, resumeFrom !== undefined, settings);
  enableTcpKeepAlive(req, options.tcpKeepAlive);

  const presence = context.presence;
  const tracking = presence.tracking;
  const present = presence.arrive(
    channels,
    mechanism,
    req,
    options.presenceKey?.(req),
    // A poll's lineage: the position it names ('' for none), which its previous answer handed it.
    polls && tracking ? ((resumeFrom && positionText(resumeFrom)) ?? '') : undefined,
  );
  const depart = () => presence.depart(present, presence.tracking ? (positionText(subscription.cursors) ?? '') : undefined);
  try {
    if (polls) {
      const poll = new LongPoll(res, { defaultContentType: options.defaultContentType, browserCache: options.browserCache, templates, jsonp, varyOrigin: options.allowOrigin !== undefined && typeof options.allowOrigin !== 'string' });
      poll.onClose(depart);
      await subscription.poll(poll, mechanism === 'interval-poll', options.authorizedChannelsOnly);
      presence.accept(present);
      // Answered (now, or once a message comes): departed before the client can come back with its next poll.
      poll.onAnswered(depart);
    } else {
      const padding = templates?.paddingFor(headers['user-agent']);
      const transportSettings = padding ? { ...endpoint.transport, padding } : endpoint.transport;
      const transport = upgrade
        ? new WebSocketTransport(req, res, upgrade, transportSettings, options.websocketPublish ? webSocketPublisher(endpoint, req, channels) : undefined)
        : new STREAMS[mechanism as StreamTransport](res, transportSettings);
      transport.onClose(depart);
      await subscription.stream(transport);
      presence.accept(present);
    }
  } catch (err) {
    depart();
    throw err;
  }
  present.revoke = () => subscription.revoke();
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
