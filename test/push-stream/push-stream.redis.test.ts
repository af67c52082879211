/** The Push Stream Module features against RedisStore (skipped, with the reason, when Redis is unreachable outside CI). */
import { onRedis } from '../redis/redis-env.js';
import { pushStreamSuite } from './push-stream-suite.js';

await onRedis('Push Stream Module features', 'push-stream', pushStreamSuite);
