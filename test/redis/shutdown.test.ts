/**
 * Graceful shutdown on a shared Redis: once a process has closed (`relay.close()` then
 * `store.close()`), no other process still counts its subscribers: a publish there answers 202 at
 * once, not 201 "delivered" to nobody until the closed process's leases pass (15 s here).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, it, test } from 'node:test';
import { request } from '../helpers/http-client.js';
import { waitFor } from '../helpers/wait.js';
import { startApp, type AppProcess } from './app-processes.js';
import { deleteKeys, REDIS_URL, redisSkipReason, testPrefix } from './redis-env.js';

const skip = await redisSkipReason();
if (skip) test('RedisStore graceful shutdown', { skip }, () => {});
else
  describe('RedisStore graceful shutdown', () => {
    const prefix = testPrefix('shutdown');
    const apps: AppProcess[] = [];
    after(async () => {
      await Promise.all(apps.map((a) => a.stop('SIGKILL')));
      await deleteKeys(prefix);
    });

    const subscribers = async (app: AppProcess, id: string) => {
      const res = await request(app.url(`/pub?id=${id}`), { headers: { Accept: 'application/json' } });
      return res.status === 200 ? (JSON.parse(res.text) as { subscribers: number }).subscribers : 0;
    };

    it('a closed process leaves no subscriber counted in Redis', async () => {
      // Heartbeats every 5 s: a lease lasts 15 s, far longer than this test waits.
      const [closing, staying] = await Promise.all([startApp({ REDIS_URL, PREFIX: prefix, HEARTBEAT: '5000' }), startApp({ REDIS_URL, PREFIX: prefix, HEARTBEAT: '5000' })]);
      apps.push(closing!, staying!);
      const id = `sd-${randomBytes(4).toString('hex')}`;
      const waiting = Array.from({ length: 5 }, () => request(closing!.url(`/sub?id=${id}`), { timeout: 20_000 }));
      await waitFor('5 waiting subscribers seen from the other process', async () => (await subscribers(staying!, id)) === 5);

      const stoppedAt = Date.now();
      await closing!.stop('SIGTERM');
      const answers = await Promise.all(waiting);
      assert.deepEqual(answers.map((r) => r.status), [503, 503, 503, 503, 503], 'waiting subscribers are told the relay is closing');

      assert.equal(await subscribers(staying!, id), 0, 'the closed process still counts subscribers');
      const published = await request(staying!.url(`/pub?id=${id}`), { method: 'POST', body: 'after' });
      assert.equal(published.status, 202, 'a publish is "delivered" to subscribers that are gone');
      assert.ok(Date.now() - stoppedAt < 5000, 'checked well within the lease');
    });
  });
