/**
 * Idempotency-Key: a publisher that retries (after a 503 from a store that timed out, say) never
 * publishes twice while the first message is still stored. On both stores, over HTTP and in-process.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { createPushRelay, MemoryStore, type ChannelStore } from '../../src/index.js';
import { request } from '../helpers/http-client.js';
import { serveNodeHttp } from '../helpers/servers.js';
import { onRedis, type StoreFactory } from '../redis/redis-env.js';

function suite(label: string, makeStore: StoreFactory) {
  describe(`Idempotency-Key (${label})`, () => {
    const closers: Array<() => Promise<void>> = [];
    after(async () => {
      for (const c of closers.reverse()) await c();
    });
    async function relayWith(options = {}) {
      const { store, close } = await makeStore();
      const relay = createPushRelay({ store, ...options });
      const server = await serveNodeHttp({ '/pub': relay.publisher(), '/sub': relay.subscriber({ mode: 'interval-poll' }) });
      closers.push(close, () => relay.close(), () => server.close());
      return { relay, server, store };
    }
    const post = (url: string, body: string, key?: string) => request(url, { method: 'POST', body, headers: key ? { 'Idempotency-Key': key } : {} });

    it('a retry with the same key stores nothing and says so; another key publishes', async () => {
      const { relay, server } = await relayWith();
      const first = await post(server.url('/pub?id=k'), 'once', 'order-17');
      assert.equal(first.status, 202);
      assert.equal(first.headers['idempotent-replayed'], undefined);
      const retry = await post(server.url('/pub?id=k'), 'once', 'order-17');
      assert.equal(retry.status, 202);
      assert.equal(retry.headers['idempotent-replayed'], 'true');
      assert.equal((await relay.channelInfo('k'))!.messages, 1, 'stored once');
      assert.equal((await post(server.url('/pub?id=k'), 'twice', 'order-18')).status, 202);
      assert.equal((await relay.channelInfo('k'))!.messages, 2);
      // In-process, the same.
      await relay.publish('k', 'once', { idempotencyKey: 'order-17' });
      assert.equal((await relay.channelInfo('k'))!.messages, 2);
      // Keys are per channel.
      assert.equal((await post(server.url('/pub?id=other'), 'x', 'order-17')).headers['idempotent-replayed'], undefined);
    });

    it('kept for as long as the message is stored: once trimmed out, the key publishes again', async () => {
      const { relay, server } = await relayWith({ maxMessageBufferLength: 2 });
      await post(server.url('/pub?id=t'), 'a', 'key-a');
      await post(server.url('/pub?id=t'), 'b');
      await post(server.url('/pub?id=t'), 'c');
      assert.equal((await relay.channelInfo('t'))!.messages, 2, 'a was trimmed');
      const again = await post(server.url('/pub?id=t'), 'a', 'key-a');
      assert.equal(again.headers['idempotent-replayed'], undefined, 'a is gone: its key with it');
      assert.equal((await relay.channelInfo('t'))!.messages, 2);
    });

    it('a malformed key is 400 and stores nothing', async () => {
      const { relay, server } = await relayWith();
      for (const key of ['with space', 'x'.repeat(256)]) {
        const res = await post(server.url('/pub?id=bad'), 'x', key);
        assert.equal(res.status, 400, key);
        assert.match(res.text, /Idempotency-Key/);
      }
      assert.equal(await relay.channelInfo('bad'), undefined);
      await assert.rejects(relay.publish('bad', 'x', { idempotencyKey: '' }), TypeError);
    });
  });
}

suite('memory', async () => {
  const store: ChannelStore = new MemoryStore();
  return { store, close: () => store.close() };
});
await onRedis('Idempotency-Key', 'idempotency', suite);
