/** The statistics suite on MemoryStore (two relays on one store), and what needs no pair of stores. */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { createPushRelay, MemoryStore, type ChannelStore } from '../../src/index.js';
import { request } from '../helpers/http-client.js';
import { statisticsSuite } from './statistics-suite.js';

statisticsSuite('memory', async (options = {}) => {
  const store = new MemoryStore(options);
  return { a: store, b: store, workers: 1, close: () => store.close() };
});

describe('statistics: configuration and stores without statistics', () => {
  it('a store without listChannels, channelStats and summary answers 501', async () => {
    const inner = new MemoryStore();
    // A store of one's own that only has the required methods.
    const bare: ChannelStore = {
      publish: (c, m, r) => inner.publish(c, m, r),
      create: (c, r) => inner.create(c, r),
      next: (c, a) => inner.next(c, a),
      startCursor: (c, n) => inner.startCursor(c, n),
      received: (c, id) => inner.received(c, id),
      info: (c) => inner.info(c),
      delete: (c) => inner.delete(c),
      join: (c, r) => inner.join(c, r),
      leave: (c, ids) => inner.leave(c, ids),
      watch: (c, l) => inner.watch(c, l),
      close: () => inner.close(),
    };
    const relay = createPushRelay({ store: bare });
    const server = http.createServer(relay.handler({ '/stats': relay.statistics() }));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const res = await request(`http://127.0.0.1:${(server.address() as AddressInfo).port}/stats`);
      assert.equal(res.status, 501);
      assert.match(res.text, /keeps no statistics/);
      await assert.rejects(relay.stats(), /keeps no statistics/);
    } finally {
      await relay.close();
      await inner.close();
      server.close();
    }
  });

  it('wildcard options are checked when the relay and its endpoints are made', () => {
    assert.throws(() => createPushRelay().subscriber({ wildcardChannelMaxQtd: 2 }), /wildcardChannelMaxQtd.*wildcardChannelPrefix/);
    assert.throws(() => createPushRelay({ wildcardChannelPrefix: 'bd_', maxWildcardChannels: 2 }).subscriber({ wildcardChannelMaxQtd: 3 }), /larger than the store's "maxWildcardChannels" \(2\)/);
    assert.throws(() => new MemoryStore({ maxWildcardChannels: 3 }), /needs "wildcardChannelPrefix"/);
    assert.throws(() => createPushRelay({ store: new MemoryStore(), wildcardChannelPrefix: 'x' }), /give it to your store/);
    assert.throws(() => createPushRelay().statistics({ splitChannelIds: '' } as never), /splitChannelIds/);
    assert.throws(() => createPushRelay().statistics({ mode: 'long-poll' } as never), /does not apply to statistics\(\)/);
  });
});
