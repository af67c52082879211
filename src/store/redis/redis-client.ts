/**
 * The node-redis client type RedisStore works with, and script calls on it: EVALSHA first, EVAL (which
 * also caches the script) when Redis does not know it yet, e.g. after a restart. Replies keep their
 * bytes (Buffer), so message bodies stay binary-safe.
 */
import { RESP_TYPES, type RedisClientType, type RedisFunctions, type RedisModules, type RedisScripts, type RespVersions, type TypeMapping } from 'redis';
import { keyList, type ChannelKeys } from './keys.js';
import type { LuaScript } from './scripts.js';

/** Any node-redis v5 client (`createClient()` from `redis`), whatever its modules and RESP version. */
export type RedisClient = RedisClientType<RedisModules, RedisFunctions, RedisScripts, RespVersions, TypeMapping>;

const BINARY = { [RESP_TYPES.BLOB_STRING]: Buffer, [RESP_TYPES.SIMPLE_STRING]: Buffer } as const;

export type Reply = Buffer | number | null | Reply[];

export async function runScript(
  client: RedisClient,
  script: LuaScript,
  keys: ChannelKeys,
  args: ReadonlyArray<string | Buffer>,
  timeout: number,
): Promise<Reply> {
  const keyArgs = keyList(keys);
  const options = { typeMapping: BINARY, timeout };
  const tail = [String(keyArgs.length), ...keyArgs, ...args];
  try {
    return (await client.sendCommand(['EVALSHA', script.sha, ...tail], options)) as Reply;
  } catch (err) {
    if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
    return (await client.sendCommand(['EVAL', script.source, ...tail], options)) as Reply;
  }
}

export const text = (reply: Reply | undefined): string => (Buffer.isBuffer(reply) ? reply.toString('utf8') : reply == null ? '' : String(reply));
export const int = (reply: Reply | undefined): number => (typeof reply === 'number' ? reply : Number(text(reply)));
export const list = (reply: Reply | undefined): Reply[] => (Array.isArray(reply) ? reply : []);
