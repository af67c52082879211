/**
 * A channel id from a route parameter instead of the `id` query argument (Express 5).
 *
 *   POST /rooms/:room/messages   publishes to the room's channel (PUT, GET, DELETE as on any publisher)
 *   GET  /rooms/:room/events     long-polls the room's channel
 *
 * Run: PORT=8080 npx tsx examples/custom-resolver.ts
 *   curl -i localhost:8080/rooms/lobby/events                    (waits)
 *   curl -i -H 'Content-Type: text/plain' -d hi localhost:8080/rooms/lobby/messages
 */
import express, { type Request } from 'express';
import type { IncomingMessage } from 'node:http';
import { createPushRelay } from '../src/index.js';

// Resolvers are typed against node:http so they also run without Express; Express has filled in
// `req.params` by the time the middleware runs. An empty or missing room answers 400.
const roomOf = (req: IncomingMessage) => (req as Request<{ room: string }>).params.room;

const relay = createPushRelay({
  channelId: roomOf, // every endpoint of this relay names its channel by the route's :room
  channelGroup: 'rooms', // a namespace: another relay or endpoint with another group can reuse the ids
  maxChannelIdLength: 64,
});

const app = express();
app.all('/rooms/:room/messages', relay.publisher({ maxMessageBufferLength: 50, messageTimeout: '10m' }));
app.get('/rooms/:room/events', relay.subscriber({ subscriberTimeout: '30s' }));

// In-process publishing uses the same ids (and the relay's channel group).
app.post('/rooms/:room/announce', express.text(), async (req, res, next) => {
  try {
    const info = await relay.publish(req.params.room, `announcement: ${String(req.body)}`, { contentType: 'text/plain' });
    res.json(info);
  } catch (err) {
    next(err);
  }
});

const port = Number(process.env.PORT ?? 8080);
const server = app.listen(port, () => {
  console.log(`custom-resolver example on http://localhost:${port}: POST /rooms/<room>/messages, GET /rooms/<room>/events`);
});

const shutdown = () => void relay.close().then(() => server.close(() => process.exit(0)));
process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);
