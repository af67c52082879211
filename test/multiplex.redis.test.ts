/** The multiplexing suite on RedisStore: same tests, channels and counts in Redis. */
import { onRedis } from './redis/redis-env.js';
import { multiplexSuite } from './multiplex-suite.js';

await onRedis('multiplexed subscribers', 'multiplex', multiplexSuite);
