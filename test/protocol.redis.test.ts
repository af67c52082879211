/** The core's protocol suite, run against RedisStore (one suite, two stores). */
import { protocolSuite } from './protocol-suite.js';
import { onRedis } from './redis/redis-env.js';

await onRedis('protocol over HTTP', 'protocol', protocolSuite);
