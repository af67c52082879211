/** relay.close(): resolves once the store has counted every waiting subscriber out, bounded by its time-out. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createPushRelay, MemoryStore } from '../src/index.js';
import { request } from './helpers/http-client.js';
import { serveNodeHttp } from './helpers/servers.js';
import { waitFor } from './helpers/wait.js';

/** A MemoryStore whose leaves take `delay` ms (Infinity: never answer). */
class SlowLeaveStore extends MemoryStore {
  left = 0;
  constructor(readonly delay: number) {
    super();
  }
  override async leave(channel: string, ids: readonly string[]): Promise<void> {
    if (this.delay === Infinity) return new Promise(() => {});
    await new Promise((r) => setTimeout(r, this.delay));
    await super.leave(channel, ids);
    this.left += ids.length;
  }
}

async function parkedRelay(store: SlowLeaveStore) {
  const relay = createPushRelay({ store });
  const server = await serveNodeHttp({ '/sub': relay.subscriber() });
  const waiting = [request(server.url('/sub?id=a')), request(server.url('/sub?id=b'))];
  await waitFor('2 waiting subscribers', async () => (await store.info('/a'))?.subscribers === 1 && (await store.info('/b'))?.subscribers === 1);
  return { relay, server, waiting };
}

describe('relay.close()', () => {
  it('waits for the store to count the waiting subscribers out', async () => {
    const store = new SlowLeaveStore(150);
    const { relay, server, waiting } = await parkedRelay(store);
    await relay.close();
    assert.equal(store.left, 2, 'close() resolved before the leaves were done');
    assert.deepEqual((await Promise.all(waiting)).map((r) => r.status), [503, 503]);
    // A store the app made stays open for the app to close, after the relay.
    await store.close();
    await server.close();
  });

  it('gives up on a store that does not answer after its time-out', async () => {
    const store = new SlowLeaveStore(Infinity);
    const { relay, server, waiting } = await parkedRelay(store);
    const started = Date.now();
    await relay.close({ timeout: '300ms' });
    const took = Date.now() - started;
    assert.ok(took >= 250 && took < 3000, `close() took ${took} ms`);
    assert.deepEqual((await Promise.all(waiting)).map((r) => r.status), [503, 503]);
    await server.close();
  });

  it('after close: long-poll gets 503, an EventSource a 200 stream that ends with a spread reconnection hint', async () => {
    const relay = createPushRelay();
    const server = await serveNodeHttp({ '/sub': relay.subscriber() });
    await relay.close();
    const poll = await request(server.url('/sub?id=a'));
    assert.equal(poll.status, 503);
    assert.equal(poll.headers['retry-after'], '1');
    const hints = new Set<number>();
    for (let i = 0; i < 5; i++) {
      const stream = await request(server.url('/sub?id=a'), { headers: { Accept: 'text/event-stream' } });
      assert.equal(stream.status, 200);
      assert.match(String(stream.headers['content-type']), /^text\/event-stream/);
      const retry = [...stream.text.matchAll(/^retry: (\d+)$/gm)].map((m) => Number(m[1]));
      assert.ok(retry.length >= 1 && retry.at(-1)! >= 1000 && retry.at(-1)! < 3000, `last retry hint ${retry.at(-1)}`);
      hints.add(retry.at(-1)!);
      assert.match(stream.text, /event: push-relay-end\ndata: closing\n\n$/);
    }
    assert.ok(hints.size > 1, 'every browser gets the same delay: a restart would bring them all back at once');
    await server.close();
  });

  it('is idempotent: a second call gets the same promise', async () => {
    const relay = createPushRelay();
    const a = relay.close();
    assert.equal(relay.close(), a);
    await a;
  });
});
