/**
 * Streaming subscribers (EventSource, chunked, multipart/mixed, raw stream), the first-message policy
 * and the loss signal, over real sockets, against any ChannelStore: `streaming.memory.test.ts` runs it
 * on a MemoryStore, the Redis test on a RedisStore. Every test uses its own channel ids.
 */
import assert from 'node:assert/strict';
import compression from 'compression';
import { EventSource } from 'eventsource';
import { randomBytes } from 'node:crypto';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { after, afterEach, before, describe, it } from 'node:test';
import {
  createPushRelay,
  formatId,
  type ChannelStore,
  type Middleware,
  type PublisherOptions,
  type PushRelay,
  type PushRelayOptions,
  type SubscriberOptions,
} from '../../src/index.js';
import { cursorOf, request, type HttpResponse } from '../helpers/http-client.js';
import { serveExpress5, serveNodeHttp, type TestServer } from '../helpers/servers.js';
import { waitFor, within } from '../helpers/wait.js';
import { parseMultipart, parseSse, RawStream, type RawStreamOptions, type SseEvent } from './stream-client.js';

export type StoreFactory = () => Promise<{ store: ChannelStore; close(): Promise<void> }>;

interface FixtureOptions {
  relay?: Omit<PushRelayOptions, 'store'>;
  publisher?: PublisherOptions;
  subscriber?: SubscriberOptions;
  /** Middlewares in front of both endpoints (Express 5 instead of node:http). */
  before?: Middleware[];
  /** Reads (`next`) answer a few ms late, as over a network: widens every read/wake-up race. */
  slowReads?: boolean;
}

/** `store` with `next()` delayed by 0-4 ms at random; everything else as is. */
function withSlowReads(store: ChannelStore): ChannelStore {
  return new Proxy(store, {
    get(target, key) {
      const value = Reflect.get(target, key, target) as unknown;
      if (typeof value !== 'function') return value;
      if (key !== 'next') return (value as (...args: unknown[]) => unknown).bind(target);
      return async (...args: unknown[]) => {
        const result = await (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
        await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 5)));
        return result;
      };
    },
  });
}

interface Fixture {
  relay: PushRelay;
  server: TestServer;
  id(): string;
  /** Publishes through the publisher endpoint; resolves to the new message's id (`time:tag`). */
  post(id: string, body: string | Buffer, headers?: Record<string, string>): Promise<string>;
  /** A streaming request to the subscriber endpoint, `query` appended to `?id=`. */
  open(id: string, headers?: Record<string, string>, query?: string, options?: RawStreamOptions): RawStream;
  sse(id: string, headers?: Record<string, string>, query?: string): RawStream;
  get(id: string, headers?: Record<string, string>): Promise<HttpResponse>;
  waiting(id: string, n: number): Promise<void>;
}

const SSE = { Accept: 'text/event-stream' };
const WAIT = 5000;

/** The complete events of an EventSource stream so far. */
const events = (s: RawStream, comments?: string[]): SseEvent[] => parseSse(s.text, comments);
const messageEvents = (s: RawStream) => events(s).filter((e) => !e.event.startsWith('push-relay-'));
const untilEvents = (s: RawStream, n: number, what = `${n} events`) => s.until(what, () => (messageEvents(s).length >= n ? messageEvents(s) : undefined), WAIT);
/** The id an EventSource stream gives the message a long-poll answer carried. */
const idOf = (res: HttpResponse) => `${Math.floor(Date.parse(res.headers['last-modified']!) / 1000)}:${res.headers.etag}`;

export function streamingSuite(label: string, makeStore: StoreFactory): void {
  describe(`streaming subscribers (${label})`, () => {
    let store: ChannelStore;
    let closeStore: () => Promise<void>;
    const open: Array<{ relay: PushRelay; server: TestServer }> = [];
    const streams: RawStream[] = [];
    let counter = 0;
    const prefix = randomBytes(4).toString('hex');

    before(async () => {
      ({ store, close: closeStore } = await makeStore());
    });
    afterEach(async () => {
      for (const s of streams.splice(0)) s.close();
      for (const f of open.splice(0)) {
        await f.relay.close();
        await f.server.close();
      }
    });
    after(async () => {
      await closeStore();
    });

    async function fixture(options: FixtureOptions = {}): Promise<Fixture> {
      const relay = createPushRelay({ ...options.relay, store: options.slowReads ? withSlowReads(store) : store });
      const routes = { '/pub': relay.publisher(options.publisher), '/sub': relay.subscriber(options.subscriber) };
      const server = options.before ? await serveExpress5(routes, options.before) : await serveNodeHttp(routes);
      open.push({ relay, server });
      const q = (id: string) => `?id=${encodeURIComponent(id)}`;
      const f: Fixture = {
        relay,
        server,
        id: () => `${label}-${prefix}-${++counter}`,
        post: async (id, body, headers = {}) => {
          const res = await request(server.url(`/pub${q(id)}`), { method: 'POST', body, headers: { Accept: 'application/json', ...headers } });
          assert.ok(res.status === 201 || res.status === 202, `publish answered ${res.status}: ${res.text}`);
          return (JSON.parse(res.text) as { last_message_id: string }).last_message_id;
        },
        open: (id, headers = {}, query = '', options = {}) => {
          const s = new RawStream(server.port, `/sub${q(id)}${query}`, headers, options);
          streams.push(s);
          return s;
        },
        sse: (id, headers = {}, query = '') => f.open(id, { ...SSE, ...headers }, query),
        get: (id, headers = {}) => request(server.url(`/sub${q(id)}`), { headers }),
        waiting: async (id, n) => {
          await waitFor(`${n} waiting subscribers on ${id}`, async () => (await relay.channelInfo(id))?.subscribers === n);
        },
      };
      return f;
    }

    describe('EventSource', () => {
      it('sends every stored message, then each new one: id (the Last-Modified/Etag id), event, data lines', async () => {
        const f = await fixture();
        const id = f.id();
        const first = await f.post(id, 'one', { 'X-EventSource-Event': 'greeting' });
        await f.relay.publish(id, 'two\nlines\r\nand\rmore');
        const s = f.sse(id);
        await s.head();
        assert.equal(s.status, 200);
        assert.equal(s.headers['content-type'], 'text/event-stream; charset=utf-8');
        assert.equal(s.headers['cache-control'], 'no-cache, no-transform');
        assert.equal(s.headers['x-accel-buffering'], 'no');
        assert.ok(s.text.startsWith(': push-relay\nretry: 3000\n\n') || (await s.until('the preamble', () => s.text.startsWith(': push-relay\nretry: 3000\n\n'))));
        const got = await untilEvents(s, 2);
        assert.deepEqual(got[0], { id: first, event: 'greeting', data: 'one' });
        assert.deepEqual(got[1]!.data, 'two\nlines\nand\nmore');
        assert.equal(got[1]!.event, 'message');
        // The same id a long-poll client gets for the first message.
        assert.equal(idOf(await f.get(id)), first);
        const third = await f.post(id, 'three');
        const all = await untilEvents(s, 3);
        assert.deepEqual(all[2], { id: third, event: 'message', data: 'three' });
        await f.relay.publish(id, 'four', { eventType: 'custom' });
        assert.equal((await untilEvents(s, 4))[3]!.event, 'custom');
      });

      it('sends a body that is not UTF-8 base64-encoded, as event "binary"', async () => {
        const f = await fixture();
        const id = f.id();
        const bytes = Buffer.from([0xff, 0x00, 0x0a, 0x0d, 0x80, 0x41]);
        await f.relay.publish(id, bytes);
        await f.relay.publish(id, Buffer.from('tab\there, nul\u0000 and é'));
        const got = await untilEvents(f.sse(id), 2);
        assert.equal(got[0]!.event, 'binary');
        assert.deepEqual(Buffer.from(got[0]!.data, 'base64'), bytes);
        assert.equal(got[1]!.event, 'message');
        assert.equal(got[1]!.data, 'tab\there, nul\u0000 and é');
      });

      it('with the eventsource client: resumes with Last-Event-ID after the relay ends the stream, no loss, no duplicate', async () => {
        const f = await fixture({ subscriber: { subscriberTimeout: 400 } });
        const id = f.id();
        const got: string[] = [];
        const ends: string[] = [];
        const es = new EventSource(f.server.url(`/sub?id=${id}`));
        es.onmessage = (e) => got.push(String(e.data));
        es.addEventListener('push-relay-end', (e) => ends.push(String(e.data)));
        try {
          await f.waiting(id, 1);
          for (let i = 1; i <= 5; i++) await f.post(id, `m${i}`);
          await waitFor('5 messages', () => got.length >= 5, WAIT);
          // The relay ends the stream (subscriberTimeout); published meanwhile, then after the client is back.
          await waitFor('the end event', () => ends.length > 0, WAIT);
          for (let i = 6; i <= 8; i++) await f.post(id, `m${i}`);
          await waitFor('8 messages after the reconnect', () => got.length >= 8, 10_000);
          for (let i = 9; i <= 10; i++) await f.post(id, `m${i}`);
          await waitFor('10 messages', () => got.length >= 10, WAIT);
          assert.deepEqual(got, ['m1', 'm2', 'm3', 'm4', 'm5', 'm6', 'm7', 'm8', 'm9', 'm10']);
          assert.equal(ends[0], 'timeout');
        } finally {
          es.close();
        }
      });

      it('a stream that reaches subscriberTimeout tells the browser to come back at once (retry under 250 ms), then ends', async () => {
        const f = await fixture({ subscriber: { subscriberTimeout: 300 } });
        const s = f.sse(f.id());
        const end = await s.until('the end event', () => /retry: (\d+)\nevent: push-relay-end\ndata: timeout\n/.exec(s.text) ?? undefined, WAIT);
        assert.ok(Number(end[1]) < 250, `retry: ${end[1]}`);
      });

      it('resumes from a last_event_id query argument or a Last-Event-ID header', async () => {
        const f = await fixture();
        const id = f.id();
        const ids: string[] = [];
        for (let i = 1; i <= 4; i++) ids.push(await f.post(id, `m${i}`));
        const a = f.sse(id, {}, `&last_event_id=${ids[1]}`);
        assert.deepEqual((await untilEvents(a, 2)).map((e) => e.data), ['m3', 'm4']);
        const b = f.sse(id, { 'Last-Event-ID': ids[2]! });
        assert.deepEqual((await untilEvents(b, 1)).map((e) => e.data), ['m4']);
        await f.post(id, 'm5');
        assert.deepEqual((await untilEvents(a, 3)).map((e) => e.data), ['m3', 'm4', 'm5']);
        assert.deepEqual((await untilEvents(b, 2)).map((e) => e.data), ['m4', 'm5']);
      });

      it('sends ping comments every pingInterval, from one timer for every stream', async () => {
        const f = await fixture({ subscriber: { pingInterval: 100 } });
        const id = f.id();
        const s = f.sse(id);
        await s.head();
        const times: number[] = [];
        let seen = 0;
        await s.until('3 pings', () => {
          const comments: string[] = [];
          events(s, comments);
          const pings = comments.filter((c) => c === ': ping').length;
          for (; seen < pings; seen++) times.push(Date.now());
          return pings >= 3;
        });
        // Pings are spaced by the interval, not sent in a burst (lower bound only: timers may run late).
        for (let i = 1; i < times.length; i++) assert.ok(times[i]! - times[i - 1]! >= 50, `pings ${times.join(', ')}`);
        const timeouts = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
        const before = timeouts();
        const more = Array.from({ length: 20 }, () => f.sse(id));
        await Promise.all(more.map((m) => m.head()));
        await f.waiting(id, 21);
        assert.equal(timeouts(), before, 'twenty more streams, no more timers');
        await Promise.all(more.map((m) => m.until('a ping', () => m.text.includes(': ping\n\n'))));
      });

      it('sends no ping with pingInterval 0', async () => {
        const f = await fixture({ subscriber: { pingInterval: 0 } });
        const id = f.id();
        const s = f.sse(id);
        await s.head();
        await f.waiting(id, 1);
        await new Promise((r) => setTimeout(r, 300));
        await f.post(id, 'after a while');
        await untilEvents(s, 1);
        const comments: string[] = [];
        events(s, comments);
        assert.deepEqual(comments, [': push-relay']);
      });

      it('streams through the compression middleware (no-transform, flushed per message)', async () => {
        const f = await fixture({ before: [compression({ threshold: 0 }) as unknown as Middleware], subscriber: { pingInterval: 0 } });
        const id = f.id();
        const s = f.sse(id, { 'Accept-Encoding': 'gzip, deflate, br' });
        await s.head();
        assert.equal(s.headers['content-encoding'], undefined);
        await f.waiting(id, 1);
        await f.post(id, 'through compression');
        assert.equal((await untilEvents(s, 1))[0]!.data, 'through compression');
        await f.post(id, 'and again');
        assert.equal((await untilEvents(s, 2))[1]!.data, 'and again');
        assert.equal(s.ended, false);
      });

      it('writes the same events to an HTTP/1.0 client, without chunked coding', async () => {
        const f = await fixture({ subscriber: { pingInterval: 0 } });
        const id = f.id();
        const first = await f.post(id, 'one');
        const s = f.open(id, SSE, '', { httpVersion: '1.0' });
        await s.head();
        assert.equal(s.headers['transfer-encoding'], undefined);
        await untilEvents(s, 1);
        const second = await f.post(id, 'two');
        const got = await untilEvents(s, 2);
        assert.deepEqual(got, [
          { id: first, event: 'message', data: 'one' },
          { id: second, event: 'message', data: 'two' },
        ]);
        // Frames exactly, no chunk-size lines between them.
        assert.equal(s.text, `: push-relay\nretry: 3000\n\nid: ${first}\ndata: one\n\nid: ${second}\ndata: two\n\n`);
      });

      it('a stream pipelined behind a waiting long-poll starts once that one is answered, every frame whole and in order', async () => {
        const f = await fixture({ subscriber: { pingInterval: 0 } });
        const [first, second] = [f.id(), f.id()];
        const ahead = `GET /sub?id=${encodeURIComponent(first)} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`;
        const s = f.open(second, SSE, '', { pipelinedBehind: ahead });
        await f.waiting(first, 1);
        await f.waiting(second, 1);
        // Written while the stream's response still queues behind the long-poll's on the connection.
        const early = await f.post(second, 'queued');
        await f.post(first, 'long-poll answer');
        await s.head();
        assert.equal(s.ahead?.body.toString(), 'long-poll answer');
        await untilEvents(s, 1);
        const late = await f.post(second, 'written directly');
        assert.deepEqual(await untilEvents(s, 2), [
          { id: early, event: 'message', data: 'queued' },
          { id: late, event: 'message', data: 'written directly' },
        ]);
        // One chunk per write: the preamble, then each event whole.
        assert.deepEqual(
          s.chunks.map((c) => c.toString()),
          [': push-relay\nretry: 3000\n\n', `id: ${early}\ndata: queued\n\n`, `id: ${late}\ndata: written directly\n\n`],
        );
      });

      it('sends no Connection header over HTTP/2', async () => {
        const relay = createPushRelay({ store });
        const mw = relay.subscriber({ pingInterval: 0 });
        const server = http2.createServer((req, res) => mw(req as never, res as never));
        await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
        const client = http2.connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
        try {
          const id = `${label}-${prefix}-h2`;
          await relay.publish(id, 'over h2');
          const req = client.request({ ':path': `/sub?id=${id}`, accept: 'text/event-stream' });
          const headers = await within(new Promise<http2.IncomingHttpHeaders>((r) => req.once('response', r)), WAIT, 'HTTP/2 headers');
          assert.equal(headers[':status'], 200);
          assert.equal(headers.connection, undefined);
          assert.equal(headers['content-type'], 'text/event-stream; charset=utf-8');
          let text = '';
          req.setEncoding('utf8');
          await within(
            new Promise<void>((r) =>
              req.on('data', (d: string) => {
                text += d;
                if (text.includes('data: over h2\n\n')) r();
              }),
            ),
            WAIT,
            'the message over HTTP/2',
          );
          req.close();
        } finally {
          client.close();
          await relay.close();
          await new Promise((r) => server.close(r));
        }
      });
    });

    describe('streams are waiting subscribers', () => {
      it('count in channel info, make publishers answer 201, and leave when the client goes', async () => {
        const f = await fixture();
        const id = f.id();
        const a = f.sse(id);
        const b = f.open(id, { TE: 'chunked' });
        await Promise.all([a.head(), b.head()]);
        await f.waiting(id, 2);
        const res = await request(f.server.url(`/pub?id=${id}`), { method: 'POST', body: 'x' });
        assert.equal(res.status, 201);
        a.close();
        b.close();
        await f.waiting(id, 0);
        assert.equal((await request(f.server.url(`/pub?id=${id}`), { method: 'POST', body: 'y' })).status, 202);
      });

      it('maxChannelSubscribers: a stream beyond the limit gets 403 before any header', async () => {
        const f = await fixture({ subscriber: { maxChannelSubscribers: 1 } });
        const id = f.id();
        await f.sse(id).head();
        for (const headers of [SSE, { TE: 'chunked' }, { Accept: 'multipart/mixed' }]) {
          const refused = f.open(id, headers);
          await refused.until('the refusal', () => refused.ended);
          assert.equal(refused.status, 403);
          assert.match(refused.text, /maxChannelSubscribers/);
        }
      });

      it('concurrency "first": a second stream gets 409', async () => {
        const f = await fixture({ subscriber: { concurrency: 'first' } });
        const id = f.id();
        await f.sse(id).head();
        const refused = f.sse(id);
        await refused.until('the refusal', () => refused.ended);
        assert.equal(refused.status, 409);
      });

      it('concurrency "last": the older stream gets its end notice (conflict) and is closed; the newer one streams', async () => {
        const f = await fixture({ subscriber: { concurrency: 'last' } });
        const id = f.id();
        const older = f.sse(id);
        await older.head();
        await f.waiting(id, 1);
        const newer = f.sse(id);
        await newer.head();
        await older.until('the end', () => older.ended);
        assert.deepEqual(events(older).at(-1), { id: undefined, event: 'push-relay-end', data: 'conflict' });
        await f.post(id, 'to the newer');
        assert.equal((await untilEvents(newer, 1))[0]!.data, 'to the newer');
      });

      it('channel DELETE ends every transport with its notice', async () => {
        const f = await fixture();
        const id = f.id();
        const es = f.sse(id);
        const chunked = f.open(id, { TE: 'chunked' });
        const multipart = f.open(id, { Accept: 'multipart/mixed' });
        await Promise.all([es.head(), chunked.head(), multipart.head()]);
        await f.waiting(id, 3);
        assert.equal((await request(f.server.url(`/pub?id=${id}`), { method: 'DELETE' })).status, 200);
        for (const s of [es, chunked, multipart]) await s.until('the end', () => s.ended);
        assert.deepEqual(events(es).at(-1), { id: undefined, event: 'push-relay-end', data: 'deleted' });
        assert.deepEqual(chunked.trailers, { 'x-push-relay-end': 'deleted' });
        const boundary = /boundary=(\w+)/.exec(multipart.headers['content-type']!)![1]!;
        const { parts, closed } = parseMultipart(multipart.body, boundary);
        assert.equal(closed, true);
        assert.equal(parts.at(-1)!.headers['x-push-relay-end'], 'deleted');
        assert.equal(parts.at(-1)!.body.toString(), 'push-relay: channel deleted');
      });

      it('a client that stops reading is cut once maxStreamBacklog waits for it (it resumes from its last id)', async () => {
        const f = await fixture({ subscriber: { pingInterval: 0, maxStreamBacklog: '8mb' } });
        const id = f.id();
        const s = f.open(id, { TE: 'chunked' });
        await s.head();
        await f.waiting(id, 1);
        s.socket.pause();
        const big = Buffer.alloc(1024 * 1024, 0x61);
        let published = 0;
        while ((await f.relay.channelInfo(id))?.subscribers !== 0) {
          assert.ok(published < 80, `still subscribed after ${published} MiB unread`);
          await f.relay.publish(id, big);
          published++;
          // Let the fan-out and the socket run between publishes.
          await new Promise((r) => setTimeout(r, 5));
        }
        // The kernel's socket buffers take a few MiB before anything waits in the process.
        assert.ok(published > 8, `cut after ${published} MiB`);
      });

      it('subscriberTimeout and relay.close() end streams too', async () => {
        const f = await fixture({ subscriber: { subscriberTimeout: 200 } });
        const id = f.id();
        const raw = f.open(id, { TE: 'chunked' });
        await raw.until('the end', () => raw.ended);
        assert.deepEqual(raw.trailers, { 'x-push-relay-end': 'timeout' });
        const g = await fixture();
        const es = g.sse(g.id());
        await es.head();
        await g.relay.close();
        await es.until('the end', () => es.ended);
        assert.equal(events(es).at(-1)!.data, 'closing');
      });
    });

    describe('chunked, multipart/mixed, raw stream', () => {
      it('TE: chunked: each message is one chunk, stored ones first; resume from an id: no loss, no duplicate', async () => {
        const f = await fixture();
        const id = f.id();
        const ids = [await f.post(id, 'a'), await f.post(id, 'bb')];
        const s = f.open(id, { TE: 'chunked' });
        await s.head();
        assert.equal(s.headers['transfer-encoding'], 'chunked');
        assert.equal(s.headers['content-type'], 'application/octet-stream');
        assert.equal(s.headers['cache-control'], 'no-cache, no-transform');
        await f.post(id, ''); // cannot be a chunk: skipped
        ids.push(await f.post(id, 'ccc\nwith a line break'));
        await s.until('3 chunks', () => s.chunks.length >= 3);
        assert.deepEqual(s.chunks.map(String), ['a', 'bb', 'ccc\nwith a line break']);
        s.close();
        await f.waiting(id, 0);
        await f.post(id, 'dddd');
        const again = f.open(id, { TE: 'chunked', 'Last-Event-ID': ids[2]! });
        await again.until('1 chunk', () => again.chunks.length >= 1);
        await f.post(id, 'eeeee');
        await again.until('2 chunks', () => again.chunks.length >= 2);
        assert.deepEqual(again.chunks.map(String), ['dddd', 'eeeee']);
      });

      it('multipart/mixed: a part per message with Last-Modified, Etag, Content-Type; resume from the last part', async () => {
        const f = await fixture({ subscriber: { defaultContentType: 'text/x-default' } });
        const id = f.id();
        await f.post(id, 'first', { 'Content-Type': 'application/json' });
        await f.post(id, Buffer.from([0, 1, 2, 13, 10, 45, 45]));
        const s = f.open(id, { Accept: 'multipart/mixed' });
        await s.head();
        const boundary = /^multipart\/mixed; boundary=(\w+)$/.exec(s.headers['content-type']!)?.[1];
        assert.ok(boundary, s.headers['content-type']);
        const partsOf = (st: RawStream, n: number) => st.until(`${n} parts`, () => {
          const { parts } = parseMultipart(st.body, boundary);
          return parts.length >= n ? parts : undefined;
        });
        let parts = await partsOf(s, 2);
        assert.equal(parts[0]!.headers['content-type'], 'application/json');
        assert.equal(parts[0]!.body.toString(), 'first');
        assert.equal(parts[1]!.headers['content-type'], 'text/x-default');
        assert.deepEqual(parts[1]!.body, Buffer.from([0, 1, 2, 13, 10, 45, 45]));
        const lp = await f.get(id);
        assert.equal(parts[0]!.headers['last-modified'], lp.headers['last-modified']);
        assert.equal(parts[0]!.headers.etag, lp.headers.etag);
        await f.post(id, 'third');
        parts = await partsOf(s, 3);
        s.close();
        await f.waiting(id, 0);
        await f.post(id, 'fourth');
        const last = parts[2]!.headers;
        const again = f.open(id, { Accept: 'multipart/mixed', 'If-Modified-Since': last['last-modified']!, 'If-None-Match': last.etag! });
        await again.head();
        const b2 = /boundary=(\w+)/.exec(again.headers['content-type']!)![1]!;
        assert.notEqual(b2, boundary, 'a boundary per stream');
        const resumed = await again.until('1 part', () => parseMultipart(again.body, b2).parts.length >= 1 && parseMultipart(again.body, b2).parts);
        await f.post(id, 'fifth');
        const more = await again.until('2 parts', () => parseMultipart(again.body, b2).parts.length >= 2 && parseMultipart(again.body, b2).parts);
        assert.deepEqual([resumed[0], ...more.slice(1)].map((p) => p!.body.toString()), ['fourth', 'fifth']);
      });

      it('raw stream, served only when pinned: messages separated by a newline', async () => {
        const f = await fixture({ subscriber: { mode: 'raw-stream' } });
        const id = f.id();
        await f.post(id, 'one');
        const s = f.open(id);
        await s.head();
        assert.equal(s.headers['content-type'], 'text/plain; charset=utf-8');
        await f.post(id, '');
        await f.post(id, 'three');
        await s.until('3 lines', () => s.text === 'one\n\nthree\n');
        const g = await fixture();
        const gid = g.id();
        await g.post(gid, 'long-polled');
        const plain = await g.get(gid);
        assert.equal(plain.text, 'long-polled');
        assert.ok(plain.headers['content-length']);
      });

      it('mode pins the mechanism: long-poll ignores Accept: text/event-stream; eventsource streams a plain GET', async () => {
        const lp = await fixture({ subscriber: { mode: 'long-poll' } });
        const id = lp.id();
        await lp.post(id, 'polled');
        const res = await lp.get(id, SSE);
        assert.equal(res.text, 'polled');
        assert.equal(res.headers['content-type'], undefined);
        const es = await fixture({ subscriber: { mode: 'eventsource' } });
        const id2 = es.id();
        await es.post(id2, 'streamed');
        const s = es.open(id2);
        assert.equal((await untilEvents(s, 1))[0]!.data, 'streamed');
      });
    });

    describe('first-message policy (subscriberFirstMessage)', () => {
      async function publishFour(f: Fixture, id: string): Promise<void> {
        for (const t of ['m1', 'm2', 'm3', 'm4']) await f.post(id, t);
      }

      it("'newest': a poll that times out names the position it started from, so what comes before the next poll is not skipped", async () => {
        const f = await fixture({ subscriber: { subscriberFirstMessage: 'newest', subscriberTimeout: '1s' } });
        for (const stored of [false, true]) {
          const id = f.id();
          if (stored) await f.post(id, 'old');
          const timedOut = await f.get(id);
          assert.equal(timedOut.status, 304);
          assert.ok(timedOut.headers['last-modified'] && timedOut.headers.etag, `a position (${stored ? 'the newest id' : 'no message yet: from the start'})`);
          await f.post(id, 'between polls');
          const next = await f.get(id, cursorOf(timedOut));
          assert.equal(next.text, 'between polls');
          assert.equal(next.headers['x-push-relay-missed'], undefined);
        }
        const g = await fixture({ subscriber: { subscriberFirstMessage: 'newest', mode: 'interval-poll' } });
        const id = g.id();
        const nothing = await g.get(id);
        assert.equal(nothing.status, 304);
        await g.post(id, 'between polls');
        assert.equal((await g.get(id, cursorOf(nothing))).text, 'between polls');
      });

      it("long-poll: 'newest' waits for the next message; -2 starts at the second newest; 2 at the second oldest", async () => {
        const newest = await fixture({ subscriber: { subscriberFirstMessage: 'newest' } });
        const id = newest.id();
        await publishFour(newest, id);
        const waiting = newest.get(id);
        await newest.waiting(id, 1);
        await newest.post(id, 'm5');
        assert.equal((await within(waiting, WAIT, 'the next message')).text, 'm5');
        const lastTwo = await fixture({ subscriber: { subscriberFirstMessage: -2 } });
        const id2 = lastTwo.id();
        await publishFour(lastTwo, id2);
        const a = await lastTwo.get(id2);
        assert.equal(a.text, 'm3');
        assert.equal((await lastTwo.get(id2, cursorOf(a))).text, 'm4');
        const second = await fixture({ subscriber: { subscriberFirstMessage: 2 } });
        const id3 = second.id();
        await publishFour(second, id3);
        assert.equal((await second.get(id3)).text, 'm2');
        // A cursor wins over the policy.
        const oldest = await second.get(id3, { 'If-Modified-Since': new Date(0).toUTCString(), 'If-None-Match': '0' });
        assert.equal(oldest.text, 'm1');
      });

      it("EventSource: 'newest' sends only what comes next; -2 the two newest stored, then live", async () => {
        const newest = await fixture({ subscriber: { subscriberFirstMessage: 'newest' } });
        const id = newest.id();
        await publishFour(newest, id);
        const s = newest.sse(id);
        await s.head();
        await newest.waiting(id, 1);
        await newest.post(id, 'm5');
        assert.deepEqual((await untilEvents(s, 1)).map((e) => e.data), ['m5']);
        const lastTwo = await fixture({ subscriber: { subscriberFirstMessage: -2 } });
        const id2 = lastTwo.id();
        await publishFour(lastTwo, id2);
        const t = lastTwo.sse(id2);
        await untilEvents(t, 2);
        await lastTwo.post(id2, 'm5');
        assert.deepEqual((await untilEvents(t, 3)).map((e) => e.data), ['m3', 'm4', 'm5']);
        assert.equal(events(t).length, 3, 'no loss signal on a first connection');
      });

      it('rejects a bad policy naming the option', () => {
        const relay = createPushRelay({ store });
        assert.throws(() => relay.subscriber({ subscriberFirstMessage: 0 }), /subscriberFirstMessage/);
        assert.throws(() => relay.subscriber({ subscriberFirstMessage: 'latest' as never }), /subscriberFirstMessage/);
        void relay.close();
      });
    });

    describe('loss signal', () => {
      async function gap(f: Fixture, id: string): Promise<string[]> {
        const ids: string[] = [];
        for (let i = 1; i <= 6; i++) ids.push(await f.post(id, `m${i}`));
        return ids;
      }
      const trimmed = { publisher: { messageBufferLength: 3 } };

      it('long-poll: a cursor older than the message before the answer gets X-Push-Relay-Missed; nobody else does', async () => {
        const f = await fixture(trimmed);
        const id = f.id();
        await gap(f, id);
        const first = await f.get(id);
        assert.equal(first.text, 'm4');
        assert.equal(first.headers['x-push-relay-missed'], undefined, 'no signal without a cursor');
        const stale = { 'If-Modified-Since': new Date(0).toUTCString(), 'If-None-Match': '0' };
        const lost = await f.get(id, stale);
        assert.equal(lost.text, 'm4');
        assert.equal(lost.headers['x-push-relay-missed'], '1');
        const next = await f.get(id, cursorOf(lost));
        assert.equal(next.text, 'm5');
        assert.equal(next.headers['x-push-relay-missed'], undefined);
        // The shared header block of m4 was not changed by the answer that carried the signal.
        assert.equal((await f.get(id)).headers['x-push-relay-missed'], undefined);
        // A waiting request whose cursor is older than a message that was never stored (storeMessages off).
        // (channelTimeout keeps the channel, and so its last message id, while nothing is stored.)
        const g = await fixture({ relay: { channelTimeout: 60_000 }, publisher: { storeMessages: false } });
        const gid = g.id();
        const unseen = await g.post(gid, 'never stored');
        const parked = g.get(gid, stale);
        await g.waiting(gid, 1);
        await g.post(gid, 'live');
        const live = await within(parked, WAIT, 'the live message');
        assert.equal(live.text, 'live');
        assert.equal(live.headers['x-push-relay-missed'], '1');
        // From right after the unstored message: nothing missed.
        const [time, tag] = unseen.split(':');
        const upToDate = g.get(gid, { 'If-Modified-Since': new Date(Number(time) * 1000).toUTCString(), 'If-None-Match': tag! });
        await g.waiting(gid, 1);
        await g.post(gid, 'live again');
        // Its cursor is before 'live' (published meanwhile, unstored): that one it missed.
        assert.equal((await within(upToDate, WAIT, 'the next live message')).headers['x-push-relay-missed'], '1');
      });

      it('EventSource: a named event before the first message after the gap; multipart: a part header; chunked: a response header', async () => {
        const f = await fixture(trimmed);
        const id = f.id();
        const ids = await gap(f, id);
        const es = f.sse(id, { 'Last-Event-ID': ids[0]! });
        const got = await es.until('4 events', () => (events(es).length >= 4 ? events(es) : undefined));
        assert.deepEqual(got[0], { id: undefined, event: 'push-relay-missed', data: JSON.stringify({ after: ids[0], next: ids[3] }) });
        assert.deepEqual(got.slice(1).map((e) => e.data), ['m4', 'm5', 'm6']);
        const mp = f.open(id, { Accept: 'multipart/mixed' }, `&last_event_id=${ids[1]}`);
        await mp.head();
        const boundary = /boundary=(\w+)/.exec(mp.headers['content-type']!)![1]!;
        const parts = await mp.until('3 parts', () => parseMultipart(mp.body, boundary).parts.length >= 3 && parseMultipart(mp.body, boundary).parts);
        assert.deepEqual(parts.map((p) => p.headers['x-push-relay-missed']), ['1', undefined, undefined]);
        const ch = f.open(id, { TE: 'chunked', 'Last-Event-ID': ids[1]! });
        await ch.head();
        assert.equal(ch.headers['x-push-relay-missed'], '1');
        // Up to date: no signal anywhere.
        const fine = f.sse(id, { 'Last-Event-ID': ids[3]! });
        await untilEvents(fine, 2);
        assert.equal(events(fine).length, 2);
        const fineChunked = f.open(id, { TE: 'chunked', 'Last-Event-ID': ids[3]! });
        await fineChunked.head();
        assert.equal(fineChunked.headers['x-push-relay-missed'], undefined);
      });

      it('a cursor at the epoch ("from the start") on a channel that lost nothing: no signal; after a trim, the signal', async () => {
        const f = await fixture(trimmed);
        const id = f.id();
        await f.post(id, 'first');
        const epoch = { 'If-Modified-Since': new Date(0).toUTCString(), 'If-None-Match': '0' };
        const poll = await f.get(id, epoch);
        assert.equal(poll.text, 'first');
        assert.equal(poll.headers['x-push-relay-missed'], undefined, 'long-poll: the channel\'s first message, nothing before it');
        assert.equal((await f.get(id, { 'If-Modified-Since': new Date(0).toUTCString() })).headers['x-push-relay-missed'], undefined);
        const es = f.sse(id, { 'Last-Event-ID': '0:0' });
        const got = await es.until('the first event', () => (events(es).length >= 1 ? events(es) : undefined));
        assert.deepEqual(got.map((e) => e.event), ['message'], 'EventSource: no push-relay-missed event');
        es.close();
        // An old cursor that is not the epoch may come from a history the store lost: that one is told.
        const older = await f.get(id, { 'If-Modified-Since': new Date(Date.UTC(2015, 0, 1)).toUTCString(), 'If-None-Match': '0' });
        assert.equal(older.headers['x-push-relay-missed'], '1');
        // Trimmed messages are missed from the start too.
        for (let i = 2; i <= 5; i++) await f.post(id, `m${i}`);
        assert.equal((await f.get(id, epoch)).headers['x-push-relay-missed'], '1');
      });
    });

    describe('a cursor ahead of every id the channel gave (a fabricated one, a clock that ran ahead)', () => {
      const future = { 'If-Modified-Since': 'Fri, 01 Jan 2100 00:00:00 GMT', 'If-None-Match': '0' };

      it('long-poll and EventSource get the next message published, with the loss signal; interval-poll echoes the newest id', async () => {
        const f = await fixture();
        const id = f.id();
        const newest = await f.post(id, 'stored');
        const poll = f.get(id, future);
        const es = f.sse(id, { 'Last-Event-ID': '4102444800:7' });
        await f.waiting(id, 2);
        const next = await f.post(id, 'next');
        const answer = await within(poll, WAIT, 'the long-poll with a future cursor');
        assert.equal(answer.status, 200);
        assert.equal(answer.text, 'next');
        assert.equal(answer.headers['x-push-relay-missed'], '1', 'its position was none of the channel\'s: what it missed, the relay cannot tell');
        const got = await es.until('2 events', () => (events(es).length >= 2 ? events(es) : undefined));
        assert.deepEqual(got.map((e) => e.event), ['push-relay-missed', 'message']);
        assert.deepEqual(got[1], { id: next, event: 'message', data: 'next' });
        const g = await fixture({ subscriber: { mode: 'interval-poll' } });
        const none = await g.get(id, future);
        assert.equal(none.status, 304);
        const [time, tag] = next.split(':');
        assert.deepEqual([none.headers['last-modified'], none.headers.etag], [new Date(Number(time) * 1000).toUTCString(), tag]);
        assert.notEqual(newest, next);
      });

      it('a stream resuming ahead gets a message published between its join and its first read', async () => {
        let release!: () => void;
        const gate = new Promise<void>((resolve) => (release = resolve));
        let holding = false;
        let reading!: () => void;
        const readStarted = new Promise<void>((resolve) => (reading = resolve));
        // Holds the store reads back once `holding`, until release(): the stream is counted in, and has not read yet.
        const gated = new Proxy(store, {
          get(target, key) {
            const value = Reflect.get(target, key, target) as unknown;
            if (typeof value !== 'function') return value;
            if (key !== 'next') return (value as (...args: unknown[]) => unknown).bind(target);
            return async (...args: unknown[]) => {
              if (holding) {
                reading();
                await gate;
              }
              return (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
            };
          },
        });
        const relay = createPushRelay({ store: gated });
        const server = await serveNodeHttp({ '/sub': relay.subscriber() });
        open.push({ relay, server });
        const id = `${label}-${prefix}-${++counter}`;
        await relay.publish(id, 'stored');
        holding = true;
        const es = new RawStream(server.port, `/sub?id=${encodeURIComponent(id)}`, { ...SSE, 'Last-Event-ID': '4102444800:0' });
        streams.push(es);
        await within(readStarted, WAIT, 'the first read after the join');
        assert.equal((await relay.channelInfo(id))?.subscribers, 1);
        await relay.publish(id, 'between');
        release();
        const got = await es.until('the message', () => events(es).find((e) => e.event === 'message'));
        assert.equal(got.data, 'between');
      });

      it('a cursor at the last id of a channel removed while its ids ran ahead of the clock (distinctSeconds) is no cursor from the future', async () => {
        const f = await fixture({ publisher: { distinctSeconds: true } });
        const id = f.id();
        let last = '';
        for (let i = 0; i < 4; i++) last = await f.post(id, `m${i}`);
        assert.ok(Number(last.split(':')[0]) > Date.now() / 1000 + 1, `ids ahead of the clock: ${last}`);
        const [time, tag] = last.split(':');
        const cursor = { 'If-Modified-Since': new Date(Number(time) * 1000).toUTCString(), 'If-None-Match': tag! };
        assert.equal((await request(f.server.url(`/pub?id=${encodeURIComponent(id)}`), { method: 'DELETE' })).status, 200);
        const poll = f.get(id, cursor);
        const es = f.sse(id, { 'Last-Event-ID': last });
        await f.waiting(id, 2);
        await f.post(id, 'after the delete');
        const answer = await within(poll, WAIT, 'the long-poll');
        assert.equal(answer.text, 'after the delete');
        assert.equal(answer.headers['x-push-relay-missed'], undefined, 'it had every message of the removed channel');
        const got = await es.until('an event', () => (events(es).length >= 1 ? events(es) : undefined));
        assert.deepEqual(got.map((e) => e.event), ['message']);
      });

      it('on a channel that has no messages yet: the first one published, with the loss signal (a history the store does not have)', async () => {
        const f = await fixture();
        const id = f.id();
        const poll = f.get(id, future);
        const es = f.sse(id, { 'Last-Event-ID': '4102444800:0' });
        await f.waiting(id, 2);
        const first = await f.post(id, 'first');
        const answer = await within(poll, WAIT, 'the long-poll with a future cursor');
        assert.equal(answer.text, 'first');
        assert.equal(answer.headers['x-push-relay-missed'], '1');
        const got = await es.until('2 events', () => (events(es).length >= 2 ? events(es) : undefined));
        assert.deepEqual(
          got.map((e) => e.event),
          ['push-relay-missed', 'message'],
        );
        const missed = JSON.parse(got[0]!.data) as { after: string; next: string };
        assert.equal(missed.next, first);
        assert.match(missed.after, /^\d+:0$/, 'read as a second before the store\'s clock');
        assert.equal(got[1]!.data, 'first');
      });
    });

    it('switching transport mid-stream: long-poll, then EventSource from the id it had, then multipart: no loss, no duplicate', async () => {
      const f = await fixture();
      const id = f.id();
      for (let i = 1; i <= 3; i++) await f.post(id, `m${i}`);
      const a = await f.get(id);
      const b = await f.get(id, cursorOf(a));
      const received = [a.text, b.text];
      await f.post(id, 'm4');
      const es = f.sse(id, {}, `&last_event_id=${idOf(b)}`);
      await untilEvents(es, 2);
      await f.post(id, 'm5');
      const esEvents = await untilEvents(es, 3);
      received.push(...esEvents.map((e) => e.data));
      es.close();
      await f.waiting(id, 0);
      await f.post(id, 'm6');
      const [time, tag] = esEvents.at(-1)!.id!.split(':');
      const mp = f.open(id, { Accept: 'multipart/mixed', 'If-Modified-Since': new Date(Number(time) * 1000).toUTCString(), 'If-None-Match': tag! });
      await mp.head();
      const boundary = /boundary=(\w+)/.exec(mp.headers['content-type']!)![1]!;
      const parts = await mp.until('1 part', () => parseMultipart(mp.body, boundary).parts.length >= 1 && parseMultipart(mp.body, boundary).parts);
      received.push(...parts.map((p) => p.body.toString()));
      assert.deepEqual(received, ['m1', 'm2', 'm3', 'm4', 'm5', 'm6']);
    });

    it('streams that connect or resume while messages pour in get each one exactly once, in order', async () => {
      // relay.publish() uses the relay's buffer settings: room for every message.
      const f = await fixture({ relay: { maxMessageBufferLength: 1000 }, subscriber: { pingInterval: 0 }, slowReads: true });
      const id = f.id();
      const total = 300;
      const ids: string[] = [];
      const opened: Array<{ s: RawStream; from: number }> = [];
      for (let n = 0; n < total; n++) {
        ids.push(formatId((await f.relay.publish(id, `n${n}`)).lastMessageId));
        // Every 15 messages a stream from the start, and one resuming from the message just published.
        if (n % 15 === 0) {
          opened.push({ s: f.sse(id), from: 0 });
          opened.push({ s: f.sse(id, { 'Last-Event-ID': ids[n]! }), from: n + 1 });
        }
        if (n % 5 === 0) await new Promise((r) => setTimeout(r, 1));
      }
      for (const { s, from } of opened) {
        await s.until(`the last message (from n${from})`, () => s.text.includes(`data: n${total - 1}\n\n`), WAIT);
        const got = messageEvents(s);
        assert.deepEqual(
          got.map((e) => e.data),
          Array.from({ length: total - from }, (_, i) => `n${from + i}`),
        );
        assert.deepEqual(got.map((e) => e.id), ids.slice(from));
      }
    });

    it('1,000 EventSource subscribers each receive 100 messages, in order', async () => {
      const f = await fixture({ subscriber: { pingInterval: 0 } });
      const id = f.id();
      const clients = 1000;
      const messages = 100;
      const counts = new Array<number>(clients).fill(0);
      const errors: string[] = [];
      const sockets = Array.from({ length: clients }, (_, i) => {
        // A lean reader: 1,000 full parsers would measure the test, not the relay.
        const s = f.sse(id);
        let tail = '';
        s.socket.on('data', (d: Buffer) => {
          tail += d.toString('latin1');
          const cut = tail.lastIndexOf('\n\n') + 2;
          if (cut < 2) return;
          for (const m of tail.slice(0, cut).matchAll(/data: n(\d+)\n/g)) {
            const n = Number(m[1]);
            if (n !== counts[i]) errors.push(`client ${i} got n${n} after ${counts[i]} messages`);
            counts[i] = n + 1;
          }
          tail = tail.slice(cut);
        });
        return s;
      });
      await waitFor(`${clients} streams`, async () => (await f.relay.channelInfo(id))?.subscribers === clients, 30_000);
      const started = Date.now();
      for (let n = 0; n < messages; n++) await f.relay.publish(id, `n${n}`);
      await waitFor('every message at every client', () => counts.every((c) => c === messages) || errors.length > 0, 30_000).catch((err: Error) => {
        const histogram = new Map<number, number>();
        for (const c of counts) histogram.set(c, (histogram.get(c) ?? 0) + 1);
        throw new Error(`${err.message}; messages received -> clients: ${JSON.stringify([...histogram])}`);
      });
      const elapsed = Date.now() - started;
      assert.deepEqual(errors, []);
      assert.equal(counts.filter((c) => c === messages).length, clients);
      for (const s of sockets) s.close();
      console.log(`# ${label}: ${clients} EventSource streams x ${messages} messages delivered in ${elapsed} ms`);
    });
  });
}
