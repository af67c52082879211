/** The WebSocket suite on RedisStore: same tests, channels and counts in Redis. */
import { test } from 'node:test';
import { RedisStore } from '../../src/redis.js';
import { deleteKeys, REDIS_URL, redisSkipReason, testPrefix } from '../redis/redis-env.js';
import { websocketSuite } from './websocket-suite.js';

const skip = await redisSkipReason();
if (skip) {
  test('WebSocket subscribers (redis)', { skip }, () => {});
} else {
  websocketSuite('redis', async () => {
    const prefix = testPrefix('websocket');
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
