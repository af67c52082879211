/**
 * sse-channel (https://github.com/rexxars/sse-channel) in an Express 5 app, as its README shows: one
 * `SseChannel` per channel id, `channel.addClient(req, res)` for each EventSource request and
 * `channel.send({ id, data })` for each publish. Messages carry a numeric id per channel, so
 * sse-channel keeps them in its history (the newest 10, as the push module's buffer here) and replays
 * the ones after a reconnecting client's Last-Event-ID.
 *
 *   POST /publish?id=CH    channel.send({ id, data: body }); 201 if a client got it, else 202, with channel info
 *   GET  /publish?id=CH    channel info (404 when the channel does not exist)
 *   GET  /activity?id=CH   an EventSource stream
 *
 * `node alt-sse-channel.js <port>`.
 */
import express from 'express';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { channelId, channelInfoText, listen } from './alt-common.js';

/** The part of sse-channel's API used here (the package ships no type declarations). */
interface SseChannel {
  addClient(req: IncomingMessage, res: ServerResponse): void;
  send(message: { id: number; data: string }): void;
  getConnectionCount(): number;
  history: unknown[];
}
type SseChannelConstructor = new (options: { historySize?: number; jsonEncode?: boolean }) => SseChannel;
const SseChannel = createRequire(import.meta.url)('sse-channel') as SseChannelConstructor;

interface Relay {
  channel: SseChannel;
  lastId: number;
}

const relays = new Map<string, Relay>();

function relayFor(id: string): Relay {
  let relay = relays.get(id);
  if (!relay) {
    relay = { channel: new SseChannel({ historySize: 10 }), lastId: 0 };
    relays.set(id, relay);
  }
  return relay;
}

const info = (relay: Relay, subscribers = relay.channel.getConnectionCount()) =>
  channelInfoText({ queued: relay.channel.history.length, lastRequestedSec: -1, subscribers, lastMessageId: String(relay.lastId) });

const app = express();

app.post('/publish', express.text({ type: () => true, limit: '1mb' }), (req, res) => {
  const id = channelId(req, res);
  if (id === undefined) return;
  const relay = relayFor(id);
  const received = relay.channel.getConnectionCount();
  relay.channel.send({ id: ++relay.lastId, data: typeof req.body === 'string' ? req.body : '' });
  res.status(received > 0 ? 201 : 202).type('text/plain').send(info(relay, received));
});

app.get('/publish', (req, res) => {
  const id = channelId(req, res);
  if (id === undefined) return;
  const relay = relays.get(id);
  if (relay) res.type('text/plain').send(info(relay));
  else res.status(404).send('No such channel.');
});

app.get('/activity', (req, res) => {
  const id = channelId(req, res);
  if (id === undefined) return;
  relayFor(id).channel.addClient(req, res);
});

listen(app);
