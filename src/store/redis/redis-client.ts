/**
 * The node-redis client type RedisStore works with, and script calls on it: EVALSHA first, EVAL (which
 * also caches the script) when Redis does not know it yet, e.g. after a restart. Replies keep their
 * bytes (Buffer), so message bodies stay binary-safe.
 */
import { createRequire } from 'node:module';
import type * as Redis from 'redis';
import type { RedisClientType, RedisFunctions, RedisModules, RedisScripts, RespVersions, TypeMapping } from 'redis';
import { keyList, type ChannelKeys } from './keys.js';
import type { LuaScript } from './scripts.js';
import { IORedisAdapter } from './ioredis-adapter.js';
import { TimerWheel, type WheelEntry } from '../../timer-wheel.js';

/** Any node-redis v5 client (`createClient()` from `redis`), whatever its modules and RESP version. */
export type RedisClient = RedisClientType<RedisModules, RedisFunctions, RedisScripts, RespVersions, TypeMapping>;

type RedisModule = typeof Redis;
let redis: RedisModule | undefined;

/**
 * node-redis, the optional peer dependency, loaded when a RedisStore is made (not when
 * `push-relay/redis` is imported), with an error that says what to install when it is missing.
 */
export function loadRedis(): RedisModule {
  if (redis) return redis;
  try {
    redis = createRequire(import.meta.url)('redis') as RedisModule;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND' && /['"]redis['"]/.test(String((err as Error).message))) {
      throw new Error('push-relay: RedisStore needs the optional peer dependency "redis" (node-redis 5): npm install redis', { cause: err });
    }
    throw err;
  }
  return redis;
}

let binary: TypeMapping | undefined;
/** Replies keep their bytes: blob and simple strings as Buffers. */
const BINARY = (): TypeMapping => (binary ??= { [loadRedis().RESP_TYPES.BLOB_STRING]: Buffer, [loadRedis().RESP_TYPES.SIMPLE_STRING]: Buffer });

export type Reply = Buffer | number | null | Reply[];

/**
 * A command got no answer within the store's commandTimeout. node-redis bounds a command only until it
 * is written to the socket, so the store keeps its own deadline; when it passes, a late reply may
 * still come (and the command may have run), so the connection is treated as broken.
 */
export class CommandTimeoutError extends Error {
  override readonly name = 'CommandTimeoutError';
}

/** A channel index and its limit (maxChannels, or maxWildcardChannels for wildcard channels). */
export interface ChannelLimit {
  readonly index: string;
  readonly max: number;
  readonly option: 'maxChannels' | 'maxWildcardChannels';
}

/**
 * Runs `script` on the channel's keys, answered within `timeout` ms or rejected with
 * CommandTimeoutError. The first two arguments every script gets are the channel limit (0: none)
 * and `uncounted`: this process's waiting subscribers not counted in Redis yet, less those counted
 * there that are no longer waiting (RedisStore counts in batches; what the script answers counts them).
 */
export function runScript(
  client: RedisClient,
  script: LuaScript,
  keys: ChannelKeys,
  args: ReadonlyArray<string | Buffer>,
  timeout: number,
  limit?: ChannelLimit,
  uncounted = 0,
): Promise<Reply> {
  const keyArgs = limit ? [...keyList(keys), limit.index] : keyList(keys);
  // ioredis' callBuffer() keeps bytes by itself (and node-redis, which BINARY() loads, may be absent).
  const options = client instanceof IORedisAdapter ? undefined : { typeMapping: BINARY() };
  const tail = [String(keyArgs.length), ...keyArgs, String(limit?.max ?? 0), String(uncounted), ...args];
  let sent: Promise<Reply>;
  try {
    sent = (client.sendCommand(['EVALSHA', script.sha, ...tail], options) as Promise<Reply>).catch((err: unknown) => {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
      return client.sendCommand(['EVAL', script.source, ...tail], options) as Promise<Reply>;
    });
  } catch (err) {
    sent = Promise.reject(err);
  }
  return withDeadline(sent, timeout);
}

interface Deadline extends WheelEntry {
  readonly reject: (err: Error) => void;
  readonly timeout: number;
}

/**
 * Every command's deadline, on one coarse timer wheel (50 ms): a timer per command would cost more
 * than many commands do.
 */
const deadlines = new TimerWheel<Deadline>(50, (d) => d.reject(new CommandTimeoutError(`no answer within ${d.timeout} ms`)));

/** `sent`, or CommandTimeoutError when it has not settled within `timeout` ms (50 ms more at most). */
export function withDeadline<T>(sent: Promise<T>, timeout: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const deadline: Deadline = { slot: -1, reject, timeout };
    deadlines.schedule(deadline, Date.now() + timeout);
    sent.then(
      (value) => {
        deadlines.cancel(deadline);
        resolve(value);
      },
      (err: unknown) => {
        deadlines.cancel(deadline);
        reject(err);
      },
    );
  });
}

export const text = (reply: Reply | undefined): string => (Buffer.isBuffer(reply) ? reply.toString('utf8') : reply == null ? '' : String(reply));
export const int = (reply: Reply | undefined): number => (typeof reply === 'number' ? reply : Number(text(reply)));
export const list = (reply: Reply | undefined): Reply[] => (Array.isArray(reply) ? reply : []);
