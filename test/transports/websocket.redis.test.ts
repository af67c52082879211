/** The WebSocket suite on RedisStore: same tests, channels and counts in Redis. */
import { onRedis } from '../redis/redis-env.js';
import { websocketSuite } from './websocket-suite.js';

await onRedis('WebSocket subscribers', 'websocket', websocketSuite);
