/**
 * express-longpoll (https://github.com/yehya/express-longpoll) in an Express 5 app. The library has
 * one long-poll endpoint per URL (`longpoll.create(url)` adds `app.get(url)`), and
 * `longpoll.publish(url, data)` answers every request waiting on it; it has no other notion of
 * channels. So each channel id gets its own endpoint, created on first use at `/activity/<id>`, and
 * `GET /activity?id=<id>` is routed there. (Its other mechanism, `publishToId` with a `req.id` set by
 * middleware, targets one client: an id per request under a channel prefix, published to with a
 * wildcard, makes EventEmitter2 take seconds to answer 5,000 waiting requests, so it is not used.)
 * Channel ids are limited to letters, digits, `_` and `-`, which are safe in an Express route path.
 *
 *   POST /publish?id=CH    longpoll.publish('/activity/CH', body); 201 if a request waited, else 202
 *   GET  /publish?id=CH    channel info (how many requests wait on the channel)
 *   GET  /activity?id=CH   waits for the channel's next publish, answered with res.json(data)
 *
 * What the library does not do, and this wrapper does not add: it keeps no messages and reads no
 * cursor (a request gets the next publish after it arrived, nothing before), sets no
 * Last-Modified/Etag, and keeps a request's listener after its client went away. It answers with
 * `res.json(data)`: a body that is a decimal number (the load generator's messages) is published as a
 * JSON number, so that the answer's body is that number and not a quoted string.
 * `node alt-express-longpoll.js <port>`.
 */
import express, { type Request, type Response } from 'express';
import expressLongPoll from 'express-longpoll';
import { channelInfoText, listen } from './alt-common.js';

/** The EventEmitter2 behind each endpoint, which express-longpoll keeps in a global by URL. */
interface Dispatcher {
  listenerCount(event: string): number;
}
const endpointUrl = (channel: string) => `/activity/${channel}`;
const waiting = (channel: string) =>
  (globalThis as { express_longpoll_emitters?: Record<string, Dispatcher> }).express_longpoll_emitters?.[endpointUrl(channel)]?.listenerCount('longpoll') ?? 0;

function channelId(req: Request, res: Response): string | undefined {
  const id = req.query.id;
  if (typeof id === 'string' && /^[\w-]+$/.test(id)) return id;
  res.status(400).send('No channel id provided, or one with characters other than letters, digits, "_" and "-".');
  return undefined;
}

const info = (subscribers: number) => channelInfoText({ queued: 0, lastRequestedSec: -1, subscribers, lastMessageId: '' });

const app = express();
const longpoll = expressLongPoll(app);
const endpoints = new Set<string>();

async function endpointFor(channel: string): Promise<string> {
  const url = endpointUrl(channel);
  if (!endpoints.has(url)) {
    endpoints.add(url);
    await longpoll.create(url);
  }
  return url;
}

// Routed to the channel's endpoint, which express-longpoll added to the app after this route.
app.get('/activity', async (req, res, next) => {
  const id = channelId(req, res);
  if (id === undefined) return;
  req.url = await endpointFor(id);
  next();
});

app.post('/publish', express.text({ type: () => true, limit: '1mb' }), async (req, res) => {
  const id = channelId(req, res);
  if (id === undefined) return;
  const text = typeof req.body === 'string' ? req.body : '';
  const received = waiting(id);
  await longpoll.publish(await endpointFor(id), /^\d+$/.test(text) ? Number(text) : text);
  res.status(received > 0 ? 201 : 202).type('text/plain').send(info(received));
});

app.get('/publish', (req, res) => {
  const id = channelId(req, res);
  if (id === undefined) return;
  res.type('text/plain').send(info(waiting(id)));
});

listen(app);
