/**
 * A Redis that cannot be reached when the app starts: `store.ready()` rejects with a clear error in
 * bounded time, the failure is logged and emitted once (not per reconnection attempt), requests get
 * 503 at once instead of after a time-out, and the store connects by itself once Redis is there.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { after, describe, it, test } from 'node:test';
import { createPushRelay } from '../../src/index.js';
import { RedisStore } from '../../src/redis.js';
import { request } from '../helpers/http-client.js';
import { serveNodeHttp } from '../helpers/servers.js';
import { freePort, kill, redisServerSkipReason, startRedis } from './redis-server.js';

const skip = redisServerSkipReason('RedisStore connection tests');
if (skip) test('RedisStore connecting', { skip }, () => {});
else
  describe('RedisStore connecting to a Redis that is not there', () => {
    const cleanup: Array<() => Promise<void>> = [];
    let redis: ChildProcess | undefined;
    after(async () => {
      for (const f of cleanup.reverse()) await f();
      if (redis) await kill(redis);
    });

    it('ready() rejects naming the address and the reason; error is emitted once; requests get 503 at once; then it connects', async () => {
      const port = await freePort();
      const store = new RedisStore({ url: `redis://:secret@127.0.0.1:${port}`, prefix: 'connect-test' });
      const errors: Error[] = [];
      store.on('error', (err) => errors.push(err));
      cleanup.push(() => store.close());

      const started = Date.now();
      await assert.rejects(store.ready({ timeout: '700ms' }), (err: Error) => {
        assert.match(err.message, new RegExp(`^push-relay: cannot reach Redis at redis://:\\*\\*\\*@127\\.0\\.0\\.1:${port} within 700 ms: .*ECONNREFUSED`));
        assert.doesNotMatch(err.message, /secret/, 'the password is not in the message');
        return true;
      });
      assert.ok(Date.now() - started < 2000, 'bounded');
      assert.equal(errors.length, 1, `one error event for the outage, got ${errors.length}`);

      const relay = createPushRelay({ store });
      const server = await serveNodeHttp({ '/pub': relay.publisher() });
      cleanup.push(() => server.close());
      const asked = Date.now();
      const res = await request(server.url('/pub?id=a'), { method: 'POST', body: 'x' });
      assert.equal(res.status, 503);
      assert.match(res.text, /Redis is unavailable: .*ECONNREFUSED/);
      assert.ok(Date.now() - asked < 500, `503 after ${Date.now() - asked} ms: not at once`);

      // Redis comes up on that port: the store connects by itself.
      redis = await startRedis(port, ['--requirepass', 'secret']);
      await store.ready({ timeout: '10s' });
      const ok = await request(server.url('/pub?id=a'), { method: 'POST', body: 'x' });
      assert.equal(ok.status, 202);
      assert.equal(errors.length, 1, 'no further error events');
    });

    it('without an error listener, an unreachable Redis does not crash the process', async () => {
      const port = await freePort();
      const store = new RedisStore({ url: `redis://127.0.0.1:${port}` });
      cleanup.push(() => store.close());
      // By the time ready() gives up, node-redis has failed to connect (and emitted 'error') several times.
      await assert.rejects(store.ready({ timeout: '300ms' }), /cannot reach Redis/);
    });
  });
