/**
 * What one publish costs Redis: the publish script runs every Redis command it needs once, so that a
 * publish to a channel in steady use (messages stored, the oldest trimmed) stays a short script. The
 * commands are counted inside the script (a local `redis` wrapping the real one), so nothing else
 * running on the server blurs the count.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { after, before, describe, it, test } from 'node:test';
import { createClient } from 'redis';
import { channelKeys, keyList } from '../../src/store/redis/keys.js';
import { SCRIPTS } from '../../src/store/redis/scripts.js';
import { freePort, kill, redisServerSkipReason, startRedis } from './redis-server.js';

const skip = redisServerSkipReason('the cost of a publish script');

/** The publish script, answering how many Redis commands it ran as a third element. */
const counted = `local real, calls = redis, 0
local redis = setmetatable({
  call = function(...) calls = calls + 1; return real.call(...) end,
  pcall = function(...) calls = calls + 1; return real.pcall(...) end,
}, { __index = real })
${SCRIPTS.publish.source.replace(/return \{lifecycle, result\}\n$/, 'return {lifecycle, result, calls}\n')}`;

if (skip) test('the cost of a publish script', { skip }, () => {});
else
  describe('RedisStore publish script', () => {
    let redis: ChildProcess;
    let admin: ReturnType<typeof createClient>;

    before(async () => {
      const port = await freePort();
      redis = await startRedis(port);
      admin = createClient({ url: `redis://127.0.0.1:${port}` });
      await admin.connect();
    });
    after(async () => {
      admin.destroy();
      await kill(redis);
    });

    /** Publishes `text` with rules (store, min, max, messageTimeout, channelTimeout); returns the commands run. */
    async function publish(channel: string, text: string, rules: string[], idempotencyKey = ''): Promise<number> {
      const keys = keyList(channelKeys('cost', channel));
      const reply = (await admin.sendCommand(['EVAL', counted, String(keys.length), ...keys, '0', '0', 'nowhere', text, '0', '', '0', '', ...rules, idempotencyKey, '0', '0', '', '0', ''])) as unknown[];
      assert.equal(reply.length, 3, `the script answered ${JSON.stringify(reply)}`);
      return Number(reply[2]);
    }

    it('a publish to a channel in steady use runs at most 14 Redis commands', async () => {
      // maxMessages 10, messageTimeout 1 h, minMessages 1: from the 11th publish on, each one trims the oldest.
      const rules = ['1', '1', '10', '3600000', '0'];
      for (let i = 0; i < 12; i++) await publish('/steady', `m${i}`, rules);
      const cost = await publish('/steady', 'steady', rules);
      // TIME, HMGET, HSET (rules), HGETALL (leases), XLEN, XRANGE (the oldest may have expired), ZCARD,
      // XREVRANGE (the previous stored message), XADD, EXISTS (idempotency keys), XTRIM, HSET, PUBLISH, PTTL.
      assert.ok(cost <= 14, `a steady publish ran ${cost} Redis commands`);
      assert.equal(await admin.xLen(channelKeys('cost', '/steady').messages), 10);
    });

    it('the first publish of a channel and a publish that stores nothing stay as short', async () => {
      assert.ok((await publish('/first', 'a', ['1', '1', '10', '3600000', '0'])) <= 14);
      assert.ok((await publish('/unstored', 'a', ['0', '0', '0', '0', '0'])) <= 14);
      assert.ok((await publish('/unstored', 'b', ['0', '0', '0', '0', '0'])) <= 14);
    });
  });
