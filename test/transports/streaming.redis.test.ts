/** The streaming suite against RedisStore (skipped, with the reason, when Redis is unreachable outside CI). */
import { test } from 'node:test';
import { RedisStore } from '../../src/redis.js';
import { deleteKeys, REDIS_URL, redisSkipReason, testPrefix } from '../redis/redis-env.js';
import { streamingSuite } from './streaming-suite.js';

const skip = await redisSkipReason();
if (skip) {
  test('streaming subscribers (redis)', { skip }, () => {});
} else {
  streamingSuite('redis', async () => {
    const prefix = testPrefix('streaming');
    const store = new RedisStore({ url: REDIS_URL, prefix });
    await store.ready();
    return {
      store,
      close: async () => {
        await store.close();
        await deleteKeys(prefix);
      },
    };
  });
}
