/**
 * The benchmark's `relay.handler` relay: the same two middlewares as express-relay.ts, served by
 * `relay.handler(routes, app)` in front of an Express 5 app (README, "Without a framework"): the
 * relay's paths never reach Express, every other path does. For these requests this is exactly a
 * bare `node:http` server routing two paths. With BENCH_REDIS_PREFIX set, as express-relay.ts, the
 * relay uses a RedisStore (REDIS_URL) under that key prefix.
 */
import express from 'express';
import { createServer } from 'node:http';
import { createPushRelay } from '../../src/index.js';
import { RedisStore } from '../../src/redis.js';
import { serveUntilSignalled } from './serve.js';

const redisPrefix = process.env.BENCH_REDIS_PREFIX;
const relay = redisPrefix
  ? createPushRelay({ store: new RedisStore({ url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', prefix: redisPrefix }) })
  : createPushRelay({ maxReservedMemory: '32mb' });
const app = express();
app.get('/', (_req, res) => {
  res.send('the rest of the app');
});

const routes = {
  '/publish': relay.publisher({ messageTimeout: '2h', maxMessageBufferLength: 10 }),
  '/activity': relay.subscriber({ concurrency: 'broadcast', defaultContentType: 'text/plain' }),
};

serveUntilSignalled(createServer(relay.handler(routes, app)), relay);
