/** The statistics suite on RedisStore: two stores on one Redis, as two processes would be. */
import { after, before, test } from 'node:test';
import { createClient } from 'redis';
import { RedisStore } from '../../src/redis.js';
import { deleteKeys, REDIS_URL, redisSkipReason, testPrefix } from '../redis/redis-env.js';
import { statisticsSuite } from './statistics-suite.js';

const skip = await redisSkipReason();
if (skip) test('statistics (redis)', { skip }, () => {});
else {
  // Channels Redis expires by itself are reported destroyed when keyspace notifications are on
  // (docs/statistics.md): on for these tests, as they were before afterwards.
  const admin = createClient({ url: REDIS_URL });
  let previous = '';
  before(async () => {
    await admin.connect();
    previous = (await admin.configGet('notify-keyspace-events'))['notify-keyspace-events'] ?? '';
    await admin.configSet('notify-keyspace-events', 'Ex');
  });
  after(async () => {
    await admin.configSet('notify-keyspace-events', previous);
    admin.destroy();
  });
  statisticsSuite('redis', async (options = {}) => {
    const prefix = testPrefix('stats');
    const { maxReservedMemory: _memoryOnly, ...redisOptions } = options;
    const a = new RedisStore({ url: REDIS_URL, prefix, ...redisOptions });
    const b = new RedisStore({ url: REDIS_URL, prefix, ...redisOptions });
    await Promise.all([a.ready(), b.ready()]);
    return {
      a,
      b,
      workers: 2,
      async slowCommands(ms) {
        const before = (await admin.configGet('slowlog-log-slower-than'))['slowlog-log-slower-than'] ?? '10000';
        await admin.configSet('slowlog-log-slower-than', String(ms * 1000));
        await admin.sendCommand(['SLOWLOG', 'RESET']);
        return async () => {
          const entries = (await admin.sendCommand(['SLOWLOG', 'GET', '100'])) as Array<[number, number, number, string[]]>;
          await admin.configSet('slowlog-log-slower-than', before);
          // Only this store's commands (the test's own setup is not the listing).
          return entries.filter((e) => e[3].some((arg) => String(arg).includes(prefix))).map((e) => `${e[2]} us: ${e[3].slice(0, 3).join(' ')}`);
        };
      },
      async close() {
        await a.close();
        await b.close();
        await deleteKeys(prefix);
      },
    };
  });
}
