/**
 * `push-relay/redis`: the Redis store, for several processes or hosts sharing one channel space.
 * Needs one of the optional peer dependencies `redis` (node-redis v5) or `ioredis` (5; give its
 * client as `client`). See docs/scaling.md.
 *
 *   import { createPushRelay } from 'push-relay';
 *   import { RedisStore } from 'push-relay/redis';
 *   const relay = createPushRelay({ store: new RedisStore({ url: process.env.REDIS_URL }) });
 */
export { RedisStore, type RedisStoreOptions } from './store/redis/redis-store.js';
export type { RedisClient } from './store/redis/redis-client.js';
export type { IORedisClient } from './store/redis/ioredis-adapter.js';
export type { IORedisClusterClient } from './store/redis/ioredis-cluster-adapter.js';
