/**
 * The protocol over HTTP (docs/protocol.md's subscriber and publisher tables, every directive), run against
 * any ChannelStore: `protocol.memory.test.ts` calls it with a MemoryStore, the Redis tests with a
 * RedisStore. It only uses the public API and HTTP, never a store's internals; every test uses its own
 * channel ids so that one store can serve the whole suite.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, afterEach, before, describe, it } from 'node:test';
import {
  createPushRelay,
  type ChannelStore,
  type Middleware,
  type PublisherOptions,
  type PushRelay,
  type PushRelayOptions,
  type SubscriberOptions,
} from '../src/index.js';
import { cursorOf, rawGet, request, type HttpResponse, type RequestOptions } from './helpers/http-client.js';
import { serveNodeHttp, type TestServer } from './helpers/servers.js';
import { waitFor, within } from './helpers/wait.js';

export type StoreFactory = () => Promise<{ store: ChannelStore; close(): Promise<void> }>;

interface FixtureOptions {
  relay?: Omit<PushRelayOptions, 'store'>;
  publisher?: PublisherOptions;
  subscriber?: SubscriberOptions;
}

export interface Fixture {
  relay: PushRelay;
  server: TestServer;
  /** A channel id no other test uses. */
  id(): string;
  pub(method: string, id: string | undefined, options?: RequestOptions): Promise<HttpResponse>;
  post(id: string, body: string | Buffer, headers?: Record<string, string>): Promise<HttpResponse>;
  sub(id: string | undefined, headers?: Record<string, string>): Promise<HttpResponse>;
  /** Resolves once the channel has `n` waiting subscribers (as channel info counts them). */
  waiting(id: string, n: number): Promise<void>;
}

/** text/plain channel info -> numbers. */
export function parseInfo(text: string): { messages: number; requested: number; subscribers: number; lastMessageId: string } {
  const m = /^queued messages: (\d+)\r\nlast requested: (-?\d+) sec\. ago\r\nactive subscribers: (\d+)\r\nlast message id: (\d+:\d+)$/.exec(text);
  assert.ok(m, `not text/plain channel info: ${JSON.stringify(text)}`);
  return { messages: Number(m[1]), requested: Number(m[2]), subscribers: Number(m[3]), lastMessageId: m[4]! };
}

const q = (id: string | undefined) => (id === undefined ? '' : `?id=${encodeURIComponent(id)}`);

export function protocolSuite(label: string, makeStore: StoreFactory): void {
  describe(`protocol over HTTP (${label})`, () => {
    let store: ChannelStore;
    let closeStore: () => Promise<void>;
    const open: Array<{ relay: PushRelay; server: TestServer }> = [];
    let counter = 0;
    const prefix = randomBytes(4).toString('hex');

    before(async () => {
      ({ store, close: closeStore } = await makeStore());
    });
    afterEach(async () => {
      for (const f of open.splice(0)) {
        await f.relay.close();
        await f.server.close();
      }
    });
    after(async () => {
      await closeStore();
    });

    async function fixture(options: FixtureOptions = {}): Promise<Fixture> {
      const relay = createPushRelay({ ...options.relay, store });
      const server = await serveNodeHttp({ '/pub': relay.publisher(options.publisher), '/sub': relay.subscriber(options.subscriber) });
      open.push({ relay, server });
      const f: Fixture = {
        relay,
        server,
        id: () => `${label}-${prefix}-${++counter}`,
        pub: (method, id, opts = {}) => request(server.url(`/pub${q(id)}`), { ...opts, method }),
        post: (id, body, headers = {}) => request(server.url(`/pub${q(id)}`), { method: 'POST', body, headers }),
        sub: (id, headers = {}) => request(server.url(`/sub${q(id)}`), { headers }),
        waiting: async (id, n) => {
          const group = options.subscriber?.channelGroup ?? options.relay?.channelGroup;
          await waitFor(`${n} waiting subscribers on ${id}`, async () => (await relay.channelInfo(id, group ? { channelGroup: group } : {}))?.subscribers === n);
        },
      };
      return f;
    }

    describe('subscriber endpoint', () => {
      it('GET without a cursor answers the oldest stored message, with every header, and never consumes it', async () => {
        const f = await fixture();
        const id = f.id();
        await f.post(id, 'first', { 'Content-Type': 'text/x-first' });
        await f.post(id, 'second');
        for (let i = 0; i < 2; i++) {
          const res = await f.sub(id);
          assert.equal(res.status, 200);
          assert.equal(res.text, 'first');
          assert.equal(res.headers['content-type'], 'text/x-first');
          assert.match(res.headers.etag ?? '', /^\d+$/, 'Etag is the bare tag');
          assert.ok(Number.isFinite(Date.parse(res.headers['last-modified']!)));
          assert.equal(res.headers.vary, 'If-None-Match, If-Modified-Since');
          assert.equal(res.headers['cache-control'], 'no-cache, no-transform');
          assert.equal(res.headers['content-length'], '5');
        }
      });

      it('Last-Modified + Etag sent back answer the next message', async () => {
        const f = await fixture();
        const id = f.id();
        for (const t of ['a', 'b', 'c']) await f.post(id, t);
        const a = await f.sub(id);
        const b = await f.sub(id, cursorOf(a));
        const c = await f.sub(id, cursorOf(b));
        assert.deepEqual([a.text, b.text, c.text], ['a', 'b', 'c']);
      });

      it('accepts the tag quoted or W/-prefixed, and counts a garbage tag as 0', async () => {
        const f = await fixture({ subscriber: { mode: 'interval-poll' } });
        const id = f.id();
        for (const t of ['a', 'b', 'c']) await f.post(id, t);
        const a = await f.sub(id);
        const b = await f.sub(id, cursorOf(a));
        const ims = b.headers['last-modified']!;
        const tag = b.headers.etag!;
        assert.equal((await f.sub(id, { 'If-Modified-Since': ims, 'If-None-Match': `"${tag}"` })).text, 'c');
        assert.equal((await f.sub(id, { 'If-Modified-Since': ims, 'If-None-Match': `W/"${tag}"` })).text, 'c');
        // Garbage counts as tag 0 of a's second: the answer is the first message after (time of a, 0),
        // which is a itself (a channel's first message takes its tag from the clock, above 0)...
        const aIms = a.headers['last-modified']!;
        assert.ok(Number(a.headers.etag) > 0, 'a is the first message of a new channel');
        assert.equal((await f.sub(id, { 'If-Modified-Since': aIms, 'If-None-Match': 'garbage' })).text, 'a');
        // ...and an explicit tag 0 reads the same.
        assert.equal((await f.sub(id, { 'If-Modified-Since': aIms, 'If-None-Match': '0' })).text, 'a');
      });

      it('If-Modified-Since alone answers the first message of a later second', async () => {
        const f = await fixture({ subscriber: { mode: 'interval-poll' } });
        const id = f.id();
        await f.post(id, 'only');
        const res = await f.sub(id);
        const time = Date.parse(res.headers['last-modified']!);
        const same = await f.sub(id, { 'If-Modified-Since': res.headers['last-modified']! });
        assert.equal(same.status, 304, 'every message of that second counts as received');
        const earlier = await f.sub(id, { 'If-Modified-Since': new Date(time - 1000).toUTCString() });
        assert.equal(earlier.status, 200);
        assert.equal(earlier.text, 'only');
      });

      // The seeds' Ruby client re-polls with If-Modified-Since only: a burst in one second must not be skipped.
      async function imsOnlyClient(f: Fixture, id: string): Promise<string[]> {
        const got: string[] = [];
        let ims: string | undefined;
        for (;;) {
          const res = await f.sub(id, ims ? { 'If-Modified-Since': ims } : {});
          if (res.status !== 200) break;
          got.push(res.text);
          ims = res.headers['last-modified'];
        }
        return got;
      }

      it('distinctSeconds: an If-Modified-Since-only client receives every message of a burst', async () => {
        const f = await fixture({ publisher: { distinctSeconds: true, messageBufferLength: 50 }, subscriber: { mode: 'interval-poll' } });
        const id = f.id();
        const sent = Array.from({ length: 21 }, (_, i) => `m${i}`);
        for (const t of sent) await f.post(id, t);
        assert.deepEqual(await imsOnlyClient(f, id), sent);
        // Each message has its own second, tag 0 after the first; they run ahead of the clock.
        const seconds = new Set<string>();
        let res = await f.sub(id);
        for (let i = 0; res.status === 200; i++) {
          seconds.add(res.headers['last-modified']!);
          if (i > 0) assert.equal(res.headers.etag, '0');
          res = await f.sub(id, cursorOf(res));
        }
        assert.equal(seconds.size, 21);
        // In-process publishes follow the relay's publisher option too.
        const relayWide = await fixture({ relay: { distinctSeconds: true, messageBufferLength: 50 }, subscriber: { mode: 'interval-poll' } });
        const other = relayWide.id();
        for (const t of sent.slice(0, 5)) await relayWide.relay.publish(other, t);
        assert.deepEqual(await imsOnlyClient(relayWide, other), sent.slice(0, 5));
      });

      it('without distinctSeconds an If-Modified-Since-only client skips the rest of a second (what the option is for)', async () => {
        const f = await fixture({ publisher: { messageBufferLength: 50 }, subscriber: { mode: 'interval-poll' } });
        const id = f.id();
        for (let i = 0; i < 21; i++) await f.post(id, `m${i}`);
        const got = await imsOnlyClient(f, id);
        assert.ok(got.length < 21, `got all ${got.length}: the burst spanned 21 seconds?`);
      });

      it('an invalid If-Modified-Since counts as none (the oldest message)', async () => {
        const f = await fixture();
        const id = f.id();
        await f.post(id, 'a');
        await f.post(id, 'b');
        const res = await f.sub(id, { 'If-Modified-Since': 'not a date', 'If-None-Match': '5' });
        assert.equal(res.status, 200);
        assert.equal(res.text, 'a');
      });

      it('a cursor older than everything stored gets the oldest stored message at once', async () => {
        const f = await fixture({ publisher: { maxMessageBufferLength: 2 } });
        const id = f.id();
        await f.post(id, '1');
        const first = await f.sub(id);
        for (const t of ['2', '3', '4']) await f.post(id, t);
        // The cursor of message 1, long dropped: the next stored one is 3.
        assert.equal((await f.sub(id, cursorOf(first))).text, '3');
        const old = await f.sub(id, { 'If-Modified-Since': 'Thu, 01 Jan 2015 00:00:00 GMT', 'If-None-Match': '0' });
        assert.equal(old.status, 200);
        assert.equal(old.text, '3');
      });

      it('long-poll holds the request until a message arrives, answered as if it had been stored', async () => {
        const f = await fixture();
        const id = f.id();
        await f.pub('PUT', id);
        const waiting = f.sub(id);
        await f.waiting(id, 1);
        const posted = await f.post(id, 'late', { 'Content-Type': 'text/x-late' });
        assert.equal(posted.status, 201);
        const res = await within(waiting, 5000, 'held subscriber');
        assert.equal(res.status, 200);
        assert.equal(res.text, 'late');
        assert.equal(res.headers['content-type'], 'text/x-late');
        const stored = await f.sub(id);
        for (const h of ['last-modified', 'etag', 'content-type', 'vary', 'cache-control', 'content-length']) {
          assert.equal(res.headers[h], stored.headers[h], h);
        }
      });

      it("mode 'long-poll' given explicitly pins the endpoint: an EventSource Accept header still long-polls", async () => {
        const f = await fixture({ subscriber: { mode: 'long-poll' } });
        const id = f.id();
        await f.pub('PUT', id);
        const held = f.sub(id, { Accept: 'text/event-stream' });
        await f.waiting(id, 1);
        await f.post(id, 'plain long-poll', { 'Content-Type': 'text/x-lp' });
        const res = await within(held, 5000, 'held subscriber');
        assert.equal(res.status, 200);
        assert.equal(res.text, 'plain long-poll');
        assert.equal(res.headers['content-type'], 'text/x-lp');
      });

      it('a held subscriber that asked with a cursor gets the message after it', async () => {
        const f = await fixture();
        const id = f.id();
        await f.post(id, 'seen');
        const seen = await f.sub(id);
        const waiting = f.sub(id, cursorOf(seen));
        await f.waiting(id, 1);
        await f.post(id, 'new');
        assert.equal((await within(waiting, 5000, 'held subscriber')).text, 'new');
      });

      it('interval-poll answers 304 at once, echoing the cursor it was sent', async () => {
        const f = await fixture({ subscriber: { mode: 'interval-poll' } });
        const id = f.id();
        await f.pub('PUT', id);
        const empty = await f.sub(id);
        assert.equal(empty.status, 304);
        assert.equal(empty.body.length, 0);
        await f.post(id, 'x');
        const x = await f.sub(id);
        const none = await f.sub(id, cursorOf(x));
        assert.equal(none.status, 304);
        assert.equal(none.headers['last-modified'], x.headers['last-modified']);
        assert.equal(none.headers.etag, x.headers.etag);
      });

      it('subscriberTimeout answers a held request 304, not before its time', async () => {
        const f = await fixture({ subscriber: { subscriberTimeout: 300 } });
        const id = f.id();
        await f.post(id, 'x');
        const x = await f.sub(id);
        const started = Date.now();
        const res = await within(f.sub(id, cursorOf(x)), 5000, 'timed-out subscriber');
        assert.equal(res.status, 304);
        assert.ok(Date.now() - started >= 290, `answered after ${Date.now() - started} ms`);
        assert.equal(res.headers.etag, x.headers.etag);
        assert.equal((await f.relay.channelInfo(id))!.subscribers, 0);
      });

      it('DELETE answers held subscribers 410 at once', async () => {
        const f = await fixture();
        const id = f.id();
        await f.pub('PUT', id);
        const held = [f.sub(id), f.sub(id)];
        await f.waiting(id, 2);
        const deleted = await f.pub('DELETE', id);
        assert.equal(deleted.status, 200);
        assert.equal(parseInfo(deleted.text).subscribers, 2);
        for (const res of await within(Promise.all(held), 5000, 'deleted channel')) {
          assert.equal(res.status, 410);
          assert.match(res.text, /deleted/);
        }
      });

      it('broadcast (the default): every held request gets the message', async () => {
        const f = await fixture();
        const id = f.id();
        await f.pub('PUT', id);
        const held = [f.sub(id), f.sub(id), f.sub(id)];
        await f.waiting(id, 3);
        const posted = await f.post(id, 'all');
        assert.equal(posted.status, 201);
        assert.equal(parseInfo(posted.text).subscribers, 3);
        for (const res of await within(Promise.all(held), 5000, 'broadcast')) assert.equal(res.text, 'all');
      });

      it('concurrency last: the older held request gets 409, the newer one the message', async () => {
        const f = await fixture({ subscriber: { concurrency: 'last' } });
        const id = f.id();
        await f.pub('PUT', id);
        const older = f.sub(id);
        await f.waiting(id, 1);
        const newer = f.sub(id);
        const refused = await within(older, 5000, 'older subscriber');
        assert.equal(refused.status, 409);
        assert.ok(refused.text.length > 0);
        await f.waiting(id, 1);
        await f.post(id, 'to the newest');
        assert.equal((await within(newer, 5000, 'newer subscriber')).text, 'to the newest');
      });

      it('concurrency first: the newcomer gets 409, the first keeps waiting', async () => {
        const f = await fixture({ subscriber: { concurrency: 'first' } });
        const id = f.id();
        await f.pub('PUT', id);
        const first = f.sub(id);
        await f.waiting(id, 1);
        const newcomer = await within(f.sub(id), 5000, 'newcomer');
        assert.equal(newcomer.status, 409);
        await f.post(id, 'to the first');
        assert.equal((await within(first, 5000, 'first subscriber')).text, 'to the first');
      });

      it('authorizedChannelsOnly: 403 until the channel exists', async () => {
        const f = await fixture({ subscriber: { authorizedChannelsOnly: true, mode: 'interval-poll' } });
        const id = f.id();
        const refused = await f.sub(id);
        assert.equal(refused.status, 403);
        assert.ok(refused.text.length > 0);
        assert.equal(await f.relay.channelInfo(id), undefined, 'a refused subscriber creates nothing');
        await f.pub('PUT', id);
        assert.equal((await f.sub(id)).status, 304);
        await f.post(id, 'hi');
        assert.equal((await f.sub(id)).text, 'hi');
      });

      it('authorizedChannelsOnly also refuses a long-poll on a missing channel', async () => {
        const f = await fixture({ subscriber: { authorizedChannelsOnly: true } });
        assert.equal((await within(f.sub(f.id()), 5000, 'refused subscriber')).status, 403);
      });

      it('maxChannelSubscribers: one more waiting request gets 403', async () => {
        const f = await fixture({ subscriber: { maxChannelSubscribers: 2 } });
        const id = f.id();
        await f.pub('PUT', id);
        const held = [f.sub(id), f.sub(id)];
        await f.waiting(id, 2);
        const third = await within(f.sub(id), 5000, 'third subscriber');
        assert.equal(third.status, 403);
        assert.match(third.text, /2/);
        await f.post(id, 'm');
        for (const res of await Promise.all(held)) assert.equal(res.text, 'm');
      });

      it('no channel id: 400 with a text body', async () => {
        const f = await fixture();
        const res = await f.sub(undefined);
        assert.equal(res.status, 400);
        assert.match(res.headers['content-type']!, /^text\/plain/);
        assert.match(res.text, /channel id/);
      });

      it('maxChannelIdLength: a longer id gets 400 naming the limit', async () => {
        const f = await fixture({ relay: { maxChannelIdLength: 10 }, subscriber: { mode: 'interval-poll' } });
        const res = await f.sub('x'.repeat(11));
        assert.equal(res.status, 400);
        assert.match(res.text, /maxChannelIdLength/);
        assert.match(res.text, /\b10\b/);
        assert.equal((await f.sub('y'.repeat(10))).status, 304);
      });

      it('answers 405 with Allow: GET to every other method, HEAD included', async () => {
        const f = await fixture();
        for (const method of ['POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS']) {
          const res = await request(f.server.url(`/sub?id=${f.id()}`), { method });
          assert.equal(res.status, 405, method);
          assert.equal(res.headers.allow, 'GET', method);
        }
      });

      it('defaultContentType applies to messages published without one, and only to those', async () => {
        const f = await fixture({ subscriber: { defaultContentType: 'application/x-default' } });
        const id = f.id();
        await request(f.server.url(`/pub?id=${id}`), { method: 'POST', body: 'bare' });
        await f.post(id, 'typed', { 'Content-Type': 'text/x-typed' });
        const bare = await f.sub(id);
        assert.equal(bare.headers['content-type'], 'application/x-default');
        assert.equal((await f.sub(id, cursorOf(bare))).headers['content-type'], 'text/x-typed');
      });

      it('without defaultContentType, a message published without one has no Content-Type', async () => {
        const f = await fixture();
        const id = f.id();
        await request(f.server.url(`/pub?id=${id}`), { method: 'POST', body: 'bare' });
        assert.equal((await f.sub(id)).headers['content-type'], undefined);
      });

      it('deleteOldestReceivedMessage: the oldest goes once received, down to the minimum', async () => {
        const f = await fixture({ subscriber: { deleteOldestReceivedMessage: true }, publisher: { minMessageBufferLength: 1 } });
        const id = f.id();
        for (const t of ['1', '2', '3']) await f.post(id, t);
        assert.equal((await f.sub(id)).text, '1');
        await waitFor('message 1 deleted', async () => (await f.relay.channelInfo(id))!.messages === 2);
        assert.equal((await f.sub(id)).text, '2');
        await waitFor('message 2 deleted', async () => (await f.relay.channelInfo(id))!.messages === 1);
        assert.equal((await f.sub(id)).text, '3');
        // The minimum (1) stays: reading it again still answers it.
        assert.equal((await f.sub(id)).text, '3');
        assert.equal((await f.relay.channelInfo(id))!.messages, 1);
      });

      it('without deleteOldestReceivedMessage, receiving deletes nothing', async () => {
        const f = await fixture();
        const id = f.id();
        for (const t of ['1', '2']) await f.post(id, t);
        await f.sub(id);
        await f.sub(id);
        assert.equal((await f.relay.channelInfo(id))!.messages, 2);
      });

      it('records when a subscriber last requested the channel', async () => {
        const f = await fixture({ subscriber: { mode: 'interval-poll' } });
        const id = f.id();
        assert.equal(parseInfo((await f.pub('PUT', id)).text).requested, -1);
        await f.sub(id);
        const requested = parseInfo((await f.pub('GET', id)).text).requested;
        assert.ok(requested === 0 || requested === 1, `requested ${requested}`);
      });
    });

    describe('publisher endpoint', () => {
      it('answers the publisher before it writes to the waiting subscribers', async () => {
        const relay = createPushRelay({ store });
        const order: string[] = [];
        // Records, server side, the order in which the answers are ended.
        const logged =
          (label: string, middleware: Middleware): Middleware =>
          (req, res, next) => {
            const end = res.end.bind(res) as (...args: unknown[]) => typeof res;
            res.end = ((...args: unknown[]) => {
              order.push(label);
              return end(...args);
            }) as typeof res.end;
            middleware(req, res, next);
          };
        const server = await serveNodeHttp({ '/pub': logged('publisher', relay.publisher()), '/sub': logged('subscriber', relay.subscriber()) });
        open.push({ relay, server });
        const id = `${label}-${prefix}-first`;
        const held = [request(server.url(`/sub${q(id)}`)), request(server.url(`/sub${q(id)}`))];
        await waitFor('2 waiting subscribers', async () => (await relay.channelInfo(id))?.subscribers === 2);
        const published = await request(server.url(`/pub${q(id)}`), { method: 'POST', body: 'hello' });
        assert.equal(published.status, 201);
        for (const res of await within(Promise.all(held), 5000, 'both subscribers')) assert.equal(res.text, 'hello');
        assert.deepEqual(order, ['publisher', 'subscriber', 'subscriber']);
      });

      it('POST without waiting subscribers: 202 with channel info', async () => {
        const f = await fixture();
        const id = f.id();
        const res = await f.post(id, 'hello');
        assert.equal(res.status, 202);
        assert.equal(res.headers['content-type'], 'text/plain');
        const info = parseInfo(res.text);
        assert.equal(info.messages, 1);
        assert.equal(info.subscribers, 0);
        assert.equal(info.requested, -1);
        const msg = await f.sub(id);
        assert.equal(info.lastMessageId, `${Date.parse(msg.headers['last-modified']!) / 1000}:${msg.headers.etag}`);
      });

      it('PUT creates the channel and publishes nothing (200 with channel info)', async () => {
        const f = await fixture({ subscriber: { mode: 'interval-poll' } });
        const id = f.id();
        assert.equal((await f.pub('GET', id)).status, 404);
        const res = await f.pub('PUT', id);
        assert.equal(res.status, 200);
        assert.deepEqual(parseInfo(res.text), { messages: 0, requested: -1, subscribers: 0, lastMessageId: '0:0' });
        assert.equal((await f.pub('GET', id)).status, 200);
        assert.equal((await f.sub(id)).status, 304, 'no message was published');
        // PUT again keeps what is there.
        await f.post(id, 'x');
        assert.equal(parseInfo((await f.pub('PUT', id)).text).messages, 1);
      });

      it('GET answers channel info, or 404 and never creates', async () => {
        const f = await fixture();
        const id = f.id();
        const missing = await f.pub('GET', id);
        assert.equal(missing.status, 404);
        assert.ok(missing.text.length > 0);
        assert.equal((await f.pub('GET', id)).status, 404);
        assert.equal(await f.relay.channelInfo(id), undefined);
        await f.post(id, 'a');
        await f.post(id, 'b');
        const res = await f.pub('GET', id);
        assert.equal(res.status, 200);
        assert.equal(parseInfo(res.text).messages, 2);
      });

      it('DELETE answers the channel info it had, then GET and DELETE answer 404', async () => {
        const f = await fixture({ subscriber: { mode: 'interval-poll' } });
        const id = f.id();
        await f.post(id, 'a');
        const res = await f.pub('DELETE', id);
        assert.equal(res.status, 200);
        assert.equal(parseInfo(res.text).messages, 1);
        assert.equal((await f.pub('GET', id)).status, 404);
        assert.equal((await f.pub('DELETE', id)).status, 404);
        assert.equal((await f.sub(id)).status, 304, 'its messages are gone');
      });

      it('answers 405 with Allow to other methods, HEAD included', async () => {
        const f = await fixture();
        for (const method of ['HEAD', 'PATCH', 'OPTIONS']) {
          const res = await request(f.server.url(`/pub?id=${f.id()}`), { method });
          assert.equal(res.status, 405, method);
          assert.equal(res.headers.allow, 'GET, POST, PUT, DELETE', method);
        }
      });

      it('no channel id: 400; id too long: 400 naming the limit', async () => {
        const f = await fixture({ publisher: { maxChannelIdLength: 8 } });
        const missing = await f.post(undefined as never, 'x');
        assert.equal(missing.status, 400);
        assert.match(missing.text, /channel id/);
        const long = await f.post('123456789', 'x');
        assert.equal(long.status, 400);
        assert.match(long.text, /maxChannelIdLength \(8/);
        assert.equal(await f.relay.channelInfo('123456789'), undefined);
        assert.equal((await f.post('12345678', 'x')).status, 202);
      });

      it('negotiates the channel info format by Accept, answering the type asked for', async () => {
        const f = await fixture();
        const id = f.id();
        await f.post(id, 'x');
        const json = await f.pub('GET', id, { headers: { Accept: 'application/json' } });
        assert.equal(json.headers['content-type'], 'application/json');
        assert.equal(JSON.parse(json.text).messages, 1);
        assert.match(json.text, /^\{"messages": 1, "requested": -1, "subscribers": 0, "last_message_id": "\d+:\d+" \}$/);
        const textJson = await f.pub('GET', id, { headers: { Accept: 'text/json' } });
        assert.equal(textJson.headers['content-type'], 'text/json');
        const xml = await f.pub('GET', id, { headers: { Accept: 'text/plain;q=0.2, application/xml' } });
        assert.equal(xml.headers['content-type'], 'application/xml');
        assert.match(xml.text, /^<\?xml version="1.0" encoding="UTF-8" \?>\r\n<channel>\r\n {2}<messages>1<\/messages>\r\n/);
        const yaml = await f.post(id, 'y', { Accept: 'text/yaml' });
        assert.equal(yaml.headers['content-type'], 'text/yaml');
        assert.match(yaml.text, /^---\r\nmessages: 2\r\nrequested: -1\r\nsubscribers: 0\r\nlast_message_id: "\d+:\d+"\r\n\r\n$/);
        const fallback = await f.pub('PUT', id, { headers: { Accept: 'image/png' } });
        assert.equal(fallback.headers['content-type'], 'text/plain');
      });

      it('every 2xx carries channel info (POST 201/202, PUT, GET, DELETE)', async () => {
        const f = await fixture();
        const id = f.id();
        const answers = [await f.pub('PUT', id), await f.post(id, 'a')];
        const held = f.sub(id, cursorOf(await f.sub(id)));
        await f.waiting(id, 1);
        answers.push(await f.post(id, 'b'));
        await held;
        answers.push(await f.pub('GET', id), await f.pub('DELETE', id));
        assert.deepEqual(answers.map((r) => r.status), [200, 202, 201, 200, 200]);
        for (const res of answers) parseInfo(res.text);
      });

      it('the message keeps its Content-Type; bodies travel byte for byte', async () => {
        const f = await fixture({ publisher: { maxMessageSize: '256kb' } });
        const id = f.id();
        const every = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
        const random = randomBytes(200 * 1024);
        await f.post(id, every, { 'Content-Type': 'application/octet-stream' });
        await f.post(id, random, { 'Content-Type': 'image/x-thing; charset=binary' });
        await f.post(id, Buffer.alloc(0), { 'Content-Type': 'text/x-empty' });
        const a = await f.sub(id);
        assert.ok(a.body.equals(every));
        assert.equal(a.headers['content-type'], 'application/octet-stream');
        const b = await f.sub(id, cursorOf(a));
        assert.ok(b.body.equals(random));
        assert.equal(b.headers['content-type'], 'image/x-thing; charset=binary');
        const c = await f.sub(id, cursorOf(b));
        assert.equal(c.status, 200);
        assert.equal(c.body.length, 0);
        assert.equal(c.headers['content-type'], 'text/x-empty');
      });

      it('maxMessageSize: a larger body gets 413 and nothing is stored', async () => {
        const f = await fixture({ publisher: { maxMessageSize: 1000 } });
        const id = f.id();
        const res = await f.post(id, Buffer.alloc(1001, 'x'));
        assert.equal(res.status, 413);
        assert.match(res.text, /maxMessageSize/);
        assert.equal(await f.relay.channelInfo(id), undefined);
        assert.equal((await f.post(id, Buffer.alloc(1000, 'x'))).status, 202);
      });
    });

    describe('buffer and channel directives', () => {
      it('storeMessages false: delivered to held subscribers only, never stored', async () => {
        const f = await fixture({ publisher: { storeMessages: false }, subscriber: { mode: 'long-poll' } });
        const id = f.id();
        await f.pub('PUT', id);
        const held = f.sub(id);
        await f.waiting(id, 1);
        const res = await f.post(id, 'live');
        assert.equal(res.status, 201);
        assert.equal(parseInfo(res.text).messages, 0);
        assert.equal((await within(held, 5000, 'held subscriber')).text, 'live');
        const info = await f.relay.channelInfo(id);
        assert.equal(info?.messages ?? 0, 0);
      });

      it('storeMessages false: every publish answered 201 reaches a subscriber, even one arriving as it was published', async () => {
        const f = await fixture({ publisher: { storeMessages: false }, subscriber: { mode: 'long-poll' } });
        // Each channel: a long-poll on its way in, publishes racing it until one answers 201 (or it
        // took one answered 202, published as it was counted in).
        const race = async () => {
          const id = f.id();
          let answered = false;
          const held = f.sub(id).finally(() => (answered = true));
          for (let k = 0; k < 40 && !answered; k++) {
            const res = await f.post(id, `m${k}`);
            if (res.status === 201) return { expected: `m${k}`, got: (await within(held, 5000, 'the subscriber counted by that 201')).text };
            assert.equal(res.status, 202);
            await new Promise((resolve) => setTimeout(resolve, 1));
          }
          const got = (await within(held, 5000, 'the subscriber')).text;
          return { expected: got, got };
        };
        for (let round = 0; round < 4; round++) {
          const results = await Promise.all(Array.from({ length: 15 }, race));
          assert.deepEqual(results.map((r) => r.got), results.map((r) => r.expected));
        }
      });

      it('maxMessageBufferLength drops the oldest beyond it', async () => {
        const f = await fixture({ publisher: { maxMessageBufferLength: 3 } });
        const id = f.id();
        let last: HttpResponse | undefined;
        for (const t of ['1', '2', '3', '4', '5']) last = await f.post(id, t);
        assert.equal(parseInfo(last!.text).messages, 3);
        assert.equal((await f.sub(id)).text, '3');
      });

      it('the default buffer keeps 10 messages', async () => {
        const f = await fixture();
        const id = f.id();
        for (let i = 1; i <= 12; i++) await f.post(id, String(i));
        assert.equal((await f.relay.channelInfo(id))!.messages, 10);
        assert.equal((await f.sub(id)).text, '3');
      });

      it('messageBufferLength sets minimum and maximum', async () => {
        const f = await fixture({ publisher: { messageBufferLength: 2, messageTimeout: '1s' } });
        const id = f.id();
        for (const t of ['1', '2', '3']) await f.post(id, t);
        assert.equal((await f.relay.channelInfo(id))!.messages, 2, 'maximum');
        // A control channel with the same timeout and no minimum shows when expiry has run.
        const control = await fixture({ publisher: { minMessageBufferLength: 0, messageTimeout: '1s' } });
        const cid = control.id();
        await control.post(cid, 'c');
        await waitFor('the control message to expire', async () => ((await control.relay.channelInfo(cid))?.messages ?? 0) === 0);
        assert.equal((await f.relay.channelInfo(id))!.messages, 2, 'minimum kept after expiry');
        assert.equal((await f.sub(id)).text, '2');
      });

      it('messageTimeout expires messages; minMessageBufferLength keeps the newest ones', async () => {
        const f = await fixture({ publisher: { minMessageBufferLength: 2, maxMessageBufferLength: 10, messageTimeout: '1s' } });
        const id = f.id();
        const started = Date.now();
        for (const t of ['1', '2', '3', '4']) await f.post(id, t);
        await waitFor('expiry down to the minimum', async () => (await f.relay.channelInfo(id))!.messages === 2, 5000);
        assert.ok(Date.now() - started >= 900, 'not before messageTimeout');
        const oldest = await f.sub(id);
        assert.equal(oldest.text, '3');
        assert.equal((await f.sub(id, cursorOf(oldest))).text, '4');
      });

      it('messageTimeout with no minimum: the message expires and the unused channel goes', async () => {
        const f = await fixture({ publisher: { minMessageBufferLength: 0, messageTimeout: '1s' } });
        const id = f.id();
        await f.post(id, 'short-lived');
        assert.equal((await f.sub(id)).text, 'short-lived');
        await waitFor('the channel to go', async () => (await f.pub('GET', id)).status === 404, 5000);
      });

      it('messageTimeout 0 keeps messages (no expiry)', async () => {
        const f = await fixture({ publisher: { minMessageBufferLength: 0, messageTimeout: 0 } });
        const control = await fixture({ publisher: { minMessageBufferLength: 0, messageTimeout: '1s' } });
        const id = f.id();
        const cid = control.id();
        await f.post(id, 'kept');
        await control.post(cid, 'gone');
        await waitFor('the control message to expire', async () => ((await control.relay.channelInfo(cid))?.messages ?? 0) === 0);
        assert.equal((await f.sub(id)).text, 'kept');
      });

      it('channelTimeout 0: PUT keeps an empty channel; a channel emptied by its last subscriber goes at once', async () => {
        const f = await fixture({ subscriber: { subscriberTimeout: 300 } });
        const id = f.id();
        await f.pub('PUT', id);
        const kept = await f.pub('GET', id);
        assert.equal(kept.status, 200);
        // A subscriber-created channel, left by its only subscriber (timed out): removed at once.
        const other = f.id();
        assert.equal((await within(f.sub(other), 5000, 'timed-out subscriber')).status, 304);
        await waitFor('the unused channel to go', async () => (await f.pub('GET', other)).status === 404, 2000);
      });

      it('channelTimeout: an unused channel lives that long, then goes', async () => {
        const f = await fixture({ relay: { channelTimeout: '1s' } });
        const id = f.id();
        const started = Date.now();
        await f.pub('PUT', id);
        assert.equal((await f.pub('GET', id)).status, 200);
        await waitFor('the idle channel to go', async () => (await f.pub('GET', id)).status === 404, 5000);
        assert.ok(Date.now() - started >= 900, `removed after ${Date.now() - started} ms`);
      });

      it('channelTimeout on the subscriber: a channel its subscribers left lives that long', async () => {
        const f = await fixture({ subscriber: { channelTimeout: '1s', subscriberTimeout: 200 } });
        const id = f.id();
        assert.equal((await within(f.sub(id), 5000, 'timed-out subscriber')).status, 304);
        const left = Date.now();
        assert.equal((await f.pub('GET', id)).status, 200, 'still there right after its subscriber left');
        await waitFor('the idle channel to go', async () => (await f.pub('GET', id)).status === 404, 5000);
        assert.ok(Date.now() - left >= 800, `removed after ${Date.now() - left} ms`);
      });

      it('channelGroup isolates the same id', async () => {
        const a = await fixture({ relay: { channelGroup: 'alpha' }, subscriber: { mode: 'interval-poll' } });
        const b = await fixture({ relay: { channelGroup: 'beta' }, subscriber: { mode: 'interval-poll' } });
        const plain = await fixture({ subscriber: { mode: 'interval-poll' } });
        const id = a.id();
        await a.post(id, 'for alpha');
        assert.equal((await a.sub(id)).text, 'for alpha');
        assert.equal((await b.sub(id)).status, 304);
        assert.equal((await plain.sub(id)).status, 304);
        assert.equal((await b.pub('GET', id)).status, 404);
        assert.equal(await plain.relay.channelInfo(id), undefined);
        assert.equal((await plain.relay.channelInfo(id, { channelGroup: 'alpha' }))!.messages, 1);
        await plain.relay.publish(id, 'via publish()', { channelGroup: 'beta' });
        assert.equal((await b.sub(id)).text, 'via publish()');
      });

      it('channelGroup given per endpoint', async () => {
        const f = await fixture({ publisher: { channelGroup: 'g1' }, subscriber: { channelGroup: 'g1', mode: 'interval-poll' } });
        const other = await fixture({ subscriber: { channelGroup: 'g2', mode: 'interval-poll' } });
        const id = f.id();
        await f.post(id, 'in g1');
        assert.equal((await f.sub(id)).text, 'in g1');
        assert.equal((await other.sub(id)).status, 304);
      });

      it('the default resolver reads the id query argument', async () => {
        const f = await fixture({ subscriber: { mode: 'interval-poll' } });
        const id = `${f.id()} with spaces/and?marks`;
        const res = await request(f.server.url(`/pub?x=1&id=${encodeURIComponent(id)}&y=2`), { method: 'POST', body: 'q' });
        assert.equal(res.status, 202);
        assert.equal((await f.relay.channelInfo(id))!.messages, 1);
        assert.equal((await request(f.server.url(`/sub?ids=${encodeURIComponent(id)}`))).status, 400);
        assert.equal((await request(f.server.url(`/sub?id=`))).status, 400);
      });

      it('a custom resolver, also returning a promise', async () => {
        const f = await fixture({
          relay: { channelId: async (req) => new URL(req.url ?? '', 'http://x').searchParams.get('channel') ?? undefined },
          subscriber: { mode: 'interval-poll' },
        });
        const id = f.id();
        assert.equal((await request(f.server.url(`/pub?channel=${id}`), { method: 'POST', body: 'r' })).status, 202);
        assert.equal((await request(f.server.url(`/sub?channel=${id}`))).text, 'r');
        assert.equal((await request(f.server.url(`/sub?id=${id}`))).status, 400);
      });
    });

    describe('ordering', () => {
      it('many messages in one second are traversed with no skip, repeat or reorder', async () => {
        // relay.publish() uses the relay's publisher options.
        const f = await fixture({ relay: { maxMessageBufferLength: 200 }, subscriber: { mode: 'interval-poll' } });
        const id = f.id();
        const n = 150;
        for (let i = 0; i < n; i++) await f.relay.publish(id, `m${i}`);
        const got: string[] = [];
        const tags = new Map<string, number>();
        let cursor: Record<string, string> = {};
        for (;;) {
          const res = await rawGet(f.server.port, `/sub?id=${encodeURIComponent(id)}`, cursor);
          if (res.status === 304) break;
          assert.equal(res.status, 200);
          got.push(res.body.toString());
          const second = res.headers['last-modified']!;
          tags.set(second, (tags.get(second) ?? 0) + 1);
          cursor = { 'If-Modified-Since': second, 'If-None-Match': res.headers.etag! };
          assert.ok(got.length <= n, 'no repeats');
        }
        assert.deepEqual(got, Array.from({ length: n }, (_, i) => `m${i}`));
        assert.ok(Math.max(...tags.values()) > 1, 'several messages shared a second');
      });

      it('a held subscriber with an older cursor catches up in order', async () => {
        const f = await fixture();
        const id = f.id();
        await f.post(id, '1');
        const one = await f.sub(id);
        await f.post(id, '2');
        await f.post(id, '3');
        const two = await f.sub(id, cursorOf(one));
        assert.equal(two.text, '2');
        const three = await f.sub(id, cursorOf(two));
        assert.equal(three.text, '3');
        const held = f.sub(id, cursorOf(three));
        await f.waiting(id, 1);
        await f.post(id, '4');
        assert.equal((await within(held, 5000, 'held subscriber')).text, '4');
      });
    });

    describe('in-process API', () => {
      it('publish() stores and delivers, and resolves to channel info', async () => {
        const f = await fixture();
        const id = f.id();
        await f.pub('PUT', id);
        const held = f.sub(id);
        await f.waiting(id, 1);
        const info = await f.relay.publish(id, Buffer.from([0, 1, 2]), { contentType: 'application/x-bin' });
        assert.equal(info.messages, 1);
        assert.equal(info.subscribers, 1);
        const res = await within(held, 5000, 'held subscriber');
        assert.deepEqual([...res.body], [0, 1, 2]);
        assert.equal(res.headers['content-type'], 'application/x-bin');
        assert.equal((await f.relay.publish(id, 'text')).messages, 2);
        await assert.rejects(f.relay.publish(id, 42 as never), TypeError);
        await assert.rejects(f.relay.publish('', 'x'), /channel id/);
      });

      it('channelInfo() and deleteChannel(): undefined for a missing channel; deleting answers held subscribers 410', async () => {
        const f = await fixture();
        const id = f.id();
        assert.equal(await f.relay.channelInfo(id), undefined);
        assert.equal(await f.relay.deleteChannel(id), undefined);
        await f.relay.publish(id, 'x');
        const info = await f.relay.channelInfo(id);
        assert.equal(info!.messages, 1);
        assert.equal(info!.requested, -1);
        const x = await f.sub(id);
        const held = f.sub(id, cursorOf(x));
        await f.waiting(id, 1);
        const deleted = await f.relay.deleteChannel(id);
        assert.equal(deleted!.messages, 1);
        assert.equal((await within(held, 5000, 'held subscriber')).status, 410);
        assert.equal(await f.relay.channelInfo(id), undefined);
      });

      it('close() answers parked subscribers at once, cancels their time-outs and refuses new requests', async () => {
        const f = await fixture({ subscriber: { subscriberTimeout: '60s' } });
        const id = f.id();
        await f.pub('PUT', id);
        const held = [f.sub(id), f.sub(id)];
        await f.waiting(id, 2);
        await f.relay.close();
        for (const res of await within(Promise.all(held), 5000, 'parked subscribers on close')) {
          assert.equal(res.status, 503);
          assert.equal(res.headers['retry-after'], '1');
        }
        await waitFor('the subscribers to be counted out', async () => (await store.info(`/${id}`))?.subscribers !== 2);
        const later = await f.sub(id);
        assert.equal(later.status, 503);
        assert.equal((await f.post(id, 'x')).status, 503);
        await assert.rejects(f.relay.publish(id, 'x'), /shutting down/);
        await f.relay.close(); // twice is fine
      });
    });
  });
}
