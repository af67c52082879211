import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { compareIds, DEFAULT_BUFFER_RULES, MemoryStore, type BufferRules, type ChannelEvent, type JoinRequest, type MessageId } from '../../src/index.js';
import { CHANNEL_OVERHEAD, MESSAGE_OVERHEAD, SUBSCRIBER_OVERHEAD } from '../../src/store/memory/memory-store.js';
import { waitFor } from '../helpers/wait.js';

const T0 = 1_795_340_901_000;
const stores: MemoryStore[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
});

function fakeStore(maxReservedMemory: string | number = '32mb') {
  const clock = { now: T0 };
  const store = new MemoryStore({ now: () => clock.now, maxReservedMemory });
  stores.push(store);
  return { clock, store };
}
const rules = (over: Partial<BufferRules> = {}): BufferRules => ({ ...DEFAULT_BUFFER_RULES, ...over });
const msg = (text: string, contentType?: string) => ({ data: Buffer.from(text), contentType });
const join = (subscriberId: string, over: Partial<JoinRequest> = {}): JoinRequest => ({
  subscriberId,
  concurrency: 'broadcast',
  maxSubscribers: 0,
  create: true,
  channelTimeout: 0,
  ...over,
});
const flush = () => new Promise((r) => setImmediate(r));

async function bodies(store: MemoryStore, channel: string): Promise<string[]> {
  const out: string[] = [];
  let cursor;
  for (;;) {
    const { message } = await store.next(channel, cursor);
    if (!message) return out;
    out.push(message.data.toString());
    cursor = message.id;
  }
}

describe('MemoryStore (fake clock)', () => {
  it('gives distinct, growing ids within a second (the first from the clock), tag 0 in a new second', async () => {
    const { clock, store } = fakeStore();
    const a = await store.publish('/c', msg('a'), rules());
    const b = await store.publish('/c', msg('b'), rules());
    clock.now += 999 - (clock.now % 1000);
    const c = await store.publish('/c', msg('c'), rules());
    clock.now += 1;
    const d = await store.publish('/c', msg('d'), rules());
    const t = Math.floor(T0 / 1000);
    // The first message of a channel: 1 + the microsecond of its second (the fake clock has milliseconds).
    const first = 1 + (T0 % 1000) * 1000;
    assert.deepEqual([a, b, c, d].map((r) => r.message.id), [
      { time: t, tag: first },
      { time: t, tag: first + 1 },
      { time: t, tag: first + 2 },
      { time: t + 1, tag: 0 },
    ]);
  });

  it('a store made after another one lost the channel (a restarted process) gives no id twice, and signals the gap', async () => {
    let now = T0 + 400;
    const before = new MemoryStore({ now: () => now });
    for (const t of ['a', 'b', 'c']) await before.publish('/c', msg(t), rules());
    const held = (await before.info('/c'))!.lastMessageId!;
    await before.close();
    now += 30; // the same second
    const after = new MemoryStore({ now: () => now });
    const d = await after.publish('/c', msg('d'), rules());
    assert.ok(compareIds(d.message.id, held) > 0, `the new history's first id ${JSON.stringify(d.message.id)} comes after ${JSON.stringify(held)}`);
    const next = await after.next('/c', held);
    assert.equal(next.message?.data.toString(), 'd', 'a cursor of the lost history does not skip it');
    assert.ok(compareIds(held, next.message!.previousId!) < 0, 'and it sees the gap (the loss signal)');
    await after.close();
  });

  it('keeps ids monotonic when the clock goes back', async () => {
    const { clock, store } = fakeStore();
    const a = await store.publish('/c', msg('a'), rules());
    clock.now -= 5000;
    const b = await store.publish('/c', msg('b'), rules());
    assert.deepEqual(b.message.id, { time: a.message.id.time, tag: a.message.id.tag + 1 });
    assert.deepEqual(await bodies(store, '/c'), ['a', 'b']);
  });

  it('links each message to the one before it (previousId), stored or not', async () => {
    const { store } = fakeStore();
    // channelTimeout keeps the channel that storeMessages: false leaves empty.
    const a = await store.publish('/c', msg('a'), rules({ storeMessages: false, channelTimeout: 60_000 }));
    const b = await store.publish('/c', msg('b'), rules({ channelTimeout: 60_000 }));
    // The first message of a history names the instant before it: a cursor from a lost history sees a gap.
    assert.deepEqual(a.message.previousId, { time: a.message.id.time, tag: a.message.id.tag - 1 });
    assert.deepEqual(b.message.previousId, a.message.id);
    assert.equal((await store.info('/c'))!.messages, 1);
    assert.deepEqual((await store.info('/c'))!.lastMessageId, b.message.id);
  });

  it('trims the oldest beyond maxMessages and keeps the content type', async () => {
    const { store } = fakeStore();
    for (const t of ['1', '2', '3', '4', '5']) await store.publish('/c', msg(t, 'text/x-n'), rules({ maxMessages: 3 }));
    assert.deepEqual(await bodies(store, '/c'), ['3', '4', '5']);
    assert.equal((await store.next('/c', undefined)).message!.contentType, 'text/x-n');
    assert.equal((await store.info('/c'))!.messages, 3);
  });

  it('expires messages after messageTimeout but keeps the newest minMessages', async () => {
    const { clock, store } = fakeStore();
    const r = rules({ minMessages: 2, maxMessages: 10, messageTimeout: 1000 });
    for (const t of ['1', '2', '3', '4']) await store.publish('/c', msg(t), r);
    clock.now += 999;
    assert.deepEqual(await bodies(store, '/c'), ['1', '2', '3', '4']);
    clock.now += 1;
    assert.deepEqual(await bodies(store, '/c'), ['3', '4']);
    assert.equal((await store.info('/c'))!.messages, 2);
    clock.now += 3_600_000;
    assert.deepEqual(await bodies(store, '/c'), ['3', '4'], 'the minimum stays however old');
  });

  it('with minMessages 0 and channelTimeout 0, an expired channel is gone', async () => {
    const { clock, store } = fakeStore();
    await store.publish('/c', msg('x'), rules({ minMessages: 0, messageTimeout: 1000 }));
    clock.now += 1000;
    assert.equal(await store.info('/c'), undefined);
    assert.equal(store.channelCount, 0);
  });

  it('answers 507 when full even after dropping expired messages, keeping what is stored', async () => {
    const size = 100;
    // Room for three of these messages and four channels (each named with 2 characters).
    const channel = CHANNEL_OVERHEAD + 4;
    const { clock, store } = fakeStore(3 * (size + MESSAGE_OVERHEAD) + 4 * channel);
    const body = (c: string) => ({ data: Buffer.alloc(size, c), contentType: undefined });
    await store.publish('/a', body('a'), rules({ messageTimeout: 0 }));
    await store.publish('/b', body('b'), rules({ messageTimeout: 0 }));
    await store.publish('/c', body('c'), rules({ messageTimeout: 1000 }));
    await assert.rejects(store.publish('/d', body('d'), rules()), (err: Error & { status?: number }) => {
      assert.equal(err.status, 507);
      assert.match(err.message, /maxReservedMemory/);
      assert.match(err.message, /nothing was stored/);
      return true;
    });
    assert.equal(await store.info('/d'), undefined, 'the refused publish created nothing');
    assert.equal((await store.next('/a', undefined)).message!.data.toString(), 'a'.repeat(size));
    assert.equal((await store.next('/c', undefined)).message!.data.toString(), 'c'.repeat(size));
    // Once /c's message expires (kept only by minMessages), it makes room first. Nothing reads /c: the
    // store's own expiry timer (a real interval over the fake clock) must notice it.
    clock.now += 1000;
    await waitFor('room made by the expired message', () => store.publish('/d', body('d'), rules()).then(() => true));
    assert.equal((await store.next('/d', undefined)).message!.data.toString(), 'd'.repeat(size));
    assert.equal((await store.next('/c', undefined)).message, undefined);
    assert.equal((await store.next('/a', undefined)).message!.data.toString(), 'a'.repeat(size));
    assert.equal(store.reservedBytes, 3 * (size + MESSAGE_OVERHEAD) + store.channelCount * channel);
  });

  it('a channel emptied to make room (its expired message kept only by minMessages) is removed like any idle channel', async () => {
    const size = 100;
    const channel = CHANNEL_OVERHEAD + 8;
    // Room for 10 channels (names of 4 characters) with one message each, and no more.
    const { clock, store } = fakeStore(10 * (size + MESSAGE_OVERHEAD + channel));
    const body = () => ({ data: Buffer.alloc(size, 'x'), contentType: undefined });
    const wave = async (prefix: string) => {
      let stored = 0;
      // The store's expiry timer (a real interval over the fake clock) notices the expired messages first.
      if (store.channelCount > 0) {
        await waitFor('room made by expired messages', () => store.publish(`/${prefix}0`, body(), rules({ messageTimeout: 1000 })).then(() => true, () => false));
        stored++;
      }
      for (let i = stored; i < 10; i++) {
        try {
          await store.publish(`/${prefix}${i}`, body(), rules({ messageTimeout: 1000 }));
          stored++;
        } catch (err) {
          assert.equal((err as { status?: number }).status, 507);
        }
      }
      return stored;
    };
    assert.equal(await wave('a0'), 10);
    for (const prefix of ['b0', 'c0', 'd0']) {
      clock.now += 1000;
      // Every channel of the wave before holds only an expired message: each makes room, and goes.
      assert.equal(await wave(prefix), 10, `wave ${prefix}`);
      assert.equal(store.channelCount, 10, 'the emptied channels were removed');
    }
    assert.equal(await store.info('/a00'), undefined);
    assert.equal(store.reservedBytes, 10 * (size + MESSAGE_OVERHEAD + channel));
  });

  it('channels removed in a flood within one second: their last ids are kept without walking them at each removal', async () => {
    const { store } = fakeStore();
    const unstored = rules({ storeMessages: false });
    // Counts walks over any Map while the channels go (each removal walked every remembered id).
    const iterate = Map.prototype[Symbol.iterator];
    let walks = 0;
    Map.prototype[Symbol.iterator] = function (this: Map<unknown, unknown>) {
      walks++;
      return iterate.call(this);
    };
    const ids: MessageId[] = [];
    try {
      for (let i = 0; i < 3000; i++) ids.push((await store.publish(`/c${i}`, msg('x'), unstored)).message.id);
    } finally {
      Map.prototype[Symbol.iterator] = iterate;
    }
    assert.equal(store.channelCount, 0);
    assert.ok(walks < 10, `${walks} walks over a Map for 3,000 removals`);
    // Still remembered: a channel recreated within the second continues after its removed id.
    for (const i of [0, 1500, 2999]) {
      const recreated = await store.publish(`/c${i}`, msg('y'), unstored);
      assert.ok(compareIds(recreated.message.id, ids[i]!) > 0, `/c${i} continues after its removed id`);
    }
  });

  it('counts channels and waiting subscribers too: 507 for one more channel, or one more subscriber', async () => {
    const channel = CHANNEL_OVERHEAD + 4;
    const subscriber = SUBSCRIBER_OVERHEAD + 4;
    const { store } = fakeStore(2 * channel + subscriber);
    assert.ok(await store.create('/a', rules({ channelTimeout: 60_000 })));
    assert.deepEqual(await store.join('/a', join('s1')), { ok: true });
    assert.equal(store.reservedBytes, channel + subscriber);
    await assert.rejects(store.join('/a', join('s2')), (err: Error & { status?: number }) => err.status === 507 && /waiting subscribers/.test(err.message));
    assert.ok(await store.create('/b', rules({ channelTimeout: 60_000 })));
    await assert.rejects(store.create('/c', rules()), (err: Error & { status?: number }) => err.status === 507);
    assert.equal(await store.info('/c'), undefined);
    await store.leave('/a', ['s1']);
    assert.equal(store.reservedBytes, 2 * channel, 'a subscriber that leaves gives its share back');
    assert.deepEqual(await store.join('/a', join('s2')), { ok: true });
  });

  it('maxChannels: one more channel is 403 naming the limit; the existing ones keep working', async () => {
    const store = new MemoryStore({ maxChannels: 2 });
    await store.publish('/a', msg('a'), rules());
    await store.create('/b', rules());
    for (const attempt of [() => store.publish('/c', msg('c'), rules()), () => store.create('/c', rules()), () => store.join('/c', join('s'))]) {
      await assert.rejects(attempt(), (err: Error & { status?: number }) => err.status === 403 && /2 channels already.*maxChannels/.test(err.message));
    }
    assert.equal(store.channelCount, 2);
    await store.publish('/a', msg('again'), rules());
    assert.deepEqual(await store.join('/b', join('s')), { ok: true });
    await store.delete('/a');
    await store.publish('/c', msg('c'), rules());
    await store.close();
  });

  it('counts a message pushed out by maxMessages as room for the new one', async () => {
    const { store } = fakeStore(2 * (10 + MESSAGE_OVERHEAD) + CHANNEL_OVERHEAD + 4);
    const r = rules({ maxMessages: 2 });
    for (let i = 0; i < 5; i++) await store.publish('/c', { data: Buffer.alloc(10, String(i)), contentType: undefined }, r);
    assert.deepEqual(await bodies(store, '/c'), ['3'.repeat(10), '4'.repeat(10)]);
  });

  it('channel timeout: the idle clock starts when the last message goes', async () => {
    const { clock, store } = fakeStore();
    const r = rules({ minMessages: 0, messageTimeout: 1000, channelTimeout: 5000 });
    await store.publish('/c', msg('x'), r);
    clock.now += 4000; // expired at +1000: idle since then
    assert.equal((await store.info('/c'))!.messages, 0);
    clock.now += 1999;
    assert.ok(await store.info('/c'), 'still there 5999 ms after publish (4999 ms idle)');
    clock.now += 1;
    assert.equal(await store.info('/c'), undefined, 'removed after 5000 ms idle');
  });

  it('channel timeout: the idle clock starts when the last subscriber leaves', async () => {
    const { clock, store } = fakeStore();
    assert.deepEqual(await store.join('/c', join('s1', { channelTimeout: 2000 })), { ok: true });
    clock.now += 10_000;
    assert.ok(await store.info('/c'), 'a channel with a waiting subscriber is never idle');
    await store.leave('/c', ['s1']);
    clock.now += 1999;
    assert.ok(await store.info('/c'));
    clock.now += 1;
    assert.equal(await store.info('/c'), undefined);
  });

  it('channel timeout 0 removes a channel as soon as it is unused', async () => {
    const { store } = fakeStore();
    await store.join('/c', join('s1'));
    await store.leave('/c', ['s1']);
    assert.equal(await store.info('/c'), undefined);
  });

  it('PUT (create) keeps an empty channel when channelTimeout is 0, and times it out otherwise', async () => {
    const { clock, store } = fakeStore();
    assert.deepEqual(await store.create('/kept', rules({ channelTimeout: 0 })), { messages: 0, requested: -1, subscribers: 0, lastMessageId: undefined });
    await store.create('/timed', rules({ channelTimeout: 3000 }));
    clock.now += 2999;
    assert.ok(await store.info('/kept'));
    assert.ok(await store.info('/timed'));
    clock.now += 1;
    assert.equal(await store.info('/timed'), undefined);
    clock.now += 3_600_000;
    assert.ok(await store.info('/kept'));
  });

  it('join: broadcast, maxSubscribers (full), first (conflict), missing channel without create', async () => {
    const { store } = fakeStore();
    assert.deepEqual(await store.join('/c', join('a', { maxSubscribers: 2 })), { ok: true });
    assert.deepEqual(await store.join('/c', join('b', { maxSubscribers: 2 })), { ok: true });
    assert.deepEqual(await store.join('/c', join('c', { maxSubscribers: 2 })), { ok: false, reason: 'full' });
    assert.equal((await store.info('/c'))!.subscribers, 2);
    assert.deepEqual(await store.join('/c', join('d', { concurrency: 'first' })), { ok: false, reason: 'conflict' });
    assert.deepEqual(await store.join('/nope', join('e', { create: false })), { ok: false, reason: 'missing' });
    assert.equal(await store.info('/nope'), undefined);
    await store.leave('/c', ['a', 'a', 'unknown']);
    assert.equal((await store.info('/c'))!.subscribers, 1, 'leave is idempotent per id');
    assert.deepEqual(await store.join('/c', join('f', { maxSubscribers: 2 })), { ok: true });
  });

  it('nextOrJoin answers at once (no Promise): the message after the cursor, else join()', async () => {
    const { store } = fakeStore();
    const first = store.nextOrJoin('/n', undefined, join('a'));
    assert.ok(!(first instanceof Promise));
    assert.deepEqual(first, { joined: { ok: true } });
    const { message } = await store.publish('/n', msg('m1'), rules());
    assert.equal(store.nextOrJoin('/n', undefined, join('b')).message, message, 'the oldest stored');
    assert.deepEqual(store.nextOrJoin('/n', message.id, join('c', { maxSubscribers: 1 })), { joined: { ok: false, reason: 'full' } });
    assert.deepEqual(store.nextOrJoin('/n', message.id, join('d', { concurrency: 'first' })), { joined: { ok: false, reason: 'conflict' } });
    assert.deepEqual(store.nextOrJoin('/none', undefined, join('e', { create: false })), { joined: { ok: false, reason: 'missing' } });
    assert.equal((await store.info('/n'))!.subscribers, 1, 'only the one joined counts');
  });

  it('join with concurrency last tells watchers to end every other waiting subscriber', async () => {
    const { store } = fakeStore();
    const events: ChannelEvent[] = [];
    await store.watch('/c', (_name, e) => events.push(e));
    await store.join('/c', join('old', { concurrency: 'last' }));
    await store.join('/c', join('new', { concurrency: 'last' }));
    await flush();
    assert.deepEqual(events, [{ type: 'conflict', keep: 'new' }]);
  });

  it('records when a subscriber last asked (requested)', async () => {
    const { clock, store } = fakeStore();
    await store.create('/c', rules());
    assert.equal((await store.info('/c'))!.requested, -1);
    await store.next('/c', undefined);
    clock.now += 3500;
    assert.equal((await store.info('/c'))!.requested, 3);
  });

  it('delivers events in order, after the publish has returned', async () => {
    const { store } = fakeStore();
    const events: string[] = [];
    const stop = await store.watch('/c', (name, e) => events.push(`${name} ${e.type}${e.type === 'message' ? ` ${e.message.data}` : ''}`));
    const first = await store.publish('/c', msg('1'), rules());
    assert.deepEqual(events, [], 'not synchronously inside publish');
    await store.publish('/c', msg('2'), rules());
    await store.delete('/c');
    await flush();
    assert.deepEqual(events, ['/c message 1', '/c message 2', '/c deleted']);
    stop();
    await store.publish('/c', msg('3'), rules());
    await flush();
    assert.equal(events.length, 3, 'nothing after unwatch');
    assert.equal(first.info.messages, 1);
  });

  it('delivers events before I/O callbacks and immediates that were already queued', async () => {
    const { store } = fakeStore();
    const events: string[] = [];
    await store.watch('/c', (_n, e) => events.push(e.type));
    // Queued first: a fan-out must not wait behind the rest of the event loop's turn.
    const seen = new Promise<string[]>((resolve) => setImmediate(() => resolve([...events])));
    await store.publish('/c', msg('now'), rules());
    assert.deepEqual(await seen, ['message']);
  });

  it('tells watchers which message came before (previous)', async () => {
    const { store } = fakeStore();
    const previous: unknown[] = [];
    await store.watch('/c', (_n, e) => e.type === 'message' && previous.push(e.previous));
    const a = await store.publish('/c', msg('a'), rules());
    await store.publish('/c', msg('b'), rules());
    await flush();
    assert.deepEqual(previous, [undefined, a.message.id]);
  });

  it('delete answers the info it had, then the channel is gone', async () => {
    const { store } = fakeStore();
    await store.publish('/c', msg('a'), rules());
    const info = await store.delete('/c');
    assert.equal(info!.messages, 1);
    assert.equal(await store.delete('/c'), undefined);
    assert.equal(await store.info('/c'), undefined);
    assert.deepEqual(await store.next('/c', undefined), { exists: false, message: undefined });
    assert.equal(store.reservedBytes, 0);
  });

  it('startCursor: the n-th newest message comes next; 0 waits for the next publish', async () => {
    const { store } = fakeStore();
    assert.equal(await store.startCursor('/c', 1), undefined, 'missing channel');
    const ids = [];
    for (const t of ['1', '2', '3']) ids.push((await store.publish('/c', msg(t), rules())).message.id);
    const nextAfter = async (n: number) => (await store.next('/c', await store.startCursor('/c', n))).message?.data.toString();
    assert.equal(await nextAfter(1), '3');
    assert.equal(await nextAfter(2), '2');
    assert.equal(await nextAfter(3), '1');
    assert.equal(await store.startCursor('/c', 4), undefined, 'fewer stored: from the oldest');
    assert.deepEqual(await store.startCursor('/c', 0), ids[2]);
    assert.equal(await nextAfter(0), undefined);
  });

  it('received() drops the oldest only while more than minMessages remain', async () => {
    const { store } = fakeStore();
    const r = rules({ minMessages: 1 });
    const a = await store.publish('/c', msg('a'), r);
    const b = await store.publish('/c', msg('b'), r);
    await store.received('/c', b.message.id);
    assert.deepEqual(await bodies(store, '/c'), ['a', 'b'], 'only the oldest goes');
    await store.received('/c', a.message.id);
    assert.deepEqual(await bodies(store, '/c'), ['b']);
    await store.received('/c', b.message.id);
    assert.deepEqual(await bodies(store, '/c'), ['b'], 'the minimum stays');
  });

  it('rejects unknown options', () => {
    assert.throws(() => new MemoryStore({ maxReservedMemry: 1 } as never), /unknown MemoryStore option "maxReservedMemry"/);
    assert.throws(() => new MemoryStore({ maxReservedMemory: 'big' }), /"maxReservedMemory"/);
  });
});
