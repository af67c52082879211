/**
 * The publisher endpoint (rev 2.23 §3.2): POST publishes (201 if a waiting subscriber got it, else
 * 202), PUT creates (200), GET answers channel info (200/404), DELETE deletes (200/404, waiting
 * subscribers get 410). Every 2xx carries channel info.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { sendChannelInfo } from '../http/channel-info-response.js';
import { allowCrossOrigin, answerPreflight, PUBLISHER_CORS } from '../http/cors.js';
import { readMessageBody } from '../http/request-body.js';
import { answerError, type Middleware } from '../http/respond.js';
import { log } from '../log.js';
import type { ResolvedPublisher } from '../options.js';
import { badIdempotencyKey, methodNotAllowed, noSuchChannel } from '../protocol/answers.js';
import type { RelayContext } from './context.js';
import { resolveChannel } from './resolve-channels.js';

const debug = log('publisher');
const ALLOW = 'GET, POST, PUT, DELETE';

export function publisherMiddleware(relay: RelayContext, options: ResolvedPublisher): Middleware {
  return function pushRelayPublisher(req, res, next) {
    const method = req.method;
    if (options.allowOrigin) {
      if (method === 'OPTIONS') return answerPreflight(req, res, options.allowOrigin, PUBLISHER_CORS);
      allowCrossOrigin(res, options.allowOrigin, PUBLISHER_CORS);
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
  const channel = await resolveChannel(req, options, 'publisher');
  relay.checkEventsChannel([channel], 'publisher', req.method);
  const key = channel.key;
  const store = relay.store;
  switch (req.method) {
    case 'POST': {
      const headers = req.headers;
      const data = await readMessageBody(req, options.maxMessageSize, options.bodyTimeout);
      const eventType = headers['x-eventsource-event'];
      const idempotencyKey = readIdempotencyKey(headers['idempotency-key']);
      const { info, message, duplicate } = await store.publish(
        key,
        { data, contentType: headers['content-type'], eventType: typeof eventType === 'string' ? eventType : undefined, idempotencyKey, distinctSecond: options.distinctSeconds },
        options.rules,
      );
      // A retry of a publish that is still stored: nothing published now (the IETF draft's replay header).
      if (duplicate) res.setHeader('Idempotent-Replayed', 'true');
      else relay.published(channel.id, message);
      // 201 vs 202 needs only the count of waiting subscribers; fan-out happens after this answer.
      sendChannelInfo(req, res, !duplicate && info.subscribers > 0 ? 201 : 202, info);
      return;
    }
    case 'PUT':
      sendChannelInfo(req, res, 200, await store.create(key, options.rules));
      return;
    case 'GET': {
      const info = await store.info(key);
      if (!info) throw noSuchChannel();
      sendChannelInfo(req, res, 200, info);
      return;
    }
    case 'DELETE': {
      const info = await store.delete(key);
      if (!info) throw noSuchChannel();
      sendChannelInfo(req, res, 200, info);
      return;
    }
  }
}

/** The `Idempotency-Key` request header: at most 255 visible ASCII characters. */
function readIdempotencyKey(value: string | string[] | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !/^[\x21-\x7e]{1,255}$/.test(value)) throw badIdempotencyKey();
  return value;
}
