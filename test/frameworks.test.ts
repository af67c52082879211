/**
 * The same flow under every framework the middlewares are typed for: Express 5, Express 4, Connect and
 * plain node:http (called without `next`). Raw requests, not fetch, so that Express's ETag/fresh logic
 * gets its chance to turn an answer into a 304.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { createPushRelay, type PushRelay } from '../src/index.js';
import { cursorOf, rawGet, request } from './helpers/http-client.js';
import { FRAMEWORKS, listen, serve, type TestServer } from './helpers/servers.js';
import { nextSecond, waitFor, within } from './helpers/wait.js';

const open: Array<{ relay: PushRelay; server: TestServer }> = [];
afterEach(async () => {
  for (const { relay, server } of open.splice(0)) {
    await relay.close();
    await server.close();
  }
});

for (const framework of FRAMEWORKS) {
  describe(`under ${framework}`, () => {
    async function start() {
      const relay = createPushRelay();
      const server = await serve(framework, { '/pub': relay.publisher(), '/sub': relay.subscriber() });
      open.push({ relay, server });
      return { relay, server };
    }

    it('long-polls, publishes 201/202, follows the cursor, and answers PUT/GET/DELETE', async () => {
      const { relay, server } = await start();
      const put = await request(server.url('/pub?id=c'), { method: 'PUT' });
      assert.equal(put.status, 200);
      assert.match(put.text, /^queued messages: 0\r\n/);
      const held = request(server.url('/sub?id=c'));
      await waitFor('a waiting subscriber', async () => (await relay.channelInfo('c'))?.subscribers === 1);
      const first = await request(server.url('/pub?id=c'), { method: 'POST', body: 'one', headers: { 'Content-Type': 'text/x-one' } });
      assert.equal(first.status, 201);
      const one = await within(held, 5000, 'held subscriber');
      assert.equal(one.status, 200);
      assert.equal(one.text, 'one');
      assert.equal(one.headers['content-type'], 'text/x-one');
      assert.equal((await request(server.url('/pub?id=c'), { method: 'POST', body: 'two' })).status, 202);
      const two = await request(server.url('/sub?id=c'), { headers: cursorOf(one) });
      assert.equal(two.text, 'two');
      const get = await request(server.url('/pub?id=c'), { headers: { Accept: 'application/json' } });
      assert.equal(get.status, 200);
      assert.equal(get.headers['content-type'], 'application/json');
      assert.equal(JSON.parse(get.text).messages, 2);
      const parked = request(server.url('/sub?id=c'), { headers: cursorOf(two) });
      await waitFor('a waiting subscriber', async () => (await relay.channelInfo('c'))?.subscribers === 1);
      assert.equal((await request(server.url('/pub?id=c'), { method: 'DELETE' })).status, 200);
      assert.equal((await within(parked, 5000, 'deleted channel')).status, 410);
      assert.equal((await request(server.url('/pub?id=c'), { method: 'DELETE' })).status, 404);
      assert.equal((await request(server.url('/pub?id=c'))).status, 404);
    });

    it('HEAD gets 405 on both endpoints', async () => {
      const { server } = await start();
      for (const [path, allow] of [
        ['/sub?id=h', 'GET'],
        ['/pub?id=h', 'GET, POST, PUT, DELETE'],
      ] as const) {
        const res = await request(server.url(path), { method: 'HEAD' });
        assert.equal(res.status, 405, path);
        assert.equal(res.headers.allow, allow, path);
      }
    });

    it('missing id: 400 with a text body', async () => {
      const { server } = await start();
      const res = await rawGet(server.port, '/sub');
      assert.equal(res.status, 400);
      assert.match(res.headers['content-type']!, /^text\/plain/);
      assert.match(res.body.toString(), /channel id/);
    });

    it('the first message of a new second (tag 0) is answered 200, not 304, to a raw request', async () => {
      const { relay, server } = await start();
      // A channel's first message takes its tag from the clock; the first of each later second is tag 0.
      await relay.publish('s', 'seed');
      await nextSecond();
      await relay.publish('s', 'old');
      const seed = await rawGet(server.port, '/sub?id=s');
      const old = await rawGet(server.port, '/sub?id=s', { 'If-Modified-Since': seed.headers['last-modified']!, 'If-None-Match': seed.headers.etag! });
      assert.equal(old.body.toString(), 'old');
      assert.equal(old.headers.etag, '0');
      await nextSecond();
      await relay.publish('s', 'new second');
      // If-None-Match: 0 equals the new message's Etag; Express's res.send/fresh would answer 304.
      const stored = await rawGet(server.port, '/sub?id=s', { 'If-Modified-Since': old.headers['last-modified']!, 'If-None-Match': '0' });
      assert.equal(stored.status, 200);
      assert.equal(stored.headers.etag, '0');
      assert.equal(stored.body.toString(), 'new second');
      // The same through a held request: parked with the cursor of 'new second', released by a message of a later second.
      const held = rawGet(server.port, '/sub?id=s', { 'If-Modified-Since': stored.headers['last-modified']!, 'If-None-Match': '0' });
      await waitFor('a waiting subscriber', async () => (await relay.channelInfo('s'))?.subscribers === 1);
      await nextSecond();
      await relay.publish('s', 'third second');
      const released = await within(held, 5000, 'held subscriber');
      assert.equal(released.status, 200);
      assert.equal(released.headers.etag, '0');
      assert.equal(released.body.toString(), 'third second');
    });
  });
}

describe('relay.handler(routes, app): the relay in front of an Express app', () => {
  it("serves the relay's routes itself and hands every other request to the app", async () => {
    const { default: express } = await import('express');
    const relay = createPushRelay();
    const app = express();
    const seenByApp: string[] = [];
    app.use((req, _res, next) => {
      seenByApp.push(req.url);
      next();
    });
    app.get('/hello', (_req, res) => {
      res.send('from the app');
    });
    const server = await listen(relay.handler({ '/pub': relay.publisher(), '/sub': relay.subscriber() }, app));
    open.push({ relay, server });
    const held = request(server.url('/sub?id=front'));
    await waitFor('a waiting subscriber', async () => (await relay.channelInfo('front'))?.subscribers === 1);
    assert.equal((await request(server.url('/pub?id=front'), { method: 'POST', body: 'pushed' })).status, 201);
    assert.equal((await within(held, 5000, 'held subscriber')).text, 'pushed');
    const hello = await request(server.url('/hello'));
    assert.equal(hello.status, 200);
    assert.equal(hello.text, 'from the app');
    assert.equal((await request(server.url('/elsewhere'))).status, 404);
    // The app saw only what the relay did not serve.
    assert.deepEqual(seenByApp, ['/hello', '/elsewhere']);
  });

  it('answers 404 itself without a fallback, and rejects a fallback that is not a handler', async () => {
    const relay = createPushRelay();
    const server = await listen(relay.handler({ '/sub': relay.subscriber() }));
    open.push({ relay, server });
    const res = await request(server.url('/other'));
    assert.equal(res.status, 404);
    assert.match(res.text, /no such endpoint/);
    assert.throws(() => relay.handler({}, 'app' as never), /fallback must be a request handler/);
  });
});
