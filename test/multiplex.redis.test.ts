/** The multiplexing suite on RedisStore: same tests, channels and counts in Redis. */
import { test } from 'node:test';
import { RedisStore } from '../src/redis.js';
import { multiplexSuite } from './multiplex-suite.js';
import { deleteKeys, REDIS_URL, redisSkipReason, testPrefix } from './redis/redis-env.js';

const skip = await redisSkipReason();
if (skip) {
  test('multiplexed subscribers (redis)', { skip }, () => {});
} else {
  multiplexSuite('redis', async () => {
    const prefix = testPrefix('multiplex');
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
