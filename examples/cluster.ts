/**
 * The basic relay (examples/basic.ts) on 2 processes sharing one channel space through Redis:
 * node:cluster forks 2 workers that serve the same port; each request goes to either worker, and a
 * message published on one reaches subscribers waiting on the other, in order, with the right 201/202.
 *
 * Run: REDIS_URL=redis://127.0.0.1:6379 npx tsx examples/cluster.ts (PORT, default 8080). Then:
 *   curl -v 'localhost:8080/activity?id=a'          # in two or three terminals: they land on both workers
 *   curl -v -d hello 'localhost:8080/publish?id=a'  # 201: every waiting subscriber gets "hello"
 * Answers carry `X-Worker` so you can see which process served them. Across hosts it is the same:
 * run this app on each host with the same REDIS_URL (and the same `prefix`). See docs/scaling.md.
 */
import cluster from 'node:cluster';
import express from 'express';
import { createPushRelay } from '../src/index.js';
import { RedisStore } from '../src/redis.js';

const WORKERS = 2;

if (cluster.isPrimary) {
  for (let i = 0; i < WORKERS; i++) cluster.fork();
  cluster.on('exit', (worker, code, signal) => {
    console.log(`worker ${worker.process.pid} exited (${signal ?? code})`);
  });
  const stop = () => {
    for (const worker of Object.values(cluster.workers ?? {})) worker?.kill('SIGTERM');
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
} else {
  const store = new RedisStore({ url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', prefix: 'push-relay-example' });
  const relay = createPushRelay({ store });
  const app = express();
  app.use((_req, res, next) => {
    res.setHeader('X-Worker', String(process.pid));
    next();
  });
  app.all('/publish', relay.publisher({ messageTimeout: '2h', maxMessageBufferLength: 10 }));
  app.get('/activity', relay.subscriber({ concurrency: 'broadcast', defaultContentType: 'text/plain' }));

  const port = Number(process.env.PORT ?? 8080);
  const server = app.listen(port, () => {
    console.log(`worker ${process.pid}: publish at http://localhost:${port}/publish?id=<channel>, subscribe at http://localhost:${port}/activity?id=<channel>`);
  });

  // Answer waiting subscribers (503, they retry), count them out of Redis, then close.
  const shutdown = () => {
    void relay
      .close()
      .then(() => store.close())
      .finally(() => server.close(() => process.exit(0)));
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
}
