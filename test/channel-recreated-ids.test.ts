/**
 * A channel removed (idle with channelTimeout 0, or DELETEd) and created again within the same second
 * must not hand out ids it already gave: a subscriber holding `T:0` would skip the new `T:0`.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryStore } from '../src/index.js';
import { DEFAULT_BUFFER_RULES } from '../src/protocol/buffer-rules.js';
import { missedBefore } from '../src/protocol/cursor.js';

const unstored = { ...DEFAULT_BUFFER_RULES, storeMessages: false, channelTimeout: 0 };
const msg = (text: string) => ({ data: Buffer.from(text), contentType: undefined });

describe('MemoryStore: ids of a channel recreated in the same second', () => {
  it('continue after the removed channel\'s last id', async () => {
    let now = 1_795_000_000_250;
    const store = new MemoryStore({ now: () => now });
    const first = await store.publish('/c', msg('m1'), unstored);
    assert.equal(await store.info('/c'), undefined, 'an unstored publish leaves an idle channel, removed at once');
    now += 100;
    const second = await store.publish('/c', msg('m2'), unstored);
    assert.equal(second.message.id.time, first.message.id.time);
    assert.ok(second.message.id.tag > first.message.id.tag, `second id ${JSON.stringify(second.message.id)} must follow ${JSON.stringify(first.message.id)}`);
    await store.close();
  });

  it('also after DELETE, and the new channel still reads as new', async () => {
    const now = 1_795_000_000_100;
    const store = new MemoryStore({ now: () => now });
    const a = await store.publish('/d', msg('a'), DEFAULT_BUFFER_RULES);
    assert.ok(await store.delete('/d'));
    const b = await store.publish('/d', msg('b'), DEFAULT_BUFFER_RULES);
    assert.ok(b.message.id.tag > a.message.id.tag);
    assert.deepEqual(b.message.previousId, a.message.id, 'the removed channel\'s last id comes before it');
    assert.equal(b.info.messages, 1);
    await store.close();
  });

  it('a subscriber still behind the removed channel\'s last message gets the loss signal; one that had it does not', async () => {
    let now = 1_795_000_000_100;
    const store = new MemoryStore({ now: () => now });
    // Messages that expire with nothing kept: the channel empties, is removed, and a publish recreates it.
    const expiring = { ...DEFAULT_BUFFER_RULES, minMessages: 0, messageTimeout: 300, channelTimeout: 0 };
    const m1 = await store.publish('/g', msg('m1'), expiring);
    const m2 = await store.publish('/g', msg('m2'), expiring);
    now += 400;
    assert.equal((await store.next('/g', m1.message.id)).message, undefined, 'm2 expired, the channel with it');
    const m3 = await store.publish('/g', msg('m3'), expiring);
    assert.equal(m3.message.id.time, m1.message.id.time, 'recreated within the same second');
    assert.ok(missedBefore(m1.message.id, m3.message), 'after m1, m2 was missed: the loss signal');
    assert.ok(!missedBefore(m2.message.id, m3.message), 'after m2, nothing was missed');
    await store.close();
  });

  it('once the second is over, the removed channel is forgotten: a new history, its tag from the clock', async () => {
    let now = 1_795_000_000_900;
    const store = new MemoryStore({ now: () => now });
    await store.publish('/e', msg('a'), unstored);
    now += 1_000;
    const next = await store.publish('/e', msg('b'), unstored);
    // 900 ms into the second: the first message of a history takes 1 + the microsecond as tag.
    assert.deepEqual(next.message.id, { time: 1_795_000_001, tag: 900_001 });
    assert.deepEqual(next.message.previousId, { time: 1_795_000_001, tag: 900_000 });
    await store.close();
  });

  it('a channel a subscriber makes again within the removed one\'s last second follows its last id for as long as it lives', async () => {
    let now = 1_795_000_000_900;
    const store = new MemoryStore({ now: () => now });
    const a = await store.publish('/j', msg('a'), unstored);
    assert.deepEqual(await store.startCursor('/j', 0), a.message.id, 'removed, its last id is still the newest within its second');
    const joined = await store.join('/j', { subscriberId: 's1', concurrency: 'broadcast', maxSubscribers: 0, create: true, channelTimeout: 0 });
    assert.ok(joined.ok);
    now += 1_000;
    assert.deepEqual(await store.startCursor('/j', 0), a.message.id, 'the next second too');
    const b = await store.publish('/j', msg('b'), unstored);
    assert.deepEqual(b.message.previousId, a.message.id, 'a subscriber that had a missed nothing: no loss signal');
    assert.deepEqual(b.message.id, { time: 1_795_000_001, tag: 0 });
    await store.leave('/j', ['s1']);
    now += 1_000;
    assert.equal(await store.startCursor('/j', 0), undefined, 'removed a second ago: forgotten');
    await store.close();
  });

  it('a channel that keeps publishing counts from 0 in each new second', async () => {
    let now = 1_795_000_000_500;
    const store = new MemoryStore({ now: () => now });
    await store.publish('/f', msg('a'), DEFAULT_BUFFER_RULES);
    now += 1_000;
    const next = await store.publish('/f', msg('b'), DEFAULT_BUFFER_RULES);
    const again = await store.publish('/f', msg('c'), DEFAULT_BUFFER_RULES);
    assert.deepEqual([next.message.id, again.message.id], [{ time: 1_795_000_001, tag: 0 }, { time: 1_795_000_001, tag: 1 }]);
    await store.close();
  });
});

describe('RedisStore: ids of a channel recreated in the same second', async () => {
  const { RedisStore } = await import('../src/redis.js');
  const { deleteKeys, REDIS_URL, redisSkipReason, testPrefix } = await import('./redis/redis-env.js');
  const { channelKeys } = await import('../src/store/redis/keys.js');
  const { createClient } = await import('redis');
  const skip = await redisSkipReason();
  const prefix = testPrefix('recreated-ids');

  it('continue after the removed channel\'s last id (idle removal and DELETE)', { skip }, async () => {
    const store = new RedisStore({ url: REDIS_URL, prefix });
    try {
      // Redis' clock decides the second: start early in one so that both publishes share it.
      await new Promise((r) => setTimeout(r, 1000 - (Date.now() % 1000) + 5));
      const first = await store.publish('/r', msg('m1'), unstored);
      assert.equal(await store.info('/r'), undefined, 'an unstored publish leaves an idle channel, removed at once');
      const second = await store.publish('/r', msg('m2'), DEFAULT_BUFFER_RULES);
      assert.ok(await store.delete('/r'));
      const third = await store.publish('/r', msg('m3'), DEFAULT_BUFFER_RULES);
      const ids = [first, second, third].map((p) => p.message.id);
      assert.equal(ids[2]!.time, ids[0]!.time, `all three in one second (${JSON.stringify(ids)}); a slow machine may cross a second`);
      const [t0, t1, t2] = ids.map((id) => id.tag) as [number, number, number];
      assert.ok(t0 >= 1, 'a first message takes its tag from the microsecond of its second');
      assert.deepEqual([t1, t2], [t0 + 1, t0 + 2], 'each recreated channel continues after the last id');
      assert.deepEqual(third.message.previousId, second.message.id, 'the removed channel\'s last id comes before it');
      assert.ok(missedBefore(first.message.id, third.message), 'a subscriber that had only m1 missed m2: the loss signal');
      assert.ok(!missedBefore(second.message.id, third.message));
      // Kept to the last millisecond of that second, as MemoryStore keeps it, and not into the next.
      assert.ok(await store.delete('/r'));
      const client = createClient({ url: REDIS_URL });
      await client.connect();
      try {
        assert.equal(await client.pExpireTime(channelKeys(prefix, '/r').floor), (ids[2]!.time + 1) * 1000 - 1);
      } finally {
        await client.quit();
      }
    } finally {
      await store.close();
      await deleteKeys(prefix);
    }
  });

  it('a channel a subscriber makes again within that second follows the removed one\'s last id for as long as it lives', { skip }, async () => {
    const store = new RedisStore({ url: REDIS_URL, prefix: `${prefix}-floor` });
    const nextSecond = () => new Promise((r) => setTimeout(r, 1000 - (Date.now() % 1000) + 5));
    try {
      await nextSecond();
      const a = await store.publish('/k', msg('a'), unstored);
      assert.equal(await store.info('/k'), undefined, 'removed at once');
      assert.ok((await store.join('/k', { subscriberId: 's1', concurrency: 'broadcast', maxSubscribers: 0, create: true, channelTimeout: 0 })).ok);
      await nextSecond();
      assert.deepEqual(await store.startCursor('/k', 0), a.message.id, 'the next second too');
      const b = await store.publish('/k', msg('b'), unstored);
      assert.deepEqual(b.message.previousId, a.message.id, 'a subscriber that had a missed nothing: no loss signal');
      assert.ok(b.message.id.time > a.message.id.time);
    } finally {
      await store.close();
      await deleteKeys(`${prefix}-floor`);
    }
  });
});
