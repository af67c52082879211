/**
 * A channel stays watched for a while after its last waiting subscriber left (long-poll subscribers
 * come straight back), then stops being watched; a watch that failed is never kept.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryStore, type ChannelListener, type MessageId } from '../../src/index.js';
import { ParkedSubscribers } from '../../src/subscriptions/parked-subscribers.js';
import { DEFAULT_BUFFER_RULES } from '../../src/protocol/buffer-rules.js';
import { FakeSubscriber } from './fake-subscriber.js';
import { waitFor } from '../helpers/wait.js';

/** A MemoryStore that counts reads and live watches, and can fail the next watch. */
class CountingStore extends MemoryStore {
  reads = 0;
  watching = 0;
  failNextWatch = false;
  override async next(channel: string, after: MessageId | undefined) {
    this.reads++;
    return super.next(channel, after);
  }
  override async watch(channel: string, listener: ChannelListener) {
    if (this.failNextWatch) {
      this.failNextWatch = false;
      throw new Error('store down');
    }
    const unwatch = await super.watch(channel, listener);
    this.watching++;
    return () => {
      this.watching--;
      unwatch();
    };
  }
}

const join = { concurrency: 'broadcast', maxSubscribers: 0, create: true, channelTimeout: 0 } as const;
const publish = (store: MemoryStore, channel: string, body: string) => store.publish(channel, { data: Buffer.from(body), contentType: undefined }, DEFAULT_BUFFER_RULES);

describe('ParkedSubscribers: watches linger after the last subscriber', () => {
  it('a subscriber coming back right after an answer finds the channel watched: no catch-up read', async () => {
    const store = new CountingStore();
    const parked = new ParkedSubscribers(store, 60_000);
    const first = new FakeSubscriber(parked.newId(), '/c', undefined);
    await parked.park(first, join, 0);
    const { message } = await publish(store, '/c', 'm0');
    await waitFor('the answer', () => first.got.length === 1);
    assert.equal(parked.watchedChannels, 1, 'still watched with nobody waiting');
    // Its next request, as subscriber.ts makes it: mark, read, park.
    const mark = parked.mark('/c');
    assert.ok(mark >= 0, 'wake-ups are live');
    assert.equal((await store.next('/c', message.id)).message, undefined);
    const reads = store.reads;
    const again = new FakeSubscriber(parked.newId(), '/c', message.id);
    await parked.park(again, join, 0, mark);
    assert.equal(store.reads, reads, 'parked without a second read');
    assert.equal(store.watching, 1, 'one watch all along');
    await publish(store, '/c', 'm1');
    await waitFor('the next answer', () => again.got.length === 1);
    assert.deepEqual(again.got, ['m1']);
    parked.closeAll(1000);
    assert.equal(store.watching, 0);
    await store.close();
  });

  it('stops watching once nobody has waited for the linger time', async () => {
    const store = new CountingStore();
    const parked = new ParkedSubscribers(store, 100);
    const s = new FakeSubscriber(parked.newId(), '/gone', undefined);
    await parked.park(s, join, 0);
    assert.equal(store.watching, 1);
    parked.remove(s);
    await waitFor('the watch to end', () => store.watching === 0 && parked.watchedChannels === 0, 5000);
    await store.close();
  });

  it('a long-poll the store refuses at once (a channel limit) leaves no watch behind', async () => {
    const store = new CountingStore({ maxChannels: 1 });
    const parked = new ParkedSubscribers(store, 100);
    await store.create('/only', DEFAULT_BUFFER_RULES);
    for (let i = 0; i < 5; i++) {
      const s = new FakeSubscriber(parked.newId(), `/refused-${i}`, undefined);
      await assert.rejects(async () => parked.readOrPark(s, join, 0, parked.mark(`/refused-${i}`)), (err: { status?: number }) => err.status === 403);
    }
    await waitFor('the watches to end', () => store.watching === 0 && parked.watchedChannels === 0, 5000);
    await store.close();
  });

  it('a watch that failed is not kept: the next subscriber starts its own and gets messages', async () => {
    const store = new CountingStore();
    const parked = new ParkedSubscribers(store, 60_000);
    store.failNextWatch = true;
    const unlucky = new FakeSubscriber(parked.newId(), '/f', undefined);
    await parked.park(unlucky, join, 0);
    await waitFor('the failure', () => unlucky.got.length === 1);
    assert.deepEqual(unlucky.got, ['end:unavailable']);
    assert.equal(parked.watchedChannels, 0);
    const next = new FakeSubscriber(parked.newId(), '/f', undefined);
    await parked.park(next, join, 0);
    await publish(store, '/f', 'after the failure');
    await waitFor('a message', () => next.got.length === 1);
    assert.deepEqual(next.got, ['after the failure']);
    parked.closeAll(1000);
    await store.close();
  });
});
