/**
 * Long-poll resume as the clients people already use send it: `Last-Event-ID` / `last_event_id` (Nchan
 * reads them on long-poll too), and a request `Etag: time:tag` header, which NchanSubscriber.js sends on
 * its first poll after a page reload. The protocol's own cursor (If-Modified-Since / If-None-Match)
 * still wins when it is there.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createPushRelay, type PushRelay } from '../src/index.js';
import { cursorOf, request } from './helpers/http-client.js';
import { serveNodeHttp, type TestServer } from './helpers/servers.js';

describe('long-poll resume from the ids other clients send', () => {
  let relay: PushRelay;
  let server: TestServer;
  const ids: string[] = [];
  before(async () => {
    relay = createPushRelay();
    server = await serveNodeHttp({ '/sub': relay.subscriber(), '/multi': relay.subscriber({ channelId: () => ['d1', 'd2'] }) });
    for (const text of ['m1', 'm2', 'm3']) await relay.publish('d1', text);
    // The ids, as a protocol client walks them.
    let headers: Record<string, string> = {};
    for (let i = 0; i < 3; i++) {
      const res = await request(server.url('/sub?id=d1'), { headers, timeout: 3000 });
      ids.push(`${Date.parse(String(res.headers['last-modified'])) / 1000}:${String(res.headers.etag)}`);
      headers = cursorOf(res);
    }
  });
  after(async () => {
    await relay.close();
    await server.close();
  });
  const poll = async (path: string, headers: Record<string, string> = {}) => (await request(server.url(path), { headers, timeout: 3000 })).text;

  it('no cursor: the oldest message (unchanged)', async () => {
    assert.equal(await poll('/sub?id=d1'), 'm1');
  });
  it('Last-Event-ID header', async () => {
    assert.equal(await poll('/sub?id=d1', { 'Last-Event-ID': ids[0]! }), 'm2');
  });
  it('last_event_id query argument', async () => {
    assert.equal(await poll(`/sub?id=d1&last_event_id=${encodeURIComponent(ids[1]!)}`), 'm3');
  });
  it("NchanSubscriber's request Etag: time:tag", async () => {
    assert.equal(await poll('/sub?id=d1', { Etag: ids[1]! }), 'm3');
  });
  it('If-Modified-Since / If-None-Match win over the others', async () => {
    const [time, tag] = ids[0]!.split(':');
    const cursor = { 'If-Modified-Since': new Date(Number(time) * 1000).toUTCString(), 'If-None-Match': tag! };
    assert.equal(await poll('/sub?id=d1', { ...cursor, 'Last-Event-ID': ids[1]!, Etag: ids[1]! }), 'm2');
  });
  it('a request Etag that is not an id is ignored', async () => {
    assert.equal(await poll('/sub?id=d1', { Etag: '"abc"' }), 'm1');
  });
  it('several channels: the event id applies to each', async () => {
    assert.equal(await poll('/multi', { 'Last-Event-ID': ids[1]! }), 'm3');
  });
});
