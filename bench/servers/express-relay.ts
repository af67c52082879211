/**
 * The benchmark's Express 5 relay: push-relay mounted exactly as the README and examples/basic.ts do.
 * bench/run.ts bundles it (bench/build.ts) and runs `node express-relay.js <port>`; it prints
 * `listening <port>` once it accepts connections. With BENCH_REDIS_PREFIX set, the relay uses a
 * RedisStore (REDIS_URL) under that key prefix, so that several processes share its channels.
 */
import express from 'express';
import { createServer } from 'node:http';
import { createPushRelay } from '../../src/index.js';
import { RedisStore } from '../../src/redis.js';
import { serveUntilSignalled } from './serve.js';

const app = express();
const redisPrefix = process.env.BENCH_REDIS_PREFIX;
const relay = redisPrefix
  ? createPushRelay({ store: new RedisStore({ url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', prefix: redisPrefix }) })
  : createPushRelay({ maxReservedMemory: '32mb' });

app.all('/publish', relay.publisher({ messageTimeout: '2h', maxMessageBufferLength: 10 }));
app.get('/activity', relay.subscriber({ concurrency: 'broadcast', defaultContentType: 'text/plain' }));

serveUntilSignalled(createServer(app), relay);
