/**
 * better-sse (https://github.com/MatthewWid/better-sse) in an Express 5 app, as its README shows:
 * one `Channel` per channel id, a `Session` per EventSource request registered with it, and
 * `channel.broadcast()` for each publish. The only option changed is `serializer`: better-sse
 * JSON-encodes data by default, so a text body would arrive quoted; with `String` the event's `data:`
 * line is the publisher's body, as Nchan and push-relay send it.
 *
 *   POST /publish?id=CH    channel.broadcast(body); 201 if a session got it, else 202, with channel info
 *   GET  /publish?id=CH    channel info (404 when the channel does not exist)
 *   GET  /activity?id=CH   an EventSource stream (better-sse answers any GET with one)
 *
 * better-sse keeps no messages: a session gets what is broadcast while it is connected, and nothing
 * is stored for later subscribers (its Last-Event-ID support only sets `session.lastId`).
 * `node alt-better-sse.js <port>`.
 */
import { createChannel, createSession, type Channel } from 'better-sse';
import express from 'express';
import { channelId, channelInfoText, listen } from './alt-common.js';

interface Relay {
  channel: Channel;
  /** The newest broadcast's event id. */
  lastEventId: string;
}

const relays = new Map<string, Relay>();

function relayFor(id: string): Relay {
  let relay = relays.get(id);
  if (!relay) {
    const created: Relay = { channel: createChannel(), lastEventId: '' };
    created.channel.on('broadcast', (_data, _name, eventId) => (created.lastEventId = eventId));
    relays.set(id, created);
    relay = created;
  }
  return relay;
}

const info = (relay: Relay) =>
  channelInfoText({ queued: 0, lastRequestedSec: -1, subscribers: relay.channel.sessionCount, lastMessageId: relay.lastEventId });

const app = express();

app.post('/publish', express.text({ type: () => true, limit: '1mb' }), (req, res) => {
  const id = channelId(req, res);
  if (id === undefined) return;
  const relay = relayFor(id);
  const received = relay.channel.sessionCount;
  relay.channel.broadcast(typeof req.body === 'string' ? req.body : '');
  res.status(received > 0 ? 201 : 202).type('text/plain').send(info(relay));
});

app.get('/publish', (req, res) => {
  const id = channelId(req, res);
  if (id === undefined) return;
  const relay = relays.get(id);
  if (relay) res.type('text/plain').send(info(relay));
  else res.status(404).send('No such channel.');
});

app.get('/activity', async (req, res) => {
  const id = channelId(req, res);
  if (id === undefined) return;
  const session = await createSession(req, res, { serializer: String });
  relayFor(id).channel.register(session);
});

listen(app);
