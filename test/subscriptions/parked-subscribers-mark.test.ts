/**
 * ParkedSubscribers.mark(): a subscriber whose first read happened while the channel's wake-ups were
 * already live skips the re-read after parking, unless a wake-up came in between (then the re-read is
 * what delivers that message).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryStore, type JoinRequest, type MessageId } from '../../src/index.js';
import { ParkedSubscribers } from '../../src/subscriptions/parked-subscribers.js';
import { DEFAULT_BUFFER_RULES } from '../../src/protocol/buffer-rules.js';
import { FakeSubscriber } from './fake-subscriber.js';

/** A MemoryStore whose joins wait for `release()`, and which counts reads. */
class GatedStore extends MemoryStore {
  reads = 0;
  #gate: Promise<void> = Promise.resolve();
  #open: () => void = () => {};
  hold(): void {
    this.#gate = new Promise((r) => (this.#open = r));
  }
  release(): void {
    this.#open();
  }
  override async next(channel: string, after: MessageId | undefined) {
    this.reads++;
    return super.next(channel, after);
  }
  override async join(channel: string, request: JoinRequest) {
    await this.#gate;
    return super.join(channel, request);
  }
}

const join = { concurrency: 'broadcast', maxSubscribers: 0, create: true, channelTimeout: 0 } as const;
const flushEvents = () => new Promise((r) => setImmediate(r));

async function liveChannel(store: GatedStore, parked: ParkedSubscribers, channel: string): Promise<MessageId> {
  const first = await store.publish(channel, { data: Buffer.from('m0'), contentType: undefined }, DEFAULT_BUFFER_RULES);
  // A stream already waiting keeps the channel's wake-ups live whatever is published.
  await parked.park(new FakeSubscriber(parked.newId(), channel, first.message.id, true), join, 0);
  await flushEvents();
  return first.message.id;
}

describe('ParkedSubscribers.mark', () => {
  it('skips the re-read when nothing came between the first read and parking', async () => {
    const store = new GatedStore();
    const parked = new ParkedSubscribers(store);
    const cursor = await liveChannel(store, parked, '/c');
    const mark = parked.mark('/c');
    assert.ok(mark >= 0, 'the channel is watched');
    assert.equal((await store.next('/c', cursor)).message, undefined);
    const readsBefore = store.reads;
    const s = new FakeSubscriber(parked.newId(), '/c', cursor);
    await parked.park(s, join, 0, mark);
    assert.equal(store.reads, readsBefore, 'no second read');
    assert.ok(s.parked);
    await store.close();
  });

  it('re-reads, and so delivers, a message whose wake-up came before it was parked', async () => {
    const store = new GatedStore();
    const parked = new ParkedSubscribers(store);
    const cursor = await liveChannel(store, parked, '/c');
    const mark = parked.mark('/c');
    assert.equal((await store.next('/c', cursor)).message, undefined, 'nothing after the cursor yet');
    const s = new FakeSubscriber(parked.newId(), '/c', cursor);
    store.hold();
    const parking = parked.park(s, join, 0, mark);
    // Published while the subscriber is between its read and the registry: its wake-up passes it by.
    await store.publish('/c', { data: Buffer.from('m1'), contentType: undefined }, DEFAULT_BUFFER_RULES);
    await flushEvents();
    store.release();
    await parking;
    assert.deepEqual(s.got, ['m1']);
    await store.close();
  });

  it('always re-reads when the channel was not watched at the first read', async () => {
    const store = new GatedStore();
    const parked = new ParkedSubscribers(store);
    assert.equal(parked.mark('/fresh'), -1);
    const s = new FakeSubscriber(parked.newId(), '/fresh', undefined);
    store.hold();
    const parking = parked.park(s, join, 0, -1);
    await store.publish('/fresh', { data: Buffer.from('first'), contentType: undefined }, DEFAULT_BUFFER_RULES);
    store.release();
    await parking;
    assert.deepEqual(s.got, ['first']);
    await store.close();
  });
});
