/**
 * The baseline: a straightforward Express 5 implementation of the Basic HTTP Push Relay
 * Protocol, written as a competent developer would in an afternoon without thinking about
 * performance (no library besides Express, nothing tuned). It must still be correct: subscribers walk
 * a channel with If-Modified-Since / If-None-Match and get every message once, in order.
 *
 *   POST   /publish?id=CH   store the message, answer every waiting subscriber; 201 if one got it, else 202
 *   GET    /publish?id=CH   channel info (404 when the channel does not exist)
 *   PUT    /publish?id=CH   create the channel
 *   DELETE /publish?id=CH   delete it; waiting subscribers get 410
 *   GET    /activity?id=CH  the next message after the cursor, or wait for it (long-poll)
 *
 * Settings of examples/basic.ts: the newest 10 messages kept, for 2 hours; broadcast concurrency.
 * `node alt-straightforward-express.js <port>`.
 */
import express, { type Request, type Response } from 'express';
import { channelInfoText, listen } from './alt-common.js';

const MAX_MESSAGES = 10;
const MESSAGE_TIMEOUT_MS = 2 * 60 * 60 * 1000;

interface Message {
  /** Second of the message (Last-Modified). */
  time: number;
  /** Counter within that second (Etag). */
  tag: number;
  body: Buffer;
  contentType: string;
  createdAt: number;
}

interface Channel {
  messages: Message[];
  waiting: Response[];
  lastRequestedAt: number | undefined;
}

const channels = new Map<string, Channel>();

function getChannel(id: string, create: boolean): Channel | undefined {
  let channel = channels.get(id);
  if (!channel && create) {
    channel = { messages: [], waiting: [], lastRequestedAt: undefined };
    channels.set(id, channel);
  }
  return channel;
}

function channelId(req: Request, res: Response): string | undefined {
  const id = req.query.id;
  if (typeof id !== 'string' || id === '') {
    res.status(400).send('No channel id provided.');
    return undefined;
  }
  return id;
}

function dropExpired(channel: Channel): void {
  const now = Date.now();
  channel.messages = channel.messages.filter((m) => now - m.createdAt < MESSAGE_TIMEOUT_MS);
}

function info(channel: Channel, subscribers = channel.waiting.length): string {
  const last = channel.messages[channel.messages.length - 1];
  return channelInfoText({
    queued: channel.messages.length,
    lastRequestedSec: channel.lastRequestedAt === undefined ? -1 : Math.floor((Date.now() - channel.lastRequestedAt) / 1000),
    subscribers,
    lastMessageId: last ? `${last.time}:${last.tag}` : '',
  });
}

function sendMessage(res: Response, message: Message): void {
  res.set({
    'Last-Modified': new Date(message.time * 1000).toUTCString(),
    Etag: String(message.tag),
    'Content-Type': message.contentType,
    'Cache-Control': 'no-cache',
    Vary: 'If-None-Match, If-Modified-Since',
  });
  // Not res.send(): Express's conditional-GET handling would turn the answer into a 304 whenever the
  // subscriber's If-None-Match (its previous message's Etag) equals this message's Etag, as it does
  // for the first message of every second (Etag 0).
  res.status(200).end(message.body);
}

const app = express();

app.post('/publish', express.raw({ type: () => true, limit: '1mb' }), (req, res) => {
  const id = channelId(req, res);
  if (id === undefined) return;
  const channel = getChannel(id, true)!;
  dropExpired(channel);

  const now = Date.now();
  const last = channel.messages[channel.messages.length - 1];
  const time = Math.max(Math.floor(now / 1000), last ? last.time : 0);
  const message: Message = {
    time,
    tag: last && last.time === time ? last.tag + 1 : 0,
    body: Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0),
    contentType: req.get('Content-Type') ?? 'text/plain',
    createdAt: now,
  };
  channel.messages.push(message);
  if (channel.messages.length > MAX_MESSAGES) channel.messages.splice(0, channel.messages.length - MAX_MESSAGES);

  // Everyone waiting is at the end of the queue: the new message is the next one for all of them.
  const waiting = channel.waiting;
  channel.waiting = [];
  for (const subscriber of waiting) sendMessage(subscriber, message);

  res.status(waiting.length > 0 ? 201 : 202).type('text/plain').send(info(channel, waiting.length));
});

app.get('/publish', (req, res) => {
  const id = channelId(req, res);
  if (id === undefined) return;
  const channel = getChannel(id, false);
  if (!channel) {
    res.status(404).send('No such channel.');
    return;
  }
  dropExpired(channel);
  res.type('text/plain').send(info(channel));
});

app.put('/publish', (req, res) => {
  const id = channelId(req, res);
  if (id === undefined) return;
  res.type('text/plain').send(info(getChannel(id, true)!));
});

app.delete('/publish', (req, res) => {
  const id = channelId(req, res);
  if (id === undefined) return;
  const channel = getChannel(id, false);
  if (!channel) {
    res.status(404).send('No such channel.');
    return;
  }
  channels.delete(id);
  for (const subscriber of channel.waiting) subscriber.status(410).send('Channel deleted.');
  res.type('text/plain').send(info(channel, 0));
});

app.get('/activity', (req, res) => {
  const id = channelId(req, res);
  if (id === undefined) return;
  const channel = getChannel(id, true)!;
  channel.lastRequestedAt = Date.now();
  dropExpired(channel);

  // The cursor: the Last-Modified and Etag of the message the subscriber got last.
  const since = req.get('If-Modified-Since');
  let next: Message | undefined;
  if (since === undefined) {
    next = channel.messages[0];
  } else {
    const time = Math.floor(new Date(since).getTime() / 1000);
    const tag = parseInt(req.get('If-None-Match') ?? '0', 10) || 0;
    next = channel.messages.find((m) => m.time > time || (m.time === time && m.tag > tag));
  }
  if (next) {
    sendMessage(res, next);
    return;
  }

  channel.waiting.push(res);
  req.on('close', () => {
    channel.waiting = channel.waiting.filter((r) => r !== res);
  });
});

listen(app);
