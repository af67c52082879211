/**
 * The Redis the tests use: REDIS_URL (default redis://127.0.0.1:6379). When it cannot be reached the
 * Redis tests are skipped with a clear message, except under CI (process.env.CI), where they fail.
 * Every run uses its own key prefix and deletes its keys afterwards.
 */
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { Redis as IORedis } from 'ioredis';
import { createClient } from 'redis';
import type { ChannelStore } from '../../src/index.js';
import { RedisStore } from '../../src/redis.js';

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** undefined when Redis answers; otherwise why the Redis tests are skipped (throws under CI). */
export async function redisSkipReason(url = REDIS_URL): Promise<string | undefined> {
  const client = createClient({ url, socket: { connectTimeout: 2000, reconnectStrategy: false } });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.ping();
    return undefined;
  } catch (err) {
    const reason = `Redis is not reachable at ${url} (${err instanceof Error ? err.message : String(err)}): Redis tests skipped; set REDIS_URL or start redis-server`;
    if (process.env.CI) throw new Error(`CI is set and ${reason.replace('skipped', 'cannot be skipped')}`, { cause: err });
    return reason;
  } finally {
    if (client.isOpen) client.destroy();
  }
}

/** A key prefix no other test run uses. */
export function testPrefix(what: string): string {
  return `push-relay-test:${what}:${process.pid}-${randomBytes(3).toString('hex')}`;
}

/** Deletes every key under `prefix` (SCAN, never KEYS). */
export async function deleteKeys(prefix: string, url = REDIS_URL): Promise<number> {
  const client = createClient({ url });
  client.on('error', () => {});
  await client.connect();
  let deleted = 0;
  try {
    for await (const keys of client.scanIterator({ MATCH: `${prefix}:*`, COUNT: 500 })) {
      if (keys.length > 0) deleted += await client.del(keys);
    }
  } finally {
    client.destroy();
  }
  return deleted;
}

/** A store factory for the suites that run on both stores: a fresh RedisStore per call, its keys deleted on close. */
export type StoreFactory = () => Promise<{ store: ChannelStore; close(): Promise<void> }>;

/**
 * Runs `suite` on RedisStore, or registers one skipped test `name` saying why Redis is not there
 * (outside CI; under CI the missing Redis fails, see redisSkipReason).
 */
export async function onRedis(name: string, what: string, suite: (label: string, makeStore: StoreFactory) => void): Promise<void> {
  const skip = await redisSkipReason();
  if (skip) {
    test(`${name} (redis)`, { skip }, () => {});
    return;
  }
  // Once with the store's own node-redis connections, once with an ioredis client given as `client`.
  for (const client of REDIS_CLIENTS) {
    suite(client === 'node-redis' ? 'redis' : 'redis-ioredis', async () => {
      const prefix = testPrefix(what);
      const given = client === 'ioredis' ? new IORedis(REDIS_URL, { lazyConnect: true }) : undefined;
      const store = new RedisStore(given ? { client: given, prefix } : { url: REDIS_URL, prefix });
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
}

/** The clients the suites run RedisStore with. */
export const REDIS_CLIENTS = ['node-redis', 'ioredis'] as const;
