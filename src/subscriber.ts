/**
 * The subscriber endpoint (rev 2.23 §3.1): GET only; answers the first message after the request's
 * cursor at once, or waits for it (long-poll) or answers 304 (interval-poll).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { resolveChannels } from './channel-id.js';
import { missedBefore, readCursor } from './cursor.js';
import { firstCursor } from './first-message.js';
import { allowCrossOrigin, answerPreflight, SUBSCRIBER_CORS } from './http/cors.js';
import { sendMessage } from './http/message-response.js';
import { methodNotAllowed, protocolError } from './http/protocol-error.js';
import { answerError, sendNotModified } from './http/respond.js';
import { log } from './log.js';
import { serveMultiplexed } from './multiplex.js';
import type { ResolvedSubscriber } from './options.js';
import type { Middleware } from './publisher.js';
import type { JoinOptions } from './parked-subscribers.js';
import type { RelayCore } from './relay-core.js';
import { LongPollSubscriber } from './transports/long-poll.js';
import { isStream, selectTransport } from './transports/select-transport.js';
import { serveStream } from './transports/serve-stream.js';
import { serveWebSocket } from './transports/websocket.js';

const debug = log('subscriber');

export function subscriberMiddleware(relay: RelayCore, options: ResolvedSubscriber): Middleware {
  const join: JoinOptions = {
    concurrency: options.concurrency,
    maxSubscribers: options.maxChannelSubscribers,
    create: !options.authorizedChannelsOnly,
    channelTimeout: options.channelTimeout,
  };
  return function pushRelaySubscriber(req, res, next) {
    if (options.allowOrigin) {
      if (req.method === 'OPTIONS') return answerPreflight(req, res, options.allowOrigin, SUBSCRIBER_CORS);
      allowCrossOrigin(res, options.allowOrigin, SUBSCRIBER_CORS);
    }
    // HEAD too: Express routes it to GET handlers, the protocol allows GET only.
    if (req.method !== 'GET') {
      answerError(methodNotAllowed('GET'), req, res, next);
      return;
    }
    serveSubscriber(relay, options, join, req, res).catch((err: unknown) => {
      debug('GET %s failed: %s', req.url, err);
      answerError(err, req, res, next);
    });
  };
}

async function serveSubscriber(
  relay: RelayCore,
  options: ResolvedSubscriber,
  join: JoinOptions,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  relay.assertOpen();
  // Read once: under Express, `req.headers` is a getter found through a swapped prototype chain.
  const headers = req.headers;
  const transport = selectTransport(headers, options.mode);
  if (transport === 'websocket') return serveWebSocket(relay, options, req, res);
  const channel = await resolveChannels(req, options, 'subscriber');
  if (Array.isArray(channel)) return serveMultiplexed(relay, options, transport, channel, req, res);
  const { key } = channel;
  if (isStream(transport)) return serveStream(relay, options, transport, key, req, res);
  const resumeFrom = readCursor(headers['if-modified-since'], headers['if-none-match']);
  const policy = options.subscriberFirstMessage;
  const cursor = resumeFrom ?? (policy === 'oldest' ? undefined : await firstCursor(relay.store, key, policy));
  const mark = relay.parked.mark(key);
  const { exists, message } = await relay.store.next(key, cursor);
  if (!exists && options.authorizedChannelsOnly) {
    throw protocolError(403, 'push-relay: channel does not exist (authorizedChannelsOnly)', 'channel.missing');
  }
  if (message) {
    sendMessage(res, message, options.defaultContentType, missedBefore(resumeFrom, message));
    if (options.deleteOldestReceivedMessage) await relay.store.received(key, message.id);
    return;
  }
  if (options.mode === 'interval-poll') {
    sendNotModified(res, cursor);
    return;
  }
  if (res.destroyed) return; // the client left meanwhile
  const parked = relay.parked;
  const subscriber = new LongPollSubscriber(
    parked.newId(),
    key,
    cursor,
    res,
    options.defaultContentType,
    options.deleteOldestReceivedMessage,
    resumeFrom !== undefined,
  );
  // res 'close', not req 'close': since Node 16 req closes when its body is read (SPEC "Pitfalls").
  res.on('close', () => {
    subscriber.gone = true;
    parked.remove(subscriber);
  });
  await parked.park(subscriber, join, options.subscriberTimeout, mark);
}
