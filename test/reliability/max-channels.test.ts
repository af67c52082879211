/**
 * maxChannels (push_stream_max_number_of_channels): exactly that many channels, whatever the number
 * of concurrent creations, on both stores; a creation beyond it answers 403 naming the limit, the
 * existing channels keep working, and a removed channel makes room again.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { createPushRelay, MemoryStore, type ChannelStore } from '../../src/index.js';
import { RedisStore } from '../../src/redis.js';
import { request } from '../helpers/http-client.js';
import { serveNodeHttp } from '../helpers/servers.js';
import { deleteKeys, REDIS_URL, redisSkipReason, testPrefix } from '../redis/redis-env.js';

async function suite(label: string, makeStore: (max: number) => Promise<{ store: ChannelStore; close: () => Promise<void> }>, skip?: string) {
  describe(`maxChannels (${label})`, { skip }, () => {
    const closers: Array<() => Promise<void>> = [];
    after(async () => {
      for (const c of closers.reverse()) await c();
    });

    it('1,000 of 10,000 concurrent creations (publish, PUT, subscriber) succeed; the rest get 403', { timeout: 120_000 }, async () => {
      const { store, close } = await makeStore(1000);
      const relay = createPushRelay({ store });
      // A long-poll creates its channel when it joins; it answers 304 after its time-out.
      const server = await serveNodeHttp({ '/pub': relay.publisher(), '/sub': relay.subscriber({ subscriberTimeout: '200ms', channelTimeout: '1m' }) });
      closers.push(close, () => relay.close(), () => server.close());
      const statuses = await Promise.all(
        Array.from({ length: 10_000 }, (_, i) =>
          i % 3 === 0
            ? relay.publish(`c${i}`, 'x').then(() => 202, (err: { status?: number }) => err.status ?? 500)
            : i % 3 === 1
              ? request(server.url(`/pub?id=c${i}`), { method: 'PUT', timeout: 60_000 }).then((r) => r.status)
              : request(server.url(`/sub?id=c${i}`), { timeout: 60_000 }).then((r) => r.status),
        ),
      );
      const created = statuses.filter((s) => s === 200 || s === 202 || s === 304).length;
      assert.equal(created, 1000, 'exactly maxChannels created');
      assert.equal(statuses.filter((s) => s === 403).length, 9000, `the rest refused with 403: ${[...new Set(statuses)].join(', ')}`);
      const refused = await request(server.url('/pub?id=one-more'), { method: 'POST', body: 'x' });
      assert.equal(refused.status, 403);
      assert.match(refused.text, /1000 channels already, the most allowed \(maxChannels\)/);
      // The existing ones keep working; a deleted one makes room.
      const existing = statuses.findIndex((s) => s === 202);
      assert.equal((await request(server.url(`/pub?id=c${existing}`), { method: 'POST', body: 'y' })).status, 202);
      assert.ok(await relay.deleteChannel(`c${existing}`));
      assert.equal((await request(server.url('/pub?id=one-more'), { method: 'POST', body: 'x' })).status, 202);
    });
  });
}

// Before any suite starts (they run as soon as they are declared, and load the machine).
const skip = await redisSkipReason();
await suite('memory', async (max) => {
  const store = new MemoryStore({ maxChannels: max });
  return { store, close: () => store.close() };
});
await suite(
  'redis',
  async (max) => {
    const prefix = testPrefix('max-channels');
    const store = new RedisStore({ url: REDIS_URL, prefix, maxChannels: max });
    await store.ready();
    return {
      store,
      close: async () => {
        await store.close();
        await deleteKeys(prefix);
      },
    };
  },
  skip,
);
