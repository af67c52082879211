/** The events suite on RedisStore: two stores on one Redis, as two processes would be. */
import { RedisStore } from '../../src/redis.js';
import { deleteKeys, REDIS_URL, redisSkipReason, testPrefix } from '../redis/redis-env.js';
import { test } from 'node:test';
import { eventsSuite } from './events-suite.js';

const skip = await redisSkipReason();
if (skip) test('lifecycle events (redis)', { skip }, () => {});
else
  eventsSuite('redis', async () => {
    const prefix = testPrefix('events');
    const a = new RedisStore({ url: REDIS_URL, prefix });
    const b = new RedisStore({ url: REDIS_URL, prefix });
    await Promise.all([a.ready(), b.ready()]);
    return {
      a,
      b,
      async close() {
        await a.close();
        await b.close();
        await deleteKeys(prefix);
      },
    };
  });
