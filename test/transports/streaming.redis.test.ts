/** The streaming suite against RedisStore (skipped, with the reason, when Redis is unreachable outside CI). */
import { onRedis } from '../redis/redis-env.js';
import { streamingSuite } from './streaming-suite.js';

await onRedis('streaming subscribers', 'streaming', streamingSuite);
