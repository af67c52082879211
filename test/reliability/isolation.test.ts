/**
 * One subscriber's failure is its own: a transport that throws while writing is cut (and counted
 * out), the rest of the channel gets the message, and no request is left hanging. A Content-Type or
 * event name that cannot be written is refused when it is published, not when it is delivered.
 */
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { describe, it } from 'node:test';
import { createPushRelay, MemoryStore } from '../../src/index.js';
import { DEFAULT_BUFFER_RULES } from '../../src/protocol/buffer-rules.js';
import { ParkedSubscribers } from '../../src/subscriptions/parked-subscribers.js';
import { cursorOf, request } from '../helpers/http-client.js';
import { serveNodeHttp } from '../helpers/servers.js';
import { waitFor, within } from '../helpers/wait.js';
import { FakeSubscriber } from '../subscriptions/fake-subscriber.js';

const join = { concurrency: 'broadcast', maxSubscribers: 0, create: true, channelTimeout: 0 } as const;

describe('a failing subscriber does not stop the fan-out', () => {
  it('registry: the others get the message, the failing one is cut and counted out', async () => {
    const store = new MemoryStore();
    const parked = new ParkedSubscribers(store);
    const [a, b, c] = [0, 1, 2].map(() => new FakeSubscriber(parked.newId(), '/ch', undefined));
    b!.failWith = new Error('socket broke');
    for (const s of [a!, b!, c!]) await parked.park(s, join, 0);
    assert.equal((await store.info('/ch'))!.subscribers, 3);
    await store.publish('/ch', { data: Buffer.from('m'), contentType: undefined }, DEFAULT_BUFFER_RULES);
    await waitFor('delivery', () => a!.got.length > 0 && c!.got.length > 0);
    assert.deepEqual([a!.got, b!.got, c!.got], [['m'], ['abort:socket broke'], ['m']]);
    await waitFor('all counted out', async () => (await store.info('/ch'))?.subscribers !== 3);
    assert.equal(b!.parked, false);
    await store.close();
  });

  it('HTTP: a long-poll whose headers cannot be written is cut, not left hanging; the others are answered', async () => {
    const relay = createPushRelay();
    const subscriber = relay.subscriber();
    const server = await serveNodeHttp({
      '/sub': subscriber,
      // The same subscriber, on a response whose writeHead throws (as a broken header would make it).
      '/broken': (req, res) => {
        (res as ServerResponse & { writeHead: () => never }).writeHead = () => {
          throw new TypeError('Invalid character in header content ["Content-Type"]');
        };
        subscriber(req, res);
      },
    });
    try {
      const good = [request(server.url('/sub?id=c')), request(server.url('/sub?id=c'))];
      const broken = request(server.url('/broken?id=c')).then(
        (r) => `answered ${r.status}`,
        (err: Error) => `cut: ${err.message}`,
      );
      await waitFor('3 waiting', async () => (await relay.channelInfo('c'))?.subscribers === 3);
      await relay.publish('c', 'hello');
      const answers = await within(Promise.all(good), 5000, 'the working subscribers');
      assert.deepEqual(answers.map((r) => [r.status, r.text]), [[200, 'hello'], [200, 'hello']]);
      assert.match(await within(broken, 5000, 'the broken subscriber (it must not hang)'), /^cut: /);
      await waitFor('the broken one counted out', async () => (await relay.channelInfo('c'))?.subscribers === 0);
      // The channel keeps working.
      const next = request(server.url('/sub?id=c'), { headers: cursorOf(answers[0]!) });
      await waitFor('1 waiting', async () => (await relay.channelInfo('c'))?.subscribers === 1);
      await relay.publish('c', 'again');
      assert.equal((await within(next, 5000, 'the next long-poll')).text, 'again');
    } finally {
      await relay.close();
      await server.close();
    }
  });
});

describe('relay.publish() refuses what cannot be written', () => {
  for (const [what, options] of [
    ['a Content-Type with a line break', { contentType: 'text/plain\r\nX-Injected: 1' }],
    ['a Content-Type with a control character', { contentType: 'text/plain\u0001' }],
    ['an empty Content-Type', { contentType: '' }],
    ['an event name with a line break', { eventType: 'a\nid: 9' }],
  ] as const) {
    it(`${what}: TypeError, nothing stored`, async () => {
      const relay = createPushRelay();
      try {
        await assert.rejects(relay.publish('c', 'x', options), (err: unknown) => err instanceof TypeError && /publish\(\) (contentType|eventType) must/.test(err.message));
        assert.equal(await relay.channelInfo('c'), undefined);
        await relay.publish('c', 'fine', { contentType: 'text/plain; charset=utf-8', eventType: 'chat' });
        assert.equal((await relay.channelInfo('c'))!.messages, 1);
      } finally {
        await relay.close();
      }
    });
  }

  it('publish() called with an object instead of (channelId, data): a TypeError that shows the call', async () => {
    const relay = createPushRelay();
    try {
      const wrong = relay.publish as unknown as (options: object) => Promise<unknown>;
      await assert.rejects(wrong({ id: 'a', data: 'x' }), (err: unknown) => err instanceof TypeError && err.message === 'push-relay: publish(channelId, data, options) takes the channel id first, a string (got object)');
    } finally {
      await relay.close();
    }
  });
});
