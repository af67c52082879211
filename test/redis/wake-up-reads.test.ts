/**
 * RedisStore answers long-polls from what the wake-ups of a watched channel told it, and counts
 * subscribers in batches: checked on a redis-server of the test's own, whose scripts are counted
 * (INFO commandstats), with a second store standing for another process sharing it.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { after, before, describe, it, test } from 'node:test';
import { createClient } from 'redis';
import { DEFAULT_BUFFER_RULES, type BufferRules, type MessageId } from '../../src/index.js';
import { RedisStore } from '../../src/redis.js';
import type { ChannelEvent, JoinRequest, NextOrJoinResult } from '../../src/store/channel-store.js';
import { channelKeys, keyList } from '../../src/store/redis/keys.js';
import { SCRIPTS } from '../../src/store/redis/scripts.js';
import { waitFor } from '../helpers/wait.js';
import { freePort, kill, redisServerSkipReason, startRedis } from './redis-server.js';

const skip = redisServerSkipReason('RedisStore reads from its wake-ups');

if (skip) test('RedisStore reads from its wake-ups', { skip }, () => {});
else
  describe('RedisStore: long-polls answered from the wake-ups, subscribers counted in batches', () => {
    let redis: ChildProcess;
    let url: string;
    let store: RedisStore;
    /** Another process sharing the store. */
    let other: RedisStore;
    let admin: ReturnType<typeof createClient>;
    let n = 0;
    const channel = () => `/wake-${++n}`;
    const request = (subscriberId: string, over: Partial<JoinRequest> = {}): JoinRequest => ({
      subscriberId,
      concurrency: 'broadcast',
      maxSubscribers: 0,
      create: true,
      channelTimeout: 0,
      ...over,
    });
    let counted = 0;
    /** Scripts Redis has run since the last call. */
    const scriptsRun = async () => {
      const info = await admin.info('commandstats');
      const calls = [...info.matchAll(/cmdstat_(?:evalsha|eval):calls=(\d+)/g)].reduce((sum, m) => sum + Number(m[1]), 0);
      const since = calls - counted;
      counted = calls;
      return since;
    };
    const publish = (store: RedisStore, ch: string, text: string, rules: BufferRules = DEFAULT_BUFFER_RULES) => store.publish(ch, { data: Buffer.from(text), contentType: undefined }, rules);
    const members = async (ch: string) => (await admin.zRange(channelKeys('wake', ch).subscribers, 0, -1)).sort();

    /** Watches `ch` as a relay does; `events` gets its wake-ups. Resolves once the view knows the channel (one read). */
    async function watched(ch: string): Promise<{ events: ChannelEvent[]; unwatch: () => void }> {
      const events: ChannelEvent[] = [];
      const unwatch = await store.watch(ch, (_name, event) => events.push(event));
      // The first read made while the watch is live teaches the view the channel's newest id.
      await store.next(ch, undefined);
      return { events, unwatch };
    }

    before(async () => {
      const port = await freePort();
      redis = await startRedis(port);
      url = `redis://127.0.0.1:${port}`;
      admin = createClient({ url });
      await admin.connect();
      store = new RedisStore({ url, prefix: 'wake', heartbeatInterval: '200ms' });
      other = new RedisStore({ url, prefix: 'wake', heartbeatInterval: '200ms' });
      await Promise.all([store.ready(), other.ready()]);
      // Redis learns each script on its first use (NOSCRIPT, then EVAL): not what is counted here.
      const warm = channel();
      const w = await watched(warm);
      await store.nextOrJoin(warm, undefined, request('warm'));
      await publish(store, warm, 'x');
      await store.leave(warm, ['warm']);
      w.unwatch();
    });
    after(async () => {
      await Promise.all([store.close(), other.close()]);
      admin.destroy();
      await kill(redis);
    });

    it('a poll whose cursor is the newest id heard parks at once, without a script; a recent message answers the one before it', async () => {
      const ch = channel();
      const { events, unwatch } = await watched(ch);
      const one = await publish(store, ch, 'one');
      await waitFor('the wake-up', () => events.length === 1);
      await scriptsRun();
      const parked = store.nextOrJoin(ch, one.message.id, request('a'));
      assert.ok(!(parked instanceof Promise), 'answered at once');
      assert.deepEqual((parked as NextOrJoinResult).joined, { ok: true });
      assert.equal(await scriptsRun(), 0, 'no script (it is counted in Redis by the next batch)');
      // The parked one is counted in Redis by the next batch (within a few ms): before anything else is counted.
      await waitFor('the batch in Redis', async () => (await members(ch)).length === 1);
      const two = await publish(store, ch, 'two');
      await waitFor('the wake-up', () => events.length === 2);
      await scriptsRun();
      const first = store.nextOrJoin(ch, one.message.id, request('b')) as NextOrJoinResult;
      const second = store.nextOrJoin(ch, one.message.id, request('c')) as NextOrJoinResult;
      assert.equal(first.message?.data.toString(), 'two');
      assert.equal(second.message, first.message, 'one object for every answer of a message');
      assert.deepEqual(first.message?.id, two.message.id);
      assert.equal(await scriptsRun(), 0, 'answered from memory');
      await store.leave(ch, ['a']);
      unwatch();
    });

    it('what the wake-ups cannot vouch for is read from Redis, and answers the same', async () => {
      const ch = channel();
      const { events, unwatch } = await watched(ch);
      const zero = await publish(store, ch, 'zero');
      // Stored under maxMessages 1 each: the second publish trims the first.
      const one = await publish(store, ch, 'one', { ...DEFAULT_BUFFER_RULES, maxMessages: 1 });
      await publish(store, ch, 'two', { ...DEFAULT_BUFFER_RULES, maxMessages: 1 });
      await waitFor('the wake-ups', () => events.length === 3);
      await scriptsRun();
      const trimmed = await store.nextOrJoin(ch, zero.message.id, request('t'));
      assert.equal(trimmed.message?.data.toString(), 'two', 'Redis no longer holds "one"');
      assert.equal(await scriptsRun(), 1);
      const fresh = store.nextOrJoin(ch, one.message.id, request('f')) as NextOrJoinResult;
      assert.equal(fresh.message?.data.toString(), 'two', 'from memory');
      assert.equal(await scriptsRun(), 0);
      // Not stored: only the subscribers waiting then got it.
      const unstored = await publish(store, ch, 'gone', { ...DEFAULT_BUFFER_RULES, storeMessages: false });
      await waitFor('the wake-up', () => events.length === 4);
      await scriptsRun();
      const after = await store.nextOrJoin(ch, unstored.info.lastMessageId!, request('u'));
      assert.deepEqual(after.joined, { ok: true }, 'its id is the newest: nothing follows');
      const before = await store.nextOrJoin(ch, one.message.id, request('v'));
      assert.equal(before.message?.data.toString(), 'two');
      await store.leave(ch, ['u']);
      unwatch();
    });

    it('counts reach Redis in one batch; a poll coming back takes the answered one\'s place; this process counts its own exactly', async () => {
      const ch = channel();
      const { events, unwatch } = await watched(ch);
      const one = await publish(store, ch, 'one');
      await waitFor('the wake-up', () => events.length === 1);
      for (const id of ['a', 'b', 'c']) store.nextOrJoin(ch, one.message.id, request(id));
      assert.equal((await store.info(ch))?.subscribers, 3, 'this process counts its batch at once');
      await waitFor('the batch in Redis', async () => (await other.info(ch))?.subscribers === 3);
      assert.deepEqual(await members(ch), ['a', 'b', 'c'].map((id) => `${store.processId}|${id}`).sort());
      // Two answered; one comes back before the batch goes: it takes an answered one's place in Redis.
      void store.leave(ch, ['a', 'b']);
      store.nextOrJoin(ch, one.message.id, request('d'));
      assert.equal((await publish(store, ch, 'two')).info.subscribers, 2, 'the publishing process counts what waits now');
      await waitFor('the batch in Redis', async () => (await other.info(ch))?.subscribers === 2);
      const left = await members(ch);
      assert.equal(left.length, 2);
      assert.ok(left.includes(`${store.processId}|c`));
      assert.ok(!left.includes(`${store.processId}|d`), 'd counts in the place of a or b');
      await store.leave(ch, ['c', 'd']);
      assert.equal((await other.info(ch))?.subscribers, 0, 'a leave resolves once Redis counted them out');
      unwatch();
    });

    it("this process's own publish reaches its watchers before publish() resolves, and its wake-up is not handed on again", async () => {
      const ch = channel();
      const { events, unwatch } = await watched(ch);
      // The first wake-up teaches the view the channel's sequence numbers.
      await publish(store, ch, 'first');
      await waitFor('the first wake-up', () => events.length === 1);
      for (let i = 0; i < 20; i++) {
        await publish(store, ch, `m${i}`);
        assert.equal(events.length, 2 + i, `message ${i} heard when its publish resolved`);
      }
      // Another process's publish: its wake-up comes after every wake-up of ours.
      await publish(other, ch, 'last');
      await waitFor('the wake-up of the other process', () => events.some((e) => e.type === 'message' && e.message.data.toString() === 'last'));
      const texts = events.map((e) => (e.type === 'message' ? e.message.data.toString() : e.type));
      assert.deepEqual(texts, ['first', ...Array.from({ length: 20 }, (_, i) => `m${i}`), 'last'], 'each message once, in order');
      // Polls after it are answered from what was heard.
      const polled = store.nextOrJoin(ch, (events.at(-3) as Extract<ChannelEvent, { type: 'message' }>).message.id, request('h'));
      assert.ok(!(polled instanceof Promise));
      assert.equal((polled as NextOrJoinResult).message?.data.toString(), 'm19');
      unwatch();
    });

    /** Two watched channels with a message each, whose newest ids this process heard. */
    async function twoChannels() {
      const ch = channel();
      const elsewhere = channel();
      const first = await watched(ch);
      const second = await watched(elsewhere);
      const one = await publish(store, ch, 'one');
      newestElsewhere.set(elsewhere, (await publish(store, elsewhere, 'elsewhere')).message.id);
      await waitFor('the wake-ups', () => first.events.length === 1 && second.events.length === 1);
      return { ch, elsewhere, one, unwatch: () => (second.unwatch(), first.unwatch()) };
    }
    const newestElsewhere = new Map<string, MessageId>();

    /**
     * Counts `id` out of `ch` and, in the same turn, `joining` in on `elsewhere` (at its newest id:
     * counted in with a batch, not by a script); resolves once that batch is in Redis.
     */
    async function leaveBesideAJoin(ch: string, id: string, elsewhere: string, joining: string): Promise<void> {
      void store.leave(ch, [id]);
      assert.deepEqual(store.nextOrJoin(elsewhere, newestElsewhere.get(elsewhere), request(joining)), { joined: { ok: true } }, 'joined at once, with a batch');
      await waitFor('the other batch in Redis', async () => (await other.info(elsewhere))?.subscribers === 1);
    }

    it('an answered long-poll stays counted a moment: coming back, it takes its own place and Redis hears nothing', async () => {
      const { ch, elsewhere, one, unwatch } = await twoChannels();
      store.nextOrJoin(ch, one.message.id, request('l1'));
      await waitFor('counted in Redis', async () => (await other.info(ch))?.subscribers === 1);
      // Answered; the other channel's batch goes within 5 ms, this one's not yet.
      await leaveBesideAJoin(ch, 'l1', elsewhere, 'e1');
      assert.equal((await other.info(ch))?.subscribers, 1, 'the answered one is still counted');
      assert.equal((await store.info(ch))?.subscribers, 0, 'this process counts what waits now');
      // It comes back: in its own place.
      store.nextOrJoin(ch, one.message.id, request('l2'));
      assert.deepEqual(await members(ch), [`${store.processId}|l1`]);
      // Answered for good: counted out once the moment has passed.
      await store.leave(ch, ['l2']);
      assert.equal((await other.info(ch))?.subscribers, 0, 'a leave resolves once Redis counted them out');
      await store.leave(elsewhere, ['e1']);
      unwatch();
    });

    it('a long-poll that keeps coming back in its own place: its channel was requested just now, here at once, elsewhere from the next heartbeat', async () => {
      const ch = channel();
      const w = await watched(ch);
      const one = await publish(store, ch, 'one');
      await waitFor('the wake-up', () => w.events.length === 1);
      let id = 0;
      store.nextOrJoin(ch, one.message.id, request(`r${id}`));
      await waitFor('counted in Redis', async () => (await other.info(ch))?.subscribers === 1);
      // Answered and back every 100 ms for 2.5 s: each time in its own place, with no count to send.
      for (const until = Date.now() + 2500; Date.now() < until; ) {
        await new Promise((r) => setTimeout(r, 100));
        void store.leave(ch, [`r${id}`]);
        store.nextOrJoin(ch, one.message.id, request(`r${++id}`));
      }
      assert.equal((await store.info(ch))!.requested, 0, 'this process answered the polls');
      // heartbeatInterval is 200 ms here.
      const info = await other.info(ch);
      assert.ok(info!.requested <= 1, `requested ${info!.requested} s ago, as another process sees it`);
      await store.leave(ch, [`r${id}`]);
      w.unwatch();
    });

    it('subscribers leaving do not make the channel look requested just now', async () => {
      const ch = channel();
      const w = await watched(ch);
      const one = await publish(store, ch, 'one');
      await waitFor('the wake-up', () => w.events.length === 1);
      store.nextOrJoin(ch, one.message.id, request('s1'));
      await waitFor('counted in Redis', async () => (await other.info(ch))?.subscribers === 1);
      await new Promise((r) => setTimeout(r, 2100));
      // Gone (a stream closing, a long-poll answered and not back): counted out with the next batch.
      await store.leave(ch, ['s1']);
      assert.equal((await other.info(ch))?.subscribers, 0);
      const requested = (await other.info(ch))!.requested;
      assert.ok(requested >= 2, `requested ${requested} s ago: the leave is not a request`);
      w.unwatch();
    });

    it('on a channel with a subscriber limit, those who leave are counted out with the next batch', async () => {
      const { ch, elsewhere, one, unwatch } = await twoChannels();
      assert.equal((await store.nextOrJoin(ch, one.message.id, request('s1', { maxSubscribers: 2 }))).joined?.ok, true);
      await leaveBesideAJoin(ch, 's1', elsewhere, 'e2');
      assert.equal((await other.info(ch))?.subscribers, 0, 'counted out in the same batch: the limit is decided in Redis');
      await store.leave(elsewhere, ['e2']);
      unwatch();
    });

    it('on a channel whose messages are not stored, an answered long-poll does not stay counted: the next message could not reach it', async () => {
      const unstored = { ...DEFAULT_BUFFER_RULES, storeMessages: false, channelTimeout: 60_000 };
      const ch = channel();
      const elsewhere = channel();
      const first = await watched(ch);
      const second = await watched(elsewhere);
      const one = await publish(store, ch, 'one', unstored);
      newestElsewhere.set(elsewhere, (await publish(store, elsewhere, 'elsewhere')).message.id);
      await waitFor('the wake-ups', () => first.events.length === 1 && second.events.length === 1);
      store.nextOrJoin(ch, one.message.id, request('n1'));
      await waitFor('counted in Redis', async () => (await other.info(ch))?.subscribers === 1);
      await leaveBesideAJoin(ch, 'n1', elsewhere, 'e4');
      assert.equal((await other.info(ch))?.subscribers, 0, 'counted out with the next batch, as every process sees it');
      store.nextOrJoin(ch, one.message.id, request('n2'));
      await waitFor('counted in Redis', async () => (await other.info(ch))?.subscribers === 1);
      // Answered, and this process publishes before the batch goes: it counts what waits here now.
      void store.leave(ch, ['n2']);
      assert.equal((await publish(store, ch, 'two', unstored)).info.subscribers, 0, 'its publisher is not told it reached anyone');
      await store.leave(elsewhere, ['e4']);
      second.unwatch();
      first.unwatch();
    });

    it('a long-poll parked from the wake-ups on a channel removed meanwhile (idle, not stored) makes it again, as its join would: counted, the next message reaches it', async () => {
      const unstored = { ...DEFAULT_BUFFER_RULES, storeMessages: false, channelTimeout: 0 };
      const ch = channel();
      const w = await watched(ch);
      assert.ok('joined' in (await store.nextOrJoin(ch, undefined, request('u1'))));
      await waitFor('counted in Redis', async () => (await other.info(ch))?.subscribers === 1);
      const one = await publish(other, ch, 'one', unstored);
      await waitFor('the wake-up', () => w.events.length === 1);
      await store.leave(ch, ['u1']);
      assert.equal(await other.info(ch), undefined, 'nothing stored, nobody waiting: removed');
      // Parked at once from what the wake-ups told: counted in with the next batch.
      assert.ok('joined' in (await store.nextOrJoin(ch, one.message.id, request('u2'))));
      await waitFor('counted in Redis', async () => (await other.info(ch))?.subscribers === 1);
      const two = await publish(other, ch, 'two', unstored);
      assert.equal(two.info.subscribers, 1, 'its publisher is told it reached the subscriber');
      assert.deepEqual(two.message.previousId, one.message.id, 'and the ids go on: no loss signal for it');
      await store.leave(ch, ['u2']);
      w.unwatch();
    });

    it('a gap in the sequence of wake-ups makes the parked subscribers read again', async () => {
      const ch = channel();
      const { events, unwatch } = await watched(ch);
      const one = await publish(store, ch, 'one');
      await waitFor('the wake-up', () => events.length === 1);
      store.nextOrJoin(ch, one.message.id, request('p'));
      await lostWakeUp(ch, 'missed');
      await publish(store, ch, 'three');
      // At once, from the wake-up itself (the heartbeat would take over a second).
      await waitFor('a resync', () => events.some((e) => e.type === 'resync'), 800);
      const read = await store.nextOrJoin(ch, one.message.id, request('q'));
      assert.equal(read.message?.data.toString(), 'missed', 'read from Redis, not answered from the view');
      await store.leave(ch, ['p']);
      unwatch();
    });

    it('a missed last wake-up is found by the heartbeat: the parked subscribers read again', async () => {
      const ch = channel();
      const { events, unwatch } = await watched(ch);
      const one = await publish(store, ch, 'one');
      await waitFor('the wake-up', () => events.length === 1);
      store.nextOrJoin(ch, one.message.id, request('h'));
      await lostWakeUp(ch, 'missed');
      await waitFor('a resync', () => events.some((e) => e.type === 'resync'), 5000);
      await store.leave(ch, ['h']);
      unwatch();
    });

    it('a deleted channel is forgotten: its subscribers no longer count for this process', async () => {
      const ch = channel();
      const { events, unwatch } = await watched(ch);
      await store.nextOrJoin(ch, undefined, request('z'));
      await waitFor('counted', async () => (await other.info(ch))?.subscribers === 1);
      const mine = async () => (await store.summary()).workers.find((w) => w.pid === process.pid && w.subscribers > 0);
      assert.ok(await mine());
      await other.delete(ch);
      await waitFor('the deletion', () => events.some((e) => e.type === 'deleted'));
      // Each process tells the others its count within a second of a change.
      await waitFor('no subscriber counted', async () => (await store.summary()).workers.reduce((sum, w) => sum + w.subscribers, 0) === 0, 3000);
      unwatch();
    });

    /** Publishes `text` on `ch` with its wake-up sent nowhere, as if this process's pub/sub missed it. */
    async function lostWakeUp(ch: string, text: string): Promise<void> {
      const keys = channelKeys('wake', ch);
      await admin.sendCommand(['EVAL', SCRIPTS.publish.source, String(keyList(keys).length), ...keyList(keys), '0', '0', 'nowhere', text, '0', '', '0', '', '1', '1', '10', '3600000', '0', '', '0', '0', '', '0', '']);
    }
  });
