/**
 * A message the store does not keep (storeMessages: false) reaches every subscriber it was counted
 * for (its publisher was answered 201), even one whose wake-up came while the subscriber was still
 * on its way in (a store whose join takes a round trip, as RedisStore's does) or while it read from
 * the store: a read cannot give back what was never stored.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryStore, type ChannelEvent, type ChannelListener, type StoredMessage, type JoinRequest, type JoinResult, type MessageId, type NextResult } from '../../src/index.js';
import { ParkedSubscribers } from '../../src/subscriptions/parked-subscribers.js';
import { DEFAULT_BUFFER_RULES } from '../../src/protocol/buffer-rules.js';
import { FakeSubscriber } from './fake-subscriber.js';
import { waitFor } from '../helpers/wait.js';

const join = { concurrency: 'broadcast', maxSubscribers: 0, create: true, channelTimeout: 60_000 } as const;
const unstored = { ...DEFAULT_BUFFER_RULES, storeMessages: false, channelTimeout: 60_000 };
const body = (text: string) => ({ data: Buffer.from(text), contentType: undefined });

/**
 * A MemoryStore whose join and reads answer only once released, as a store over the network does:
 * the subscriber is counted in at once, and the channel's wake-ups come while the answer is on its
 * way. `newest`: the join also names the channel's newest id (as RedisStore does).
 */
class HeldStore extends MemoryStore {
  #joins: Array<() => void> = [];
  #reads: Array<() => void> = [];
  holdReads = false;
  constructor(readonly newest = false) {
    super();
  }
  /** Holds the join before the subscriber is counted in too. */
  holdBeforeCount = false;
  override async join(channel: string, request: JoinRequest): Promise<JoinResult> {
    if (this.holdBeforeCount) await new Promise<void>((resolve) => this.#joins.push(resolve));
    const newest = (await this.info(channel))?.lastMessageId;
    const joined = await super.join(channel, request);
    await new Promise<void>((resolve) => this.#joins.push(resolve));
    return joined.ok && this.newest && newest ? { ...joined, newest } : joined;
  }
  override async next(channel: string, after: MessageId | undefined): Promise<NextResult> {
    const read = await super.next(channel, after);
    if (this.holdReads) await new Promise<void>((resolve) => this.#reads.push(resolve));
    return read;
  }
  get held(): number {
    return this.#joins.length + this.#reads.length;
  }
  release(): void {
    for (const resolve of this.#joins.splice(0)) resolve();
    for (const resolve of this.#reads.splice(0)) resolve();
  }
}

/** A MemoryStore that hands the test the listener of its last watch, to send wake-ups of its own. */
class ListenedStore extends MemoryStore {
  listener: ChannelListener | undefined;
  override async watch(channel: string, listener: ChannelListener) {
    this.listener = listener;
    return super.watch(channel, listener);
  }
}

/**
 * A MemoryStore whose wake-ups only the test sends (late, out of band, or not at all), and whose
 * reads can be held. Its join names the channel's newest id, as RedisStore's does.
 */
class ManualStore extends MemoryStore {
  #listener: ChannelListener | undefined;
  #reads: Array<() => void> = [];
  holdReads = false;
  override async watch(channel: string, listener: ChannelListener) {
    this.#listener = listener;
    return super.watch(channel, () => {});
  }
  override async join(channel: string, request: JoinRequest): Promise<JoinResult> {
    const newest = (await this.info(channel))?.lastMessageId;
    const joined = await super.join(channel, request);
    return joined.ok && newest ? { ...joined, newest } : joined;
  }
  override async next(channel: string, after: MessageId | undefined): Promise<NextResult> {
    const read = await super.next(channel, after);
    if (this.holdReads) await new Promise<void>((resolve) => this.#reads.push(resolve));
    return read;
  }
  get heldReads(): number {
    return this.#reads.length;
  }
  releaseReads(): void {
    for (const resolve of this.#reads.splice(0)) resolve();
  }
  send(channel: string, event: ChannelEvent): void {
    this.#listener!(channel, event);
  }
  /** The wake-up of a message not kept (no message stored before it). */
  wake(channel: string, message: StoredMessage): void {
    this.send(channel, { type: 'message', message, previous: undefined });
  }
}

describe('ParkedSubscribers: messages the store did not keep', () => {
  for (const streams of [false, true]) {
    it(`${streams ? 'a stream' : 'a long-poll'} counted in before its join answers gets what was published meanwhile`, async () => {
      const store = new HeldStore();
      const parked = new ParkedSubscribers(store, 60_000);
      await store.create('/j', unstored);
      const s = new FakeSubscriber(parked.newId(), '/j', undefined, streams);
      const parking = parked.park(s, join, 0);
      await waitFor('the join to be held', () => store.held === 1);
      const { info } = await store.publish('/j', body('meanwhile'), unstored);
      assert.equal(info.subscribers, 1, 'its publisher is told a subscriber was waiting');
      // Its wake-up comes before the join answers.
      await new Promise((resolve) => setImmediate(resolve));
      store.release();
      await parking;
      await waitFor('the message', () => s.got.length === 1);
      assert.deepEqual(s.got, ['meanwhile']);
      await parked.closeAll(1000);
      await store.close();
    });
  }

  it('of what was heard during the join, only what came after it was counted in (the join names the newest id)', async () => {
    const store = new HeldStore(true);
    store.holdBeforeCount = true;
    const parked = new ParkedSubscribers(store, 60_000);
    await store.create('/n', unstored);
    const s = new FakeSubscriber(parked.newId(), '/n', undefined);
    const parking = parked.park(s, join, 0);
    await waitFor('the join to be held', () => store.held === 1);
    // Published before the join counts it: its publisher is told nobody waited.
    assert.equal((await store.publish('/n', body('before'), unstored)).info.subscribers, 0);
    await new Promise((resolve) => setImmediate(resolve));
    store.release();
    await waitFor('the join to be held once counted in', () => store.held === 1);
    assert.equal((await store.publish('/n', body('after'), unstored)).info.subscribers, 1);
    await new Promise((resolve) => setImmediate(resolve));
    store.release();
    await parking;
    await waitFor('the message', () => s.got.length === 1);
    // A long-poll takes one message: the one it was counted for.
    assert.deepEqual(s.got, ['after']);
    await parked.closeAll(1000);
    await store.close();
  });

  it('a message after one it has not seen goes to the store first, and comes from the wake-up when the store has nothing', async () => {
    const store = new ListenedStore();
    const parked = new ParkedSubscribers(store, 60_000);
    await store.create('/g', unstored);
    const s = new FakeSubscriber(parked.newId(), '/g', { time: 1_000, tag: 0 }, true);
    await parked.park(s, join, 0);
    // The channel's wake-up names a previous message after the cursor (stored once, expired since):
    // the store is asked first, and has nothing.
    const message = { id: { time: 1_002, tag: 0 }, previousId: { time: 1_001, tag: 0 }, data: Buffer.from('after a gap'), contentType: undefined };
    store.listener!('/g', { type: 'message', message, previous: { time: 1_001, tag: 0 } });
    await waitFor('the message', () => s.got.length === 1);
    assert.deepEqual(s.got, ['after a gap']);
    await parked.closeAll(1000);
    await store.close();
  });

  it('a subscriber reading from the store when messages come gets them once the read finds nothing', async () => {
    const store = new HeldStore();
    const parked = new ParkedSubscribers(store, 60_000);
    await store.create('/r', unstored);
    await store.publish('/r', body('old'), unstored);
    const s = new FakeSubscriber(parked.newId(), '/r', undefined, true);
    // Its read after the join (the wake-ups were not live before it) is held.
    store.holdReads = true;
    const parking = parked.park(s, join, 0);
    await waitFor('the join to be held', () => store.held === 1);
    store.release();
    await waitFor('the read to be held', () => store.held === 1);
    for (const text of ['one', 'two']) assert.equal((await store.publish('/r', body(text), unstored)).info.subscribers, 1);
    await new Promise((resolve) => setImmediate(resolve));
    store.holdReads = false;
    store.release();
    await parking;
    await waitFor('both messages', () => s.got.length === 2);
    assert.deepEqual(s.got, ['one', 'two']);
    await parked.closeAll(1000);
    await store.close();
  });

  it('a wake-up that comes late for a message published before the subscriber was counted in does not answer it', async () => {
    const store = new ManualStore();
    const parked = new ParkedSubscribers(store, 60_000);
    await store.create('/late', unstored);
    const before = await store.publish('/late', body('before'), unstored);
    assert.equal(before.info.subscribers, 0);
    const s = new FakeSubscriber(parked.newId(), '/late', undefined);
    await parked.park(s, join, 0);
    const counted = await store.publish('/late', body('counted'), unstored);
    assert.equal(counted.info.subscribers, 1);
    // Both wake-ups come now, the first one late (pub/sub is not the connection the join answered on).
    store.wake('/late', before.message);
    store.wake('/late', counted.message);
    await waitFor('the message', () => s.got.length === 1);
    assert.deepEqual(s.got, ['counted']);
    await parked.closeAll(1000);
    await store.close();
  });

  it('a stored message whose wake-up was missed is read before a later one heard during a read', async () => {
    const store = new ManualStore();
    const parked = new ParkedSubscribers(store, 60_000);
    const stored = { ...unstored, storeMessages: true };
    await store.create('/gap', stored);
    const m0 = await store.publish('/gap', body('m0'), stored);
    const s = new FakeSubscriber(parked.newId(), '/gap', m0.message.id, true);
    await parked.park(s, join, 0);
    // A catch-up read, held: it finds nothing after m0.
    store.holdReads = true;
    store.send('/gap', { type: 'resync' });
    await waitFor('the read to be held', () => store.heldReads === 1);
    const m1 = await store.publish('/gap', body('m1'), stored);
    const m2 = await store.publish('/gap', body('m2'), stored);
    // m1's wake-up was lost; m2's names m1 as the message before.
    store.send('/gap', { type: 'message', message: m2.message, previous: m1.message.id });
    store.holdReads = false;
    store.releaseReads();
    await waitFor('both messages', () => s.got.length === 2);
    assert.deepEqual(s.got, ['m1', 'm2']);
    await parked.closeAll(1000);
    await store.close();
  });

  it('a message not kept, heard during the join before one that was kept, comes first', async () => {
    const store = new HeldStore(true);
    const stored = { ...unstored, storeMessages: true };
    const parked = new ParkedSubscribers(store, 60_000);
    await store.create('/mixed', unstored);
    const s = new FakeSubscriber(parked.newId(), '/mixed', undefined, true);
    const parking = parked.park(s, join, 0);
    await waitFor('the join to be held', () => store.held === 1);
    assert.equal((await store.publish('/mixed', body('not kept'), unstored)).info.subscribers, 1);
    assert.equal((await store.publish('/mixed', body('kept'), stored)).info.subscribers, 1);
    await new Promise((resolve) => setImmediate(resolve));
    store.release();
    await parking;
    await waitFor('both messages', () => s.got.length === 2);
    assert.deepEqual(s.got, ['not kept', 'kept']);
    await parked.closeAll(1000);
    await store.close();
  });

  it('the channel stays watched while a subscriber joins, even when the last parked one leaves meanwhile', async () => {
    const store = new HeldStore();
    // Watches linger 50 ms after their last subscriber.
    const parked = new ParkedSubscribers(store, 50);
    await store.create('/linger', unstored);
    const leaving = new FakeSubscriber(parked.newId(), '/linger', undefined, true);
    const first = parked.park(leaving, join, 0);
    await waitFor('the first join to be held', () => store.held === 1);
    store.release();
    await first;
    const s = new FakeSubscriber(parked.newId(), '/linger', undefined, true);
    const parking = parked.park(s, join, 0);
    await waitFor('the join to be held', () => store.held === 1);
    parked.remove(leaving);
    // Longer than the linger: the watch must still be there for the subscriber on its way in.
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(parked.watchedChannels, 1);
    assert.equal((await store.publish('/linger', body('counted'), unstored)).info.subscribers, 1);
    await new Promise((resolve) => setImmediate(resolve));
    store.release();
    await parking;
    await waitFor('the message', () => s.got.length === 1);
    assert.deepEqual(s.got, ['counted']);
    await parked.closeAll(1000);
    await store.close();
  });
});
