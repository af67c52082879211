/**
 * A subscriber is counted in on its channel only once the channel's wake-ups are live: otherwise a
 * publish right after the count (answered 201, a concurrency `last` refusal) could wake nobody. A
 * store whose watch takes a while shows the order; a watch started for a subscriber that did not
 * park lingers and goes.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryStore, type ChannelListener, type JoinRequest, type JoinResult, type MessageId, type NextOrJoinResult } from '../../src/index.js';
import { ParkedSubscribers } from '../../src/subscriptions/parked-subscribers.js';
import { DEFAULT_BUFFER_RULES } from '../../src/protocol/buffer-rules.js';
import { FakeSubscriber } from './fake-subscriber.js';
import { waitFor } from '../helpers/wait.js';

/** A MemoryStore whose watches go live 30 ms after they are asked for, recording the order of calls. */
class SlowWatchStore extends MemoryStore {
  readonly calls: string[] = [];
  watching = 0;
  override async watch(channel: string, listener: ChannelListener) {
    this.calls.push('watch');
    await new Promise((r) => setTimeout(r, 30));
    const unwatch = await super.watch(channel, listener);
    this.calls.push('live');
    this.watching++;
    return () => {
      this.watching--;
      unwatch();
    };
  }
  override async join(channel: string, request: JoinRequest): Promise<JoinResult> {
    this.calls.push('join');
    return super.join(channel, request);
  }
  override nextOrJoin(channel: string, after: MessageId | undefined, request: JoinRequest): NextOrJoinResult {
    this.calls.push('nextOrJoin');
    return super.nextOrJoin(channel, after, request);
  }
}

const join = { concurrency: 'broadcast', maxSubscribers: 0, create: true, channelTimeout: 0 } as const;
const rules = { ...DEFAULT_BUFFER_RULES, storeMessages: false };

describe('ParkedSubscribers: counted in once the wake-ups are live', () => {
  it('a long-poll: the store counts it in after its watch is live, and a publish right after reaches it (not stored)', async () => {
    const store = new SlowWatchStore();
    const parked = new ParkedSubscribers(store, 60_000);
    const s = new FakeSubscriber(parked.newId(), '/w', undefined);
    assert.equal(await parked.readOrPark(s, join, 0, parked.mark('/w')), undefined);
    assert.deepEqual(store.calls, ['watch', 'live', 'nextOrJoin']);
    // Counted: a publisher is told it was delivered; nothing is stored, so only a live watch can deliver it.
    const { info } = await store.publish('/w', { data: Buffer.from('now or never'), contentType: undefined }, rules);
    assert.equal(info.subscribers, 1);
    await waitFor('the message', () => s.got.length === 1);
    assert.deepEqual(s.got, ['now or never']);
    await parked.closeAll(1000);
    await store.close();
  });

  it('a stream: joined after the watch is live', async () => {
    const store = new SlowWatchStore();
    const parked = new ParkedSubscribers(store, 60_000);
    const s = new FakeSubscriber(parked.newId(), '/s', undefined, true);
    await parked.park(s, join, 0);
    assert.deepEqual(store.calls, ['watch', 'live', 'join']);
    await store.publish('/s', { data: Buffer.from('x'), contentType: undefined }, rules);
    await waitFor('the message', () => s.got.length === 1);
    await parked.closeAll(1000);
    await store.close();
  });

  it('a watch started for a poll answered from the store lingers, then goes', async () => {
    const store = new SlowWatchStore();
    const parked = new ParkedSubscribers(store, 50);
    await store.publish('/r', { data: Buffer.from('stored'), contentType: undefined }, DEFAULT_BUFFER_RULES);
    const s = new FakeSubscriber(parked.newId(), '/r', undefined);
    const read = await parked.readOrPark(s, join, 0, parked.mark('/r'));
    assert.equal(read?.data.toString(), 'stored');
    assert.equal(store.watching, 1);
    await waitFor('the watch to go', () => store.watching === 0 && parked.watchedChannels === 0, 3000);
    await store.close();
  });

  it('a client gone while the watch was starting is neither counted nor kept watching', async () => {
    const store = new SlowWatchStore();
    const parked = new ParkedSubscribers(store, 50);
    const s = new FakeSubscriber(parked.newId(), '/g', undefined);
    const pending = parked.readOrPark(s, join, 0, parked.mark('/g'));
    s.gone = true;
    assert.equal(await pending, undefined);
    assert.ok(!store.calls.includes('nextOrJoin'), 'never counted in');
    await waitFor('the watch to go', () => store.watching === 0 && parked.watchedChannels === 0, 3000);
    await store.close();
  });
});
