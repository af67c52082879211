/** The multi-process suite on the shared Redis (see multi-process-suite.ts). */
import { test } from 'node:test';
import { multiProcessSuite } from './multi-process-suite.js';
import { deleteKeys, REDIS_URL, redisSkipReason, testPrefix } from './redis-env.js';

const skip = await redisSkipReason();
if (skip) test('RedisStore across processes', { skip }, () => {});
else {
  const prefix = testPrefix('multi');
  multiProcessSuite('RedisStore across processes', () => ({ REDIS_URL, PREFIX: prefix }), () => deleteKeys(prefix).then(() => {}));
}
