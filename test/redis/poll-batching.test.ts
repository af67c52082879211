/**
 * RedisStore reads and joins the long-polls of one channel that arrive together with one script
 * (nextOrJoin): counted on a redis-server of the test's own (INFO commandstats), and checked to keep
 * the one-by-one semantics (arrival order under concurrency 'first' and 'last', maxSubscribers, a
 * message stored for some cursors and not others).
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { after, before, describe, it, test } from 'node:test';
import { createClient } from 'redis';
import { DEFAULT_BUFFER_RULES } from '../../src/index.js';
import { RedisStore } from '../../src/redis.js';
import type { JoinRequest } from '../../src/store/channel-store.js';
import { freePort, kill, redisServerSkipReason, startRedis } from './redis-server.js';

const skip = redisServerSkipReason('RedisStore poll batching');

if (skip) test('RedisStore poll batching', { skip }, () => {});
else
  describe('RedisStore: long-polls that arrive together', () => {
    let redis: ChildProcess;
    let store: RedisStore;
    let admin: ReturnType<typeof createClient>;
    let n = 0;
    const channel = () => `/batch-${++n}`;
    const request = (subscriberId: string, over: Partial<JoinRequest> = {}): JoinRequest => ({
      subscriberId,
      concurrency: 'broadcast',
      maxSubscribers: 0,
      create: true,
      channelTimeout: 0,
      ...over,
    });
    /** Scripts Redis has run since the last call. */
    let counted = 0;
    const scriptsRun = async () => {
      const info = await admin.info('commandstats');
      const calls = [...info.matchAll(/cmdstat_(?:evalsha|eval):calls=(\d+)/g)].reduce((sum, m) => sum + Number(m[1]), 0);
      const since = calls - counted;
      counted = calls;
      return since;
    };

    before(async () => {
      const port = await freePort();
      redis = await startRedis(port);
      admin = createClient({ url: `redis://127.0.0.1:${port}` });
      await admin.connect();
      store = new RedisStore({ url: `redis://127.0.0.1:${port}`, prefix: 'batch', heartbeatInterval: 60_000 });
      await store.ready();
      // Redis learns the script on its first use (NOSCRIPT, then EVAL): not what is counted here.
      await store.nextOrJoin('/warm-up', undefined, request('w'));
    });
    after(async () => {
      await store.close();
      admin.destroy();
      await kill(redis);
    });

    it('200 long-polls in one turn of the event loop cost one script, and each is joined', async () => {
      const ch = channel();
      await scriptsRun();
      const results = await Promise.all(Array.from({ length: 200 }, (_, i) => store.nextOrJoin(ch, undefined, request(`s${i}`))));
      assert.equal(await scriptsRun(), 1);
      assert.ok(results.every((r) => r.joined?.ok === true));
      assert.equal((await store.info(ch))?.subscribers, 200);
    });

    it('each gets the first message after its own cursor, or is joined when there is none', async () => {
      const ch = channel();
      const first = await store.publish(ch, { data: Buffer.from('one'), contentType: undefined }, DEFAULT_BUFFER_RULES);
      const second = await store.publish(ch, { data: Buffer.from('two'), contentType: undefined }, DEFAULT_BUFFER_RULES);
      await scriptsRun();
      const [fromOldest, afterFirst, afterSecond] = await Promise.all([
        store.nextOrJoin(ch, undefined, request('a')),
        store.nextOrJoin(ch, first.message.id, request('b')),
        store.nextOrJoin(ch, second.message.id, request('c')),
      ]);
      assert.equal(await scriptsRun(), 1);
      assert.equal(fromOldest!.message?.data.toString(), 'one');
      assert.equal(afterFirst!.message?.data.toString(), 'two');
      assert.deepEqual(afterSecond!.joined, { ok: true, newest: second.message.id }, 'joined, naming the newest id it was counted in after');
      assert.equal((await store.info(ch))?.subscribers, 1, 'only the one with nothing to read joined');
    });

    it('limits and concurrency apply in arrival order, as one by one', async () => {
      const full = channel();
      const limited = await Promise.all(['x', 'y', 'z'].map((id) => store.nextOrJoin(full, undefined, request(id, { maxSubscribers: 2 }))));
      assert.deepEqual(
        limited.map((r) => r.joined),
        [{ ok: true }, { ok: true }, { ok: false, reason: 'full' }],
      );
      const firstWins = channel();
      const first = await Promise.all(['p', 'q'].map((id) => store.nextOrJoin(firstWins, undefined, request(id, { concurrency: 'first' }))));
      assert.deepEqual(
        first.map((r) => r.joined),
        [{ ok: true }, { ok: false, reason: 'conflict' }],
      );
      const lastWins = channel();
      await Promise.all(['older', 'newer'].map((id) => store.nextOrJoin(lastWins, undefined, request(id, { concurrency: 'last' }))));
      assert.equal((await store.info(lastWins))?.subscribers, 1, 'the newer one is the one counted');
      const missing = await store.nextOrJoin(channel(), undefined, request('m', { create: false }));
      assert.deepEqual(missing.joined, { ok: false, reason: 'missing' });
    });

    it('different join options on one channel go as separate scripts in the same turn', async () => {
      const ch = channel();
      await scriptsRun();
      await Promise.all([store.nextOrJoin(ch, undefined, request('u')), store.nextOrJoin(ch, undefined, request('v', { maxSubscribers: 5 }))]);
      assert.equal(await scriptsRun(), 2);
      assert.equal((await store.info(ch))?.subscribers, 2);
    });
  });
