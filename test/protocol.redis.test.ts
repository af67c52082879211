/** The core's protocol suite, run against RedisStore (one suite, two stores). */
import { test } from 'node:test';
import { RedisStore } from '../src/redis.js';
import { protocolSuite } from './protocol-suite.js';
import { deleteKeys, REDIS_URL, redisSkipReason, testPrefix } from './redis/redis-env.js';

const skip = await redisSkipReason();
if (skip) {
  test('protocol over HTTP (redis)', { skip }, () => {});
} else {
  protocolSuite('redis', async () => {
    const prefix = testPrefix('protocol');
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
