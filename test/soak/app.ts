/**
 * One app process of the soak run (test/soak/soak.ts): a relay on RedisStore behind node:http, with
 * every subscriber transport. env REDIS_URL, PREFIX; prints "listening <port>" once it serves.
 * Routes: /pub (publisher), /sub (long-poll, EventSource, multipart, WebSocket, by request),
 * /poll (interval-poll).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createPushRelay } from '../../src/index.js';
import { RedisStore } from '../../src/redis.js';

const store = new RedisStore({
  url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
  prefix: process.env.PREFIX ?? 'push-relay-soak',
  commandTimeout: '1s',
  heartbeatInterval: '1s',
});
// An outage is expected here: the store reports it once per outage.
store.on('error', (err: Error) => process.stderr.write(`store: ${err.message}\n`));
await store.ready({ timeout: '10s' });
const relay = createPushRelay({ store, maxMessageBufferLength: 5000, messageTimeout: '1h' });
const server = http.createServer(
  relay.handler({
    '/pub': relay.publisher(),
    '/sub': relay.subscriber({ subscriberTimeout: '20s', pingInterval: '5s' }),
    '/poll': relay.subscriber({ mode: 'interval-poll' }),
  }),
);
await relay.handleUpgrade(server);
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`listening ${(server.address() as AddressInfo).port}\n`);
});

process.on('SIGTERM', () => {
  void relay
    .close()
    .then(() => store.close())
    .finally(() => {
      server.closeAllConnections();
      server.close(() => process.exit(0));
    });
});
