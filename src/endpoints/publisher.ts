/**
 * The publisher endpoint (rev 2.23 §3.2): POST publishes (201 if a waiting subscriber got it, else
 * 202), PUT creates (200), GET answers channel info (200/404), DELETE deletes (200/404, waiting
 * subscribers get 410). Every 2xx carries channel info. A resolver naming several channels (up to
 * 255) does each to every one of them, and the answer lists each channel's info.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { sendChannelInfo } from '../http/channel-info-response.js';
import { allowCrossOrigin, answerPreflight, PUBLISHER_CORS } from '../http/cors.js';
import { readMessageBody } from '../http/request-body.js';
import { answerError, type Middleware } from '../http/respond.js';
import { log } from '../log.js';
import type { ResolvedPublisher } from '../options.js';
import { badEventId, badIdempotencyKey, methodNotAllowed, noSuchChannel } from '../protocol/answers.js';
import type { ChannelInfo } from '../protocol/channel-info.js';
import type { NewMessage } from '../store/channel-store.js';
import { isMessageHttp, parseHttpMessage } from '../protocol/message-http.js';
import type { RelayContext } from './context.js';
import { resolveChannels } from './resolve-channels.js';
import { isPromiseLike } from '../maybe-async.js';
import type { ResolvedChannel } from '../protocol/channel-id.js';
import { formatSize } from '../protocol/units.js';

const debug = log('publisher');
const ALLOW = 'GET, POST, PUT, DELETE';

export function publisherMiddleware(relay: RelayContext, options: ResolvedPublisher): Middleware {
  // A body the budget of every body together could never hold would be refused for ever.
  if (options.maxMessageSize > relay.bodies.limit) {
    throw new TypeError(`push-relay: option "maxMessageSize" (${formatSize(options.maxMessageSize)}) is larger than the relay's "maxTotalBodies" (${formatSize(relay.bodies.limit)}); raise maxTotalBodies in createPushRelay()`);
  }
  return function pushRelayPublisher(req, res, next) {
    const method = req.method;
    if (options.allowOrigin) {
      if (method === 'OPTIONS') return answerPreflight(req, res, options.allowOrigin, PUBLISHER_CORS);
      allowCrossOrigin(req, res, options.allowOrigin, PUBLISHER_CORS);
    }
    if (method !== 'POST' && method !== 'GET' && method !== 'PUT' && method !== 'DELETE') {
      answerError(methodNotAllowed(ALLOW), req, res, next);
      return;
    }
    servePublisher(relay, options, req, res).catch((err: unknown) => {
      debug('%s %s failed: %s', method, req.url, err);
      answerError(err, req, res, next);
    });
  };
}

async function servePublisher(relay: RelayContext, options: ResolvedPublisher, req: IncomingMessage, res: ServerResponse): Promise<void> {
  relay.assertOpen();
  const resolved = resolveChannels(req, options, 'publisher');
  const channels = isPromiseLike(resolved) ? await resolved : resolved;
  relay.checkEventsChannel(channels, 'publisher', req.method);
  const store = relay.store;
  switch (req.method) {
    case 'POST':
      return publish(relay, options, req, res, channels);
    case 'PUT':
      return answerInfo(req, res, channels, (key) => store.create(key, options.rules));
    case 'GET':
      return answerInfo(req, res, channels, (key) => store.info(key));
    case 'DELETE': {
      // A body is the channel deleted message subscribers with templates get (push_stream's DELETE).
      const body = await readMessageBody(req, options.maxMessageSize, options.bodyTimeout, relay.bodies);
      const notice = body.length > 0 ? body.toString('utf8') : undefined;
      return answerInfo(req, res, channels, (key) => store.delete(key, notice));
    }
  }
}

/** POST: the message stored in every channel named, 201 when a waiting subscriber gets it, else 202. */
async function publish(relay: RelayContext, options: ResolvedPublisher, req: IncomingMessage, res: ServerResponse, channels: ResolvedChannel[]): Promise<void> {
  const headers = req.headers;
  const data = await readMessageBody(req, options.maxMessageSize, options.bodyTimeout, relay.bodies);
  // The connection is gone already (the client left, or sent more bytes than its Content-Length and
  // Node answered those 400 and closed it): no answer can reach the client, so nothing is published
  // that a retry would publish twice.
  if (connectionGone(req, res)) {
    debug('POST %s: the connection closed before the message was stored; nothing published', req.url);
    return;
  }
  const http = options.messageHttp && isMessageHttp(headers['content-type']) ? parseHttpMessage(data) : undefined;
  const message: NewMessage = {
    data: http ? http.body : data,
    contentType: http ? http.contentType : headers['content-type'],
    response: http?.head,
    eventType: headerText(headers['x-eventsource-event']) ?? headerText(headers['event-type']),
    eventId: readEventId(headers['event-id']),
    idempotencyKey: readIdempotencyKey(headers['idempotency-key']),
    distinctSecond: options.distinctSeconds,
  };
  const store = relay.store;
  // Each channel's `publish` event as soon as it is stored there (another channel may still fail).
  const publishTo = async (channel: ResolvedChannel) => {
    const result = await store.publish(channel.key, message, options.rules);
    if (!result.duplicate) relay.published(channel.id, result.message);
    return result;
  };
  const results = channels.length === 1 ? [await publishTo(channels[0]!)] : await Promise.all(channels.map(publishTo));
  let replayed = true;
  let delivered = false;
  for (const result of results) {
    if (result.duplicate) continue;
    replayed = false;
    delivered ||= result.info.subscribers > 0;
  }
  // A retry of a publish that is still stored: nothing published now (the IETF draft's replay header).
  if (replayed) res.setHeader('Idempotent-Replayed', 'true');
  // 201 vs 202 needs only the count of waiting subscribers; fan-out happens after this answer.
  const info = channels.length === 1 ? results[0]!.info : channels.map((c, i) => ({ channel: c.id, info: results[i]!.info }));
  sendChannelInfo(req, res, delivered ? 201 : 202, info, !options.channelInfoOnPublish);
}

/** True when nothing written to `res` can reach the client any more. */
function connectionGone(req: IncomingMessage, res: ServerResponse): boolean {
  // HTTP/2 streams share their session's socket: only the response itself tells there.
  return res.destroyed || (req.httpVersionMajor < 2 && req.socket?.destroyed === true);
}

/** One channel answers its info; several answer a list naming each that exists (404 if none does). */
async function answerInfo(req: IncomingMessage, res: ServerResponse, channels: ResolvedChannel[], each: (key: string) => Promise<ChannelInfo | undefined>): Promise<void> {
  const infos = channels.length === 1 ? [await each(channels[0]!.key)] : await Promise.all(channels.map((c) => each(c.key)));
  const found = channels.flatMap((c, i) => (infos[i] ? [{ channel: c.id, info: infos[i] }] : []));
  if (found.length === 0) throw noSuchChannel();
  sendChannelInfo(req, res, 200, channels.length === 1 ? found[0]!.info : found);
}

/** A header given once, as text; undefined when absent or empty. */
function headerText(value: string | string[] | undefined): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** The `Event-Id` request header: at most 255 characters. */
function readEventId(value: string | string[] | undefined): string | undefined {
  if (value === undefined || value === '') return undefined;
  if (typeof value !== 'string' || value.length > 255) throw badEventId();
  return value;
}

/** The `Idempotency-Key` request header: at most 255 visible ASCII characters. */
function readIdempotencyKey(value: string | string[] | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !/^[\x21-\x7e]{1,255}$/.test(value)) throw badIdempotencyKey();
  return value;
}
