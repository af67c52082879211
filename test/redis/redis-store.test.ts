/**
 * RedisStore's semantics at the ChannelStore level, on a real Redis: the same answers as MemoryStore
 * (ids, buffer rules, idle clock, joins), plus what only Redis has (keys expiring by themselves,
 * one subscription per channel, counts shared by stores in different processes).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it, test } from 'node:test';
import { createClient, createSentinel } from 'redis';
import { compareIds, DEFAULT_BUFFER_RULES, type BufferRules, type ChannelEvent, type MessageId } from '../../src/index.js';
import { RedisStore } from '../../src/redis.js';
import { channelKeys } from '../../src/store/redis/keys.js';
import { waitFor } from '../helpers/wait.js';
import { deleteKeys, REDIS_URL, redisSkipReason, testPrefix } from './redis-env.js';

const skip = await redisSkipReason();
const rules = (over: Partial<BufferRules> = {}): BufferRules => ({ ...DEFAULT_BUFFER_RULES, ...over });
const msg = (text: string | Buffer, contentType?: string, eventType?: string) => ({
  data: Buffer.isBuffer(text) ? text : Buffer.from(text),
  contentType,
  eventType,
});
const join = (subscriberId: string, over: Partial<Parameters<RedisStore['join']>[1]> = {}) => ({
  subscriberId,
  concurrency: 'broadcast' as const,
  maxSubscribers: 0,
  create: true,
  channelTimeout: 0,
  ...over,
});

if (skip) test('RedisStore', { skip }, () => {});
else
  describe('RedisStore', () => {
    const prefix = testPrefix('store');
    let store: RedisStore;
    let other: RedisStore;
    let raw: ReturnType<typeof createClient>;
    let counter = 0;
    const channel = () => `/store-${++counter}`;
    const exists = async (name: string) => (await raw.exists(channelKeys(prefix, name).meta)) === 1;

    before(async () => {
      store = new RedisStore({ url: REDIS_URL, prefix, heartbeatInterval: 100 });
      // Another process's store, as far as Redis can tell.
      other = new RedisStore({ url: REDIS_URL, prefix, heartbeatInterval: 100 });
      raw = createClient({ url: REDIS_URL });
      raw.on('error', () => {});
      await Promise.all([store.ready(), other.ready(), raw.connect()]);
    });
    after(async () => {
      await store.close();
      await other.close();
      raw.destroy();
      await deleteKeys(prefix);
    });

    describe('options', () => {
      it('rejects bad options with a TypeError naming the option', () => {
        assert.throws(() => new RedisStore({ prefix: 'a{b}' }), { name: 'TypeError', message: /"prefix"/ });
        assert.throws(() => new RedisStore({ url: 'http://x' }), { name: 'TypeError', message: /"url"/ });
        assert.throws(() => new RedisStore({ commandTimeout: 0 }), { name: 'TypeError', message: /"commandTimeout"/ });
        assert.throws(() => new RedisStore({ heartbeatInterval: 'soon' }), { name: 'TypeError', message: /heartbeatInterval/ });
        assert.throws(() => new RedisStore({ client: {} as never }), { name: 'TypeError', message: /"client"/ });
        assert.throws(() => new RedisStore({ urll: 'redis://x' } as never), { name: 'TypeError', message: /unknown RedisStore option "urll"/ });
        assert.throws(() => new RedisStore({ url: REDIS_URL, client: raw as never }), { name: 'TypeError', message: /"url" and "client" exclude each other/ });
        assert.throws(() => new RedisStore({ sentinel: { name: 'mymaster', sentinelRootNodes: [] } }), { name: 'TypeError', message: /"sentinel" must be node-redis sentinel options/ });
        assert.throws(() => new RedisStore({ sentinel: { name: 'mymaster', sentinelRootNodes: [{ host: '127.0.0.1', port: 26379 }] }, url: REDIS_URL }), {
          name: 'TypeError',
          message: /"url" and "sentinel" exclude each other/,
        });
        const sentinelClient = createSentinel({ name: 'mymaster', sentinelRootNodes: [{ host: '127.0.0.1', port: 26379 }] });
        assert.throws(() => new RedisStore({ client: sentinelClient as never }), { name: 'TypeError', message: /give its options as the "sentinel" option/ });
      });

      it("takes a client you give it for its options, and never connects, uses or closes it", async () => {
        const client = createClient({ url: REDIS_URL });
        client.on('error', () => {});
        const mine = new RedisStore({ client: client as never, prefix });
        assert.equal(client.isOpen, false, 'not connected by the store');
        await mine.ready();
        const id = channel();
        const { message } = await mine.publish(id, msg('via your client'), rules());
        assert.equal((await store.next(id, undefined)).message?.data.toString(), 'via your client');
        assert.deepEqual((await mine.next(id, undefined)).message?.id, message.id);
        await mine.close();
        assert.equal(client.isOpen, false, 'still yours, untouched');
        // An open client stays open.
        await client.connect();
        const again = new RedisStore({ client: client as never, prefix });
        await again.ready();
        await again.close();
        assert.equal(client.isOpen, true);
        client.destroy();
      });
    });

    describe('publish and ids', () => {
      it('ids come from Redis time, grow by tag within a second, and chain previousId', async () => {
        const id = channel();
        const [time] = (await raw.sendCommand(['TIME'])) as [string, string];
        const ids: MessageId[] = [];
        for (let i = 0; i < 5; i++) {
          const { message, info } = await (i % 2 ? other : store).publish(id, msg(`m${i}`), rules());
          // The first names the instant before it (its tag is 1 + the microsecond of Redis TIME).
          assert.deepEqual(message.previousId, ids.at(-1) ?? { time: message.id.time, tag: message.id.tag - 1 });
          assert.deepEqual(info.lastMessageId, message.id);
          ids.push(message.id);
        }
        assert.ok(Math.abs(ids[0]!.time - Number(time)) <= 2, 'seconds of Redis TIME');
        for (let i = 1; i < ids.length; i++) assert.ok(compareIds(ids[i - 1]!, ids[i]!) < 0, 'strictly growing');
        const info = await store.info(id);
        assert.equal(info?.messages, 5);
        assert.equal(info?.requested, -1, 'never requested');
      });

      it('never goes back when the clock does (a last id ahead of Redis time)', async () => {
        const id = channel();
        await store.publish(id, msg('a'), rules());
        const ahead = Math.floor(Date.now() / 1000) + 3600;
        await raw.hSet(channelKeys(prefix, id).meta, 'last', `${ahead}-7`);
        const { message } = await store.publish(id, msg('b'), rules());
        assert.deepEqual(message.id, { time: ahead, tag: 8 });
        assert.deepEqual(message.previousId, { time: ahead, tag: 7 });
      });

      it('stores bodies, content types and event types byte for byte', async () => {
        const id = channel();
        const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
        const events: ChannelEvent[] = [];
        const unwatch = await other.watch(id, (_c, e) => events.push(e));
        const { message } = await store.publish(id, msg(bytes, 'text/x-ünï\ncode', 'ev\n\u00e9'), rules());
        const read = (await store.next(id, undefined)).message!;
        assert.deepEqual(read, { ...message });
        assert.ok(read.data.equals(bytes));
        await waitFor('the wake-up', () => events.length === 1);
        const event = events[0]!;
        assert.equal(event.type, 'message');
        if (event.type !== 'message') return;
        assert.ok(event.message.data.equals(bytes));
        assert.equal(event.message.contentType, 'text/x-ünï\ncode');
        assert.equal(event.message.eventType, 'ev\n\u00e9');
        assert.equal(event.previous, undefined);
        unwatch();
      });

      it('storeMessages false: delivered, not stored; ids still chain; `previous` is the newest stored', async () => {
        const id = channel();
        const events: ChannelEvent[] = [];
        const unwatch = await store.watch(id, (_c, e) => events.push(e));
        const stored = await store.publish(id, msg('kept'), rules());
        const passing = await other.publish(id, msg('passing'), rules({ storeMessages: false }));
        const after = await other.publish(id, msg('after'), rules());
        assert.equal(passing.info.messages, 1);
        assert.deepEqual(passing.message.previousId, stored.message.id);
        assert.deepEqual(after.message.previousId, passing.message.id);
        await waitFor('3 wake-ups', () => events.length === 3);
        const previous = events.map((e) => (e.type === 'message' ? e.previous : 'other'));
        assert.deepEqual(previous, [undefined, stored.message.id, stored.message.id]);
        assert.deepEqual(
          (await store.next(id, stored.message.id)).message?.data.toString(),
          'after',
          'the unstored message is skipped by readers',
        );
        unwatch();
      });

      it('maxMessages trims the oldest', async () => {
        const id = channel();
        for (let i = 0; i < 6; i++) await store.publish(id, msg(`m${i}`), rules({ maxMessages: 3 }));
        assert.equal((await store.info(id))?.messages, 3);
        assert.equal((await store.next(id, undefined)).message?.data.toString(), 'm3');
      });

      it('messageTimeout expires messages but minMessages keeps the newest', async () => {
        const id = channel();
        for (let i = 0; i < 4; i++) await store.publish(id, msg(`m${i}`), rules({ messageTimeout: 200, minMessages: 2 }));
        await waitFor('expiry', async () => (await store.info(id))?.messages === 2);
        assert.equal((await store.next(id, undefined)).message?.data.toString(), 'm2');
        assert.equal(await exists(id), true, 'kept by minMessages');
      });
    });

    describe('the idle clock (channelTimeout)', () => {
      it('a channel whose messages all expire vanishes by itself after channelTimeout', async () => {
        const id = channel();
        await store.publish(id, msg('short'), rules({ messageTimeout: 150, minMessages: 0, channelTimeout: 150 }));
        // No store call meanwhile: Redis' own key expiry removes it.
        await waitFor('the keys to expire', async () => !(await exists(id)), 5000);
        assert.equal(await store.info(id), undefined);
      });

      it("a join names the channel's newest id when it counted the subscriber in (none on a new channel)", async () => {
        const id = channel();
        assert.deepEqual(await store.join(id, join('n1', { channelTimeout: 60_000 })), { ok: true });
        const { message } = await store.publish(id, msg('first'), rules({ storeMessages: false, channelTimeout: 60_000 }));
        assert.deepEqual(await store.join(id, join('n2', { channelTimeout: 60_000 })), { ok: true, newest: message.id });
        await store.leave(id, ['n1', 'n2']);
      });

      it('a channel left with no subscriber and no message vanishes after channelTimeout', async () => {
        const id = channel();
        assert.deepEqual(await store.join(id, join('s1', { channelTimeout: 200 })), { ok: true });
        await store.leave(id, ['s1']);
        assert.equal(await exists(id), true);
        await waitFor('the keys to expire', async () => !(await exists(id)), 5000);
      });

      it('PUT with channelTimeout 0 keeps the empty channel; with a timeout it expires', async () => {
        const kept = channel();
        const timed = channel();
        await store.create(kept, rules({ channelTimeout: 0 }));
        await store.create(timed, rules({ channelTimeout: 150 }));
        assert.equal((await raw.pTTL(channelKeys(prefix, kept).meta)) < 0, true, 'no expiry');
        await waitFor('the timed channel to expire', async () => !(await exists(timed)), 5000);
        assert.deepEqual(await store.info(kept), { messages: 0, requested: -1, subscribers: 0, lastMessageId: undefined });
      });

      it('a publish to an unused channel with channelTimeout 0 and nothing stored leaves nothing behind', async () => {
        const id = channel();
        const { info } = await store.publish(id, msg('gone'), rules({ storeMessages: false }));
        assert.equal(info.messages, 0);
        assert.equal(await store.info(id), undefined);
        assert.equal(await exists(id), false);
      });
    });

    describe('readers', () => {
      it('next() finds the first message after a cursor (whole-second cursors too) and records the request', async () => {
        const id = channel();
        const ids: MessageId[] = [];
        for (const t of ['a', 'b', 'c']) ids.push((await store.publish(id, msg(t), rules())).message.id);
        assert.equal((await store.next(id, ids[0])).message?.data.toString(), 'b');
        assert.equal((await store.next(id, ids[2])).message, undefined);
        assert.equal((await store.next(id, { time: ids[2]!.time, tag: Number.MAX_SAFE_INTEGER })).message, undefined);
        assert.equal((await store.next(id, { time: ids[0]!.time - 1, tag: Number.MAX_SAFE_INTEGER })).message?.data.toString(), 'a');
        assert.deepEqual(await store.next('/never-made', undefined), { exists: false, message: undefined });
        assert.equal((await store.info(id))?.requested, 0);
      });

      it('startCursor() answers from the n-th newest, or the last id for 0', async () => {
        const id = channel();
        const ids: MessageId[] = [];
        for (const t of ['a', 'b', 'c']) ids.push((await store.publish(id, msg(t), rules())).message.id);
        assert.deepEqual(await store.startCursor(id, 0), ids[2]);
        assert.deepEqual(await store.startCursor(id, 1), ids[1]);
        assert.deepEqual(await store.startCursor(id, 2), ids[0]);
        // All three: a cursor before the oldest (the instant before the channel's first message).
        assert.equal((await store.next(id, await store.startCursor(id, 3))).message?.data.toString(), 'a');
        assert.equal(await store.startCursor(id, 9), undefined);
        assert.equal(await store.startCursor('/never-made', 1), undefined);
      });

      it('received() drops the oldest only while more than minMessages remain', async () => {
        const id = channel();
        const a = (await store.publish(id, msg('a'), rules({ minMessages: 1 }))).message.id;
        const b = (await store.publish(id, msg('b'), rules({ minMessages: 1 }))).message.id;
        await store.received(id, b);
        assert.equal((await store.info(id))?.messages, 2, 'not the oldest: kept');
        await store.received(id, a);
        assert.equal((await store.info(id))?.messages, 1);
        await store.received(id, b);
        assert.equal((await store.info(id))?.messages, 1, 'minMessages keeps the last');
      });

      it('delete() removes every key and wakes watchers with `deleted`', async () => {
        const id = channel();
        const events: ChannelEvent[] = [];
        const unwatch = await other.watch(id, (_c, e) => events.push(e));
        await store.publish(id, msg('x'), rules());
        await store.join(id, join('s1'));
        const info = await store.delete(id);
        assert.equal(info?.messages, 1);
        assert.equal(info?.subscribers, 1);
        assert.equal(await store.delete(id), undefined);
        await waitFor('the deleted event', () => events.some((e) => e.type === 'deleted'));
        const keys = channelKeys(prefix, id);
        assert.equal(await raw.exists([keys.meta, keys.messages, keys.subscribers, keys.leases]), 0);
        unwatch();
      });
    });

    describe('waiting subscribers', () => {
      it('counts subscribers of every process; leave is idempotent', async () => {
        const id = channel();
        await store.join(id, join('a'));
        await other.join(id, join('b'));
        assert.equal((await store.publish(id, msg('x'), rules())).info.subscribers, 2);
        await other.leave(id, ['b']);
        await other.leave(id, ['b']);
        await store.leave(id, ['a', 'zzz']);
        assert.equal((await store.info(id))?.subscribers, 0);
      });

      it('concurrency first: 409 across processes while one waits', async () => {
        const id = channel();
        assert.deepEqual(await store.join(id, join('a', { concurrency: 'first' })), { ok: true });
        assert.deepEqual(await other.join(id, join('b', { concurrency: 'first' })), { ok: false, reason: 'conflict' });
      });

      it('concurrency last: the newer subscriber stays, others get a conflict event and are counted out at once', async () => {
        const id = channel();
        const events: ChannelEvent[] = [];
        const unwatch = await store.watch(id, (_c, e) => events.push(e));
        await store.join(id, join('old', { concurrency: 'last' }));
        await other.join(id, join('new', { concurrency: 'last' }));
        await waitFor('the conflict event', () => events.some((e) => e.type === 'conflict'));
        assert.deepEqual(events.at(-1), { type: 'conflict', keep: 'new' });
        assert.equal((await store.info(id))?.subscribers, 1);
        unwatch();
      });

      it('maxSubscribers: full across processes; missing when joining may not create', async () => {
        const id = channel();
        await store.join(id, join('a', { maxSubscribers: 2 }));
        await other.join(id, join('b', { maxSubscribers: 2 }));
        assert.deepEqual(await store.join(id, join('c', { maxSubscribers: 2 })), { ok: false, reason: 'full' });
        assert.deepEqual(await store.join(channel(), join('d', { create: false })), { ok: false, reason: 'missing' });
      });

      it('a process whose lease lapses is counted out', async () => {
        const id = channel();
        // A process that misses its heartbeats: one that beats once an hour, whose lease we move to the past.
        const sleepy = new RedisStore({ url: REDIS_URL, prefix, heartbeatInterval: '1h' });
        await sleepy.join(id, join('z'));
        await store.join(id, join('a'));
        assert.equal((await store.info(id))?.subscribers, 2);
        await raw.hSet(channelKeys(prefix, id).leases, sleepy.processId, '1');
        assert.equal((await store.info(id))?.subscribers, 1);
        assert.deepEqual(await raw.zRange(channelKeys(prefix, id).subscribers, 0, -1), [`${store.processId}|a`]);
        await sleepy.close();
        await store.leave(id, ['a']);
      });

      it('a live process counted out (or forgotten by Redis) is counted in again by its heartbeat', async () => {
        const id = channel();
        await other.join(id, join('b'));
        const keys = channelKeys(prefix, id);
        // Checked in the same transaction: a heartbeat may count it in again right after.
        const [removed, , counted] = await raw.multi().zRem(keys.subscribers, `${other.processId}|b`).hDel(keys.leases, other.processId).zCard(keys.subscribers).exec();
        assert.equal(removed, 1);
        assert.equal(counted, 0);
        await waitFor('the heartbeat to count it in again', async () => (await store.info(id))?.subscribers === 1, 3000);
        await other.leave(id, ['b']);
        assert.equal(await store.info(id), undefined, 'channelTimeout 0: gone with its last subscriber');
      });
    });

    describe('watch', () => {
      it('one Redis subscription per channel per store, however many watchers', async () => {
        const id = channel();
        const events = channelKeys(prefix, id).events;
        const numsub = async () => Number(((await raw.pubSubNumSub(events)) as Record<string, number>)[events]);
        const seen: number[] = [];
        const u1 = await store.watch(id, () => seen.push(1));
        const u2 = await store.watch(id, () => seen.push(2));
        assert.equal(await numsub(), 1);
        await store.publish(id, msg('x'), rules());
        await waitFor('both watchers', () => seen.length === 2);
        u1();
        u1();
        assert.equal(await numsub(), 1);
        u2();
        await waitFor('unsubscribed', async () => (await numsub()) === 0);
      });
    });
  });
