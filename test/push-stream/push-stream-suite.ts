/**
 * The Push Stream Module's features, on each store (push-stream.memory.test.ts, .redis.test.ts):
 * message templates and their placeholders on every transport, the synthetic ping / deleted /
 * time-out messages, padding, JSONP, cursor arguments, backtrack with channelsFromPath(), Event-Id
 * and Event-Type, publishing to several channels, channelInfoOnPublish, the forms of allowOrigin, and
 * WebSocket publishing.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type http from 'node:http';
import { after, afterEach, before, describe, it, mock } from 'node:test';
import WebSocket from 'ws';
import { XMLParser } from 'fast-xml-parser';
import { parse as parseYaml } from 'yaml';
import { channelsFromPath, createPushRelay, type ChannelStore, type PushRelay, type PushRelayOptions } from '../../src/index.js';
import { cursorOf, request } from '../helpers/http-client.js';
import { listen, serveNodeHttp, type Routes, type TestServer } from '../helpers/servers.js';
import { waitFor, within } from '../helpers/wait.js';
import { parseSse, RawStream } from '../transports/stream-client.js';
import type { StoreFactory } from '../redis/redis-env.js';

/** The template pushstream.js parses (its documentation's), with ~size~ and ~event-type~ added. */
const JSON_TEMPLATE = '{"id":~id~,"channel":"~channel~","text":"~text~","tag":"~tag~","time":"~time~","eventid":"~event-id~","type":"~Event-Type~","size":~SIZE~}';

/** A `ws` client that keeps what it receives. */
class WsClient {
  readonly ws: WebSocket;
  readonly texts: string[] = [];
  readonly opened: Promise<void>;
  readonly closed: Promise<{ code: number; reason: string }>;

  constructor(url: string, headers: Record<string, string> = {}) {
    this.ws = new WebSocket(url, { headers });
    this.ws.on('message', (data: Buffer) => this.texts.push(data.toString('utf8')));
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
      this.ws.once('error', reject);
    });
    this.closed = new Promise((resolve) => this.ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    this.ws.on('error', () => {});
  }

  until(what: string, n: number): Promise<string[]> {
    return waitFor(what, () => this.texts.length >= n && this.texts);
  }
}

export function pushStreamSuite(label: string, makeStore: StoreFactory): void {
  describe(`Push Stream Module features (${label})`, () => {
    let store: ChannelStore;
    let closeStore: () => Promise<void>;
    const open: Array<{ relay: PushRelay; server: TestServer }> = [];
    const streams: RawStream[] = [];
    const sockets: WsClient[] = [];
    const prefix = randomBytes(4).toString('hex');
    let counter = 0;
    const id = (name = 'ch') => `${prefix}-${name}-${++counter}`;

    before(async () => {
      ({ store, close: closeStore } = await makeStore());
    });
    afterEach(async () => {
      for (const s of streams.splice(0)) s.close();
      for (const c of sockets.splice(0)) c.ws.terminate();
      for (const f of open.splice(0)) {
        await f.relay.close();
        await f.server.close();
      }
    });
    after(() => closeStore());

    /** A relay with `/pub` and `/sub` (plus `routes`), on node:http, with WebSocket upgrades. */
    async function setup(subscriber: Parameters<PushRelay['subscriber']>[0] = {}, options: PushRelayOptions = {}, routes: (relay: PushRelay) => Routes = () => ({})) {
      const relay = createPushRelay({ store, ...options });
      const server = await serveNodeHttp({ '/pub': relay.publisher(), '/sub': relay.subscriber(subscriber), ...routes(relay) });
      await relay.handleUpgrade(server.server);
      open.push({ relay, server });
      const publish = (channel: string, body: string, headers: Record<string, string> = {}) => request(server.url(`/pub?id=${encodeURIComponent(channel)}`), { method: 'POST', body, headers });
      const stream = (path: string, headers: Record<string, string> = {}) => {
        const s = new RawStream(server.port, path, headers);
        streams.push(s);
        return s;
      };
      const socket = (path: string, headers: Record<string, string> = {}) => {
        const c = new WsClient(`ws://127.0.0.1:${server.port}${path}`, headers);
        sockets.push(c);
        return c;
      };
      return { relay, server, publish, stream, socket };
    }

    describe('templates', () => {
      it('long-poll: header + message + footer, every placeholder, ~id~ counting 1, 2, 3 per channel', async () => {
        const { server, publish } = await setup({ headerTemplate: '<h>', messageTemplate: JSON_TEMPLATE, footerTemplate: '</h>', defaultContentType: 'application/json' });
        const ch = id();
        const other = id();
        await publish(other, 'elsewhere');
        await publish(ch, 'one', { 'Event-Id': 'e1', 'Event-Type': 'greeting' });
        await publish(ch, 'two');
        await publish(ch, 'three ~id~ ~channel~');
        let headers: Record<string, string> = {};
        const seen: Array<Record<string, unknown>> = [];
        for (let i = 0; i < 3; i++) {
          const res = await request(server.url(`/sub?id=${ch}`), { headers });
          assert.equal(res.status, 200);
          assert.equal(res.headers['content-type'], 'application/json');
          assert.ok(res.text.startsWith('<h>') && res.text.endsWith('</h>'), res.text);
          seen.push(JSON.parse(res.text.slice(3, -4)) as Record<string, unknown>);
          assert.equal(Number(res.headers['content-length']), res.body.length);
          headers = { 'If-Modified-Since': String(res.headers['last-modified']), 'If-None-Match': String(res.headers.etag) };
          assert.equal(seen[i]!.tag, String(res.headers.etag));
          assert.equal(seen[i]!.time, res.headers['last-modified']);
        }
        assert.deepEqual(
          seen.map((m) => m.id),
          [1, 2, 3],
        );
        assert.deepEqual(seen[0], { ...seen[0], channel: ch, text: 'one', eventid: 'e1', type: 'greeting', size: 3 });
        assert.equal(seen[1]!.eventid, '');
        // One pass: a placeholder inside the text is not expanded.
        assert.equal(seen[2]!.text, 'three ~id~ ~channel~');
        const first = await request(server.url(`/sub?id=${other}`));
        assert.equal(JSON.parse(first.text.slice(3, -4)).id, 1, 'each channel counts its own');
      });

      it('without templates, answers are the bodies as they are', async () => {
        const { server, publish } = await setup();
        const ch = id();
        await publish(ch, '~id~ raw', { 'Content-Type': 'text/x-raw' });
        const res = await request(server.url(`/sub?id=${ch}`));
        assert.equal(res.text, '~id~ raw');
        assert.equal(res.headers['content-type'], 'text/x-raw');
      });

      it('EventSource: header and footer as comments, the template per data line, the deleted message (-2)', async () => {
        const { publish, stream, server } = await setup({ headerTemplate: 'head 1\nhead 2', messageTemplate: '[~id~:~text~]', footerTemplate: 'bye' });
        const ch = id();
        const es = stream(`/sub?id=${ch}`, { Accept: 'text/event-stream' });
        await es.until('the header comments', () => es.text.includes(': head 2\n'));
        await publish(ch, 'line a\nline b', { 'Event-Type': 'news' });
        await es.until('the message', () => es.text.includes('data: [1:line b]'));
        await request(server.url(`/pub?id=${ch}`), { method: 'DELETE' });
        await es.until('the end', () => es.ended);
        const comments: string[] = [];
        const events = parseSse(es.text, comments);
        const message = events.find((e) => e.event === 'news')!;
        assert.equal(message.data, '[1:line a]\n[1:line b]');
        const deleted = events.find((e) => e.data === '[-2:Channel deleted]');
        assert.ok(deleted, es.text);
        assert.ok(comments.includes(': head 1') && comments.includes(': head 2') && comments.includes(': bye'), JSON.stringify(comments));
        assert.ok(es.text.indexOf(': bye') > es.text.indexOf('[-2:'), 'footer after the deleted message');
      });

      it('chunked and raw streams: header once, each rendering, the templated ping (-1), the footer before the end', async () => {
        const { publish, stream, server } = await setup(
          { headerTemplate: 'H|', messageTemplate: '<~id~ ~channel~ ~text~>', footerTemplate: '|F', pingInterval: 150, pingMessageText: 'keepalive', mode: 'raw-stream' },
          {},
          (relay) => ({ '/chunked': relay.subscriber({ headerTemplate: 'H|', messageTemplate: '<~id~ ~text~>', footerTemplate: '|F', mode: 'chunked', channelDeletedMessageText: 'gone' }) }),
        );
        const ch = id();
        const raw = stream(`/sub?id=${ch}`);
        const chunked = stream(`/chunked?id=${ch}`, { TE: 'chunked' });
        await raw.until('raw header', () => raw.text.startsWith('H|'));
        await chunked.until('chunked header', () => chunked.text.startsWith('H|'));
        await publish(ch, 'hello');
        await raw.until('raw message', () => raw.text.includes(`<1 ${ch} hello>\n`));
        await chunked.until('chunked message', () => chunked.text.includes('<1 hello>'));
        await raw.until('a templated ping', () => raw.text.includes('<-1  keepalive>\n'));
        await request(server.url(`/pub?id=${ch}`), { method: 'DELETE' });
        await chunked.until('chunked end', () => chunked.ended);
        assert.ok(chunked.text.endsWith('<-2 gone>|F'), chunked.text);
        await raw.until('raw end', () => raw.ended);
        assert.ok(raw.text.endsWith(`<-2 ${ch} Channel deleted>\n|F`), raw.text);
        assert.equal(raw.text.split('H|').length, 2, 'the header once');
      });

      it('WebSocket: header, messages and footer as text frames; the deleted message before close 4410', async () => {
        const { publish, socket, server } = await setup({ headerTemplate: 'hello', messageTemplate: JSON_TEMPLATE, footerTemplate: 'bye' });
        const ch = id();
        const ws = socket(`/sub?id=${ch}`);
        await ws.opened;
        await ws.until('the header', 1);
        await publish(ch, 'msg', { 'Event-Id': 'x1' });
        await ws.until('the message', 2);
        await request(server.url(`/pub?id=${ch}`), { method: 'DELETE' });
        const closed = await within(ws.closed, 3000, 'close');
        assert.equal(closed.code, 4410);
        assert.equal(ws.texts[0], 'hello');
        assert.deepEqual(JSON.parse(ws.texts[1]!), { ...JSON.parse(ws.texts[1]!), id: 1, text: 'msg', eventid: 'x1', channel: ch });
        assert.equal(JSON.parse(ws.texts[2]!).id, -2);
        assert.equal(JSON.parse(ws.texts[2]!).text, 'Channel deleted');
        assert.equal(ws.texts[3], 'bye');
      });

      it('long-poll time-out with timeoutWithBody: 200 with "Timed out" (-3); a deleted channel: 200 with -2', async () => {
        const { server } = await setup({ messageTemplate: '~id~|~channel~|~text~', headerTemplate: '[', footerTemplate: ']', timeoutWithBody: true, subscriberTimeout: 200 });
        const ch = id();
        const timedOut = await request(server.url(`/sub?id=${ch}`));
        assert.equal(timedOut.status, 200);
        assert.equal(timedOut.text, '[-3||Timed out]');
        const waiting = request(server.url(`/sub?id=${ch}`));
        await waitFor('the subscriber to wait', async () => (await store.info(`/${ch}`))?.subscribers === 1);
        await request(server.url(`/pub?id=${ch}`), { method: 'DELETE' });
        const deleted = await waiting;
        assert.equal(deleted.status, 200);
        assert.equal(deleted.text, `[-2|${ch}|Channel deleted]`);
        // A DELETE's body replaces the text for that deletion.
        const again = request(server.url(`/sub?id=${ch}`));
        await waitFor('the subscriber to wait again', async () => (await store.info(`/${ch}`))?.subscribers === 1);
        await request(server.url(`/pub?id=${ch}`), { method: 'DELETE', body: 'room closed', headers: { 'Content-Length': '11' } });
        assert.equal((await again).text, `[-2|${ch}|room closed]`);
      });

      it('without timeoutWithBody a time-out is still 304', async () => {
        const { server } = await setup({ messageTemplate: '~text~!', subscriberTimeout: 100 });
        assert.equal((await request(server.url(`/sub?id=${id()}`))).status, 304);
      });

      it('padding by user agent: the header and each message padded in 100-byte steps', async () => {
        const { publish, stream } = await setup({ headerTemplate: 'H', messageTemplate: '~text~', padding: [{ userAgent: /OldBrowser/, header: 250, message: 120 }], mode: 'raw-stream' });
        const ch = id();
        const padded = stream(`/sub?id=${ch}`, { 'User-Agent': 'OldBrowser/1.0' });
        const plain = stream(`/sub?id=${ch}`, { 'User-Agent': 'Modern/2.0' });
        // 'H' is 1 byte: (floor(249 / 100) + 1) * 100 = 300, capped at the largest minimum, 250.
        await padded.until('padded header', () => padded.body.length >= 1 + 250);
        await plain.until('plain header', () => plain.text === 'H');
        await publish(ch, 'm');
        // 'm\n' is 2 bytes: (floor(118 / 100) + 1) * 100 = 200 bytes of padding.
        await padded.until('padded message', () => padded.body.length === 1 + 250 + 2 + 200);
        assert.match(padded.text.slice(251), /^m\n(\r\n)+$/);
        await plain.until('plain message', () => plain.text === 'Hm\n');
      });
    });

    describe('JSONP', () => {
      it('wraps the rendering as callback([...]); with application/javascript; time-outs too', async () => {
        const { server, publish } = await setup({ messageTemplate: '{"id":~id~,"text":"~text~"}', timeoutWithBody: true, subscriberTimeout: 150 });
        const ch = id();
        await publish(ch, 'hi');
        const res = await request(server.url(`/sub?id=${ch}&callback=PushStream.cb_1`));
        assert.equal(res.status, 200);
        assert.match(String(res.headers['content-type']), /^application\/javascript/);
        assert.equal(res.headers['x-content-type-options'], 'nosniff');
        assert.equal(res.text, 'PushStream.cb_1([{"id":1,"text":"hi"}]);');
        const timedOut = await request(server.url(`/sub?id=${ch}&callback=f`), { headers: { 'If-Modified-Since': String(res.headers['last-modified']), 'If-None-Match': String(res.headers.etag) } });
        assert.equal(timedOut.text, 'f([{"id":-3,"text":"Timed out"}]);');
      });

      it('refuses a callback that is not a JavaScript name (400), and is off with jsonpCallback: false', async () => {
        const { server, publish } = await setup({}, {}, (relay) => ({ '/nojsonp': relay.subscriber({ jsonpCallback: false }), '/jp': relay.subscriber({ jsonpCallback: 'cb' }) }));
        const ch = id();
        await publish(ch, 'say "hi"');
        for (const bad of ['alert(1)//', 'a b', '1abc', 'a..b', 'x'.repeat(129), '<script>']) {
          const res = await request(server.url(`/sub?id=${ch}&callback=${encodeURIComponent(bad)}`));
          assert.equal(res.status, 400, bad);
          assert.ok(!res.text.includes('<script>'), 'the name is not reflected as markup');
        }
        // Without a message template each message is a JSON string: always valid JavaScript.
        assert.equal((await request(server.url(`/sub?id=${ch}&callback=$cb`))).text, '$cb(["say \\"hi\\""]);');
        assert.equal((await request(server.url(`/nojsonp?id=${ch}&callback=alert(1)`))).text, 'say "hi"');
        assert.equal((await request(server.url(`/jp?id=${ch}&cb=go`))).text, 'go(["say \\"hi\\""]);');
      });
    });

    describe('cursor in query arguments, backtrack, Event-Id', () => {
      it('cursorArguments: time and tag arguments resume when the headers are absent', async () => {
        const { server, publish } = await setup({ cursorArguments: { time: 'time', tag: 'tag', eventId: 'eventid' } });
        const ch = id();
        await publish(ch, 'a');
        await publish(ch, 'b');
        const first = await request(server.url(`/sub?id=${ch}`));
        assert.equal(first.text, 'a');
        const q = `time=${encodeURIComponent(String(first.headers['last-modified']))}&tag=${first.headers.etag}`;
        assert.equal((await request(server.url(`/sub?id=${ch}&${q}`))).text, 'b');
        // Empty arguments (what pushstream.js sends before it has a cursor) are absent.
        assert.equal((await request(server.url(`/sub?id=${ch}&time=&tag=&eventid=`))).text, 'a');
        // Headers win over arguments.
        assert.equal((await request(server.url(`/sub?id=${ch}&${q}`), { headers: { 'If-Modified-Since': 'Thu, 01 Jan 1970 00:00:00 GMT' } })).text, 'a');
      });

      it('cursorArguments: beside a time, an empty tag is tag 0 (pushstream.js sends tag= for it)', async () => {
        const { server, publish } = await setup({ cursorArguments: { time: 'time', tag: 'tag', eventId: 'eventid' } });
        const ch = id();
        // Three messages in one second, the first of a new second at tag 0: a new second starts at the
        // next one, so wait for it, publish one (tag 0 unless the channel is new) and two more.
        await publish(ch, 'warm');
        await new Promise((r) => setTimeout(r, 1005 - (Date.now() % 1000)));
        await publish(ch, 'zero');
        await publish(ch, 'one');
        await publish(ch, 'two');
        const warm = await request(server.url(`/sub?id=${ch}`));
        const zero = await request(server.url(`/sub?id=${ch}`), { headers: cursorOf(warm) });
        assert.equal(zero.text, 'zero');
        assert.equal(zero.headers.etag, '0', 'the first message of a later second has tag 0');
        const time = encodeURIComponent(String(zero.headers['last-modified']));
        const one = await request(server.url(`/sub?id=${ch}`), { headers: cursorOf(zero) });
        assert.equal(one.headers['last-modified'], zero.headers['last-modified'], 'published 5 ms into a second, within it');
        assert.equal((await request(server.url(`/sub?id=${ch}&time=${time}&tag=`))).text, 'one', 'after (time, 0)');
        assert.equal((await request(server.url(`/sub?id=${ch}&time=${time}&tag=1`))).text, 'two');
      });

      it('backtrack from channelsFromPath(): /ps/ch1.b2/ch2 starts ch1 from its 2 newest; an id with ".b" stays an id', async () => {
        const relay = createPushRelay({ store });
        const pub = relay.publisher();
        const sub = relay.subscriber({ channelId: channelsFromPath({ prefix: '/ps' }), mode: 'eventsource' });
        const server = await listen((req, res) => (req.url!.startsWith('/ps/') ? sub(req, res) : pub(req, res)));
        open.push({ relay, server });
        const a = id('a');
        const b = id('x.bee');
        for (const text of ['1', '2', '3', '4']) await request(server.url(`/pub?id=${a}`), { method: 'POST', body: text });
        await request(server.url(`/pub?id=${encodeURIComponent(b)}`), { method: 'POST', body: 'b1' });
        const s = new RawStream(server.port, `/ps/${a}.b2/${encodeURIComponent(b)}`, { Accept: 'text/event-stream' });
        streams.push(s);
        await s.until('three events', () => parseSse(s.text).length >= 3);
        assert.deepEqual(parseSse(s.text).map((e) => e.data).sort(), ['3', '4', 'b1']);

        const resolve = channelsFromPath({ prefix: '/sub' });
        const req = (url: string) => ({ url }) as http.IncomingMessage;
        assert.deepEqual(resolve(req('/sub/ch1.b5/ch2/ch3.b0?x=1')), [{ id: 'ch1', backtrack: 5 }, 'ch2', { id: 'ch3', backtrack: 0 }]);
        assert.deepEqual(resolve(req('/sub/my.bucket')), 'my.bucket');
        assert.deepEqual(resolve(req('/sub/a%2Fb.b3')), { id: 'a/b', backtrack: 3 });
        assert.equal(resolve(req('/sub/')), undefined);
        assert.deepEqual(resolve(req('/mounted/x')), ['mounted', 'x']);
        assert.throws(() => resolve(req('/sub/%E0%A4%A')), /percent-encoding/);
      });

      it('backtrack on a long-poll: { id, backtrack } starts a subscription; a re-poll with its cursor resumes', async () => {
        const { server, publish } = await setup({}, {}, (relay) => ({
          '/bt': relay.subscriber({ subscriberFirstMessage: 'newest', subscriberTimeout: 150, channelId: (req) => ({ id: new URL(req.url!, 'http://x').searchParams.get('id')!, backtrack: 2 }) }),
        }));
        const ch = id();
        for (const text of ['1', '2', '3']) await publish(ch, text);
        // No cursor (pushstream.js's first poll sends "If-Modified-Since: null"): the 2 newest.
        const first = await request(server.url(`/bt?id=${ch}`), { headers: { 'If-Modified-Since': 'null', 'If-None-Match': '0' } });
        assert.equal(first.text, '2');
        const next = await request(server.url(`/bt?id=${ch}`), { headers: { 'If-Modified-Since': String(first.headers['last-modified']), 'If-None-Match': String(first.headers.etag) } });
        assert.equal(next.text, '3');
        const after = await request(server.url(`/bt?id=${ch}`), { headers: { 'If-Modified-Since': String(next.headers['last-modified']), 'If-None-Match': String(next.headers.etag) } });
        assert.equal(after.status, 304, 'nothing repeated');
      });

      it('Event-Id: ~event-id~, and a Last-Event-ID naming it resumes after that message', async () => {
        const { publish, stream, server } = await setup({ mode: 'eventsource', messageTemplate: '~event-id~=~text~' });
        const ch = id();
        await publish(ch, 'one', { 'Event-Id': 'evt-1' });
        await publish(ch, 'two', { 'Event-Id': 'evt-2' });
        await publish(ch, 'three', { 'Event-Id': 'evt-3' });
        const s = stream(`/sub?id=${ch}`, { 'Last-Event-ID': 'evt-2' });
        await s.until('the message after evt-2', () => parseSse(s.text).length >= 1);
        assert.deepEqual(
          parseSse(s.text).map((e) => e.data),
          ['evt-3=three'],
        );
        // An unknown event id starts as without a cursor (the oldest, here).
        const unknown = stream(`/sub?id=${ch}`, { 'Last-Event-ID': 'nope' });
        await unknown.until('all three', () => parseSse(unknown.text).length >= 3);
        const bad = await request(server.url(`/pub?id=${ch}`), { method: 'POST', body: 'x', headers: { 'Event-Id': 'e'.repeat(256) } });
        assert.equal(bad.status, 400);
      });
    });

    describe('publishers', () => {
      it('publishes to several channels: each gets its own message and ~id~; 201 if any waiting subscriber got it; every format lists each', async () => {
        const relay = createPushRelay({ store });
        const server = await serveNodeHttp({
          '/pub': relay.publisher({ channelId: (req) => new URL(req.url!, 'http://x').searchParams.get('id')!.split('/') }),
          '/sub': relay.subscriber({ messageTemplate: '~id~:~channel~:~text~' }),
        });
        open.push({ relay, server });
        const [a, b] = [id('multi'), id('multi')];
        const before = await request(server.url(`/pub?id=${a}`), { method: 'POST', body: 'only a' });
        assert.equal(before.status, 202);
        const waiting = request(server.url(`/sub?id=${b}`));
        await waitFor('the subscriber to wait', async () => (await store.info(`/${b}`))?.subscribers === 1);
        const both = await request(server.url(`/pub?id=${a}/${b}`), { method: 'POST', body: 'to both', headers: { Accept: 'application/json' } });
        assert.equal(both.status, 201);
        const json = JSON.parse(both.text) as { channels: Array<{ channel: string; messages: number; subscribers: number }> };
        assert.deepEqual(
          json.channels.map((c) => [c.channel, c.messages]),
          [
            [a, 2],
            [b, 1],
          ],
        );
        assert.equal((await waiting).text, `1:${b}:to both`);
        const secondOfA = await request(server.url(`/sub?id=${a}`), { headers: { 'If-Modified-Since': 'Thu, 01 Jan 1970 00:00:00 GMT' } });
        assert.equal(secondOfA.text, `1:${a}:only a`);
        const xml = new XMLParser().parse((await request(server.url(`/pub?id=${a}/${b}`), { headers: { Accept: 'text/xml' } })).text) as { channels: { channel: Array<{ name: string; messages: number }> } };
        assert.deepEqual(
          xml.channels.channel.map((c) => [c.name, c.messages]),
          [
            [a, 2],
            [b, 1],
          ],
        );
        const yaml = parseYaml((await request(server.url(`/pub?id=${a}/${b}`), { headers: { Accept: 'text/yaml' } })).text) as Array<{ channel: string; messages: number }>;
        assert.deepEqual(
          yaml.map((c) => [c.channel, c.messages]),
          [
            [a, 2],
            [b, 1],
          ],
        );
        const text = (await request(server.url(`/pub?id=${a}/${b}`))).text;
        assert.match(text, new RegExp(`channel: "${a}"\\r\\nqueued messages: 2`));
        // DELETE of several: each; GET of several where only some exist lists those; none: 404.
        assert.equal((await request(server.url(`/pub?id=${a}/${b}`), { method: 'DELETE' })).status, 200);
        assert.equal((await request(server.url(`/pub?id=${a}/${b}`))).status, 404);
      });

      it('channelInfoOnPublish: false answers a successful POST with an empty body', async () => {
        const relay = createPushRelay({ store });
        const server = await serveNodeHttp({ '/pub': relay.publisher({ channelInfoOnPublish: false }) });
        open.push({ relay, server });
        const res = await request(server.url(`/pub?id=${id()}`), { method: 'POST', body: 'x' });
        assert.equal(res.status, 202);
        assert.equal(res.text, '');
        assert.equal(res.headers['content-length'], '0');
      });

      it('Event-Type is a synonym of X-EventSource-Event', async () => {
        const { publish, stream } = await setup({ mode: 'eventsource' });
        const ch = id();
        await publish(ch, 'x', { 'Event-Type': 'kind' });
        const s = stream(`/sub?id=${ch}`);
        await s.until('the event', () => parseSse(s.text).length >= 1);
        assert.equal(parseSse(s.text)[0]!.event, 'kind');
      });
    });

    describe('allowOrigin forms', () => {
      it('a list, a RegExp and a function answer the allowed origin with Vary: Origin, nothing to others', async () => {
        const relay = createPushRelay({ store });
        const server = await serveNodeHttp({
          '/list': relay.subscriber({ allowOrigin: ['https://a.example', 'https://b.example'], subscriberTimeout: 50 }),
          '/re': relay.subscriber({ allowOrigin: /^https:\/\/[a-z]+\.example$/, subscriberTimeout: 50 }),
          '/fn': relay.publisher({ allowOrigin: (origin) => origin.endsWith('.trusted') }),
          '/one': relay.subscriber({ allowOrigin: 'https://a.example', subscriberTimeout: 50 }),
        });
        open.push({ relay, server });
        const ch = id();
        const get = (path: string, origin: string, method = 'GET') => request(server.url(`${path}?id=${ch}`), { method, headers: { Origin: origin } });
        let res = await get('/list', 'https://b.example');
        assert.equal(res.headers['access-control-allow-origin'], 'https://b.example');
        assert.equal(res.headers['access-control-allow-credentials'], 'true');
        assert.match(String(res.headers.vary), /Origin/);
        res = await get('/list', 'https://evil.example');
        assert.equal(res.headers['access-control-allow-origin'], undefined);
        assert.match(String(res.headers.vary), /Origin/);
        assert.equal((await get('/re', 'https://zz.example')).headers['access-control-allow-origin'], 'https://zz.example');
        assert.equal((await get('/re', 'https://zz.example.evil')).headers['access-control-allow-origin'], undefined);
        const preflight = await get('/fn', 'https://x.trusted', 'OPTIONS');
        assert.equal(preflight.status, 200);
        assert.equal(preflight.headers['access-control-allow-origin'], 'https://x.trusted');
        assert.equal((await get('/fn', 'https://x.untrusted', 'OPTIONS')).headers['access-control-allow-origin'], undefined);
        // One fixed origin answers the same to everyone: no Vary.
        res = await get('/one', 'https://other.example');
        assert.equal(res.headers['access-control-allow-origin'], 'https://a.example');
        assert.doesNotMatch(String(res.headers.vary ?? ''), /Origin/);
        assert.throws(() => relay.subscriber({ allowOrigin: ['not an origin'] }), /allowOrigin/);
        assert.throws(() => relay.subscriber({ allowOrigin: [] as never }), /allowOrigin/);
      });

      it('a WebSocket upgrade from an origin the list does not allow gets 403', async () => {
        const { socket } = await setup({ allowOrigin: ['https://a.example'] });
        const ok = socket(`/sub?id=${id()}`, { Origin: 'https://a.example' });
        await ok.opened;
        const refused = socket(`/sub?id=${id()}`, { Origin: 'https://b.example' });
        await assert.rejects(refused.opened, /403/);
      });
    });

    describe('the 2009 push module (push_sender / push_listener)', () => {
      /** Seed 001's configuration, as push-relay options (docs/options.md shows the same). */
      async function seed001() {
        const relay = createPushRelay({ store, storeMessages: true, minMessageBufferLength: 0 });
        const byChannel = (req: http.IncomingMessage) => new URL(req.url!, 'http://x').searchParams.get('channel') ?? undefined;
        const server = await serveNodeHttp({
          '/send': relay.publisher({ channelId: byChannel, messageTimeout: '2h' }),
          '/listen': relay.subscriber({ channelId: byChannel, concurrency: 'last', deleteOldestReceivedMessage: true, defaultContentType: 'text/plain' }),
        });
        open.push({ relay, server });
        return server;
      }

      it("walks seed 001's Operation: queued before a listener, taken off the queue by each GET, 201/202, a newer listener bumps the older (409)", async () => {
        const server = await seed001();
        const ch = id('queue');
        const send = (body: string) => request(server.url(`/send?channel=${ch}`), { method: 'POST', body });
        const listen = () => request(server.url(`/listen?channel=${ch}`));
        // Sent before any listener connects: queued, 202 Accepted.
        assert.equal((await send('one')).status, 202);
        assert.equal((await send('two')).status, 202);
        // Each listener GET takes the oldest queued message off the queue.
        const first = await listen();
        assert.equal(first.text, 'one');
        assert.equal(first.headers['content-type'], 'text/plain');
        assert.equal((await listen()).text, 'two');
        await waitFor('the queue to be empty', async () => ((await store.info(`/${ch}`))?.messages ?? 0) === 0);
        // A listener waiting: the message is sent, 201 Created.
        const waiting = listen();
        await waitFor('the listener to wait', async () => (await store.info(`/${ch}`))?.subscribers === 1);
        assert.equal((await send('three')).status, 201);
        assert.equal((await waiting).text, 'three');
        // push_listener_concurrency last: a newer listener makes the older one answer 409.
        const older = listen();
        await waitFor('the older listener to wait', async () => (await store.info(`/${ch}`))?.subscribers === 1);
        const newer = listen();
        assert.equal((await older).status, 409);
        await waitFor('the newer listener to wait', async () => (await store.info(`/${ch}`))?.subscribers === 1);
        assert.equal((await send('four')).status, 201);
        assert.equal((await newer).text, 'four');
      });

      it('minMessageRecipients: the oldest goes on a publish once received that often, never below the minimum', async () => {
        const relay = createPushRelay({ store });
        const server = await serveNodeHttp({
          '/pub': relay.publisher({ minMessageRecipients: 2, minMessageBufferLength: 1, maxMessageBufferLength: 10 }),
          '/sub': relay.subscriber(),
        });
        open.push({ relay, server });
        const ch = id('recipients');
        const publish = (body: string) => request(server.url(`/pub?id=${ch}`), { method: 'POST', body });
        const messages = async () => (await store.info(`/${ch}`))?.messages;
        await publish('m1');
        // Received once, then twice (each answer that carried it counts).
        assert.equal((await request(server.url(`/sub?id=${ch}`))).text, 'm1');
        await publish('m2');
        assert.equal(await messages(), 2, 'm1 received once: kept');
        assert.equal((await request(server.url(`/sub?id=${ch}`))).text, 'm1');
        await publish('m3');
        assert.equal(await messages(), 2, 'm1 received twice: deleted by that publish');
        const m2 = await request(server.url(`/sub?id=${ch}`));
        assert.equal(m2.text, 'm2');
        const m3 = await request(server.url(`/sub?id=${ch}`), { headers: { 'If-Modified-Since': String(m2.headers['last-modified']), 'If-None-Match': String(m2.headers.etag) } });
        assert.equal(m3.text, 'm3');
        // Subscribers waiting when a message is published count as recipients.
        const cursor = { 'If-Modified-Since': String(m3.headers['last-modified']), 'If-None-Match': String(m3.headers.etag) };
        const waiters = [request(server.url(`/sub?id=${ch}`), { headers: cursor }), request(server.url(`/sub?id=${ch}`), { headers: cursor })];
        await waitFor('two waiting', async () => (await store.info(`/${ch}`))?.subscribers === 2);
        await publish('m4');
        await Promise.all(waiters);
        assert.equal(await messages(), 3, 'm2 received once: kept');
        // Never below minMessageBufferLength: a lone message stays however often it is read.
        const lone = id('recipients');
        await request(server.url(`/pub?id=${lone}`), { method: 'POST', body: 'only' });
        for (let i = 0; i < 3; i++) await request(server.url(`/sub?id=${lone}`));
        await request(server.url(`/pub?id=${lone}`), { method: 'POST', body: 'next' });
        assert.equal((await store.info(`/${lone}`))?.messages, 1, 'the read one goes, the new one stays');
        assert.throws(() => relay.publisher({ minMessageRecipients: -1 }), /minMessageRecipients/);
      });
    });

    describe('message/http (messageHttp)', () => {
      const RESPONSE = 'HTTP/1.1 203 Non-Authoritative Information\r\nContent-Type: application/json\r\nX-Custom: yes\r\nConnection: close\r\nKeep-Alive: timeout=1\r\nContent-Length: 11\r\nEtag: "theirs"\r\n\r\n{"ok":true}';

      it('a long-poll subscriber gets exactly the published response; streams get its body', async () => {
        const relay = createPushRelay({ store });
        const server = await serveNodeHttp({ '/pub': relay.publisher({ messageHttp: true }), '/sub': relay.subscriber(), '/raw': relay.subscriber({ mode: 'raw-stream' }) });
        open.push({ relay, server });
        const ch = id('http');
        const raw = new RawStream(server.port, `/raw?id=${ch}`);
        streams.push(raw);
        await raw.head();
        const waiting = request(server.url(`/sub?id=${ch}`), { headers: { 'If-Modified-Since': 'Thu, 01 Jan 1970 00:00:00 GMT', 'If-None-Match': '0' } });
        await waitFor('the long-poll to wait', async () => (await store.info(`/${ch}`))?.subscribers === 2);
        const pub = await request(server.url(`/pub?id=${ch}`), { method: 'POST', body: RESPONSE, headers: { 'Content-Type': 'message/http' } });
        assert.equal(pub.status, 201);
        for (const res of [await waiting, await request(server.url(`/sub?id=${ch}`))]) {
          assert.equal(res.status, 203);
          assert.equal(res.text, '{"ok":true}');
          assert.equal(res.headers['content-type'], 'application/json');
          assert.equal(res.headers['x-custom'], 'yes');
          assert.equal(res.headers['content-length'], '11');
          assert.notEqual(res.headers.etag, '"theirs"', "the relay's cursor, not the publisher's");
          assert.equal(res.headers['keep-alive'] === 'timeout=1', false, 'hop-by-hop headers are not copied');
          assert.ok(res.headers['last-modified']);
        }
        await raw.until('the body on the stream', () => raw.text === '{"ok":true}\n');
      });

      it('a malformed response is 400 and stores nothing; without messageHttp it is an ordinary message', async () => {
        const relay = createPushRelay({ store });
        const server = await serveNodeHttp({ '/pub': relay.publisher({ messageHttp: true }), '/plain': relay.publisher(), '/sub': relay.subscriber() });
        open.push({ relay, server });
        const ch = id('http');
        for (const bad of ['hello', 'HTTP/1.1 500 Oops\r\n\r\n', 'HTTP/1.1 200 OK\r\nBad Header\r\n\r\n', 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nabc', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n', 'HTTP/1.1 200 OK']) {
          const res = await request(server.url(`/pub?id=${ch}`), { method: 'POST', body: bad, headers: { 'Content-Type': 'message/http' } });
          assert.equal(res.status, 400, bad);
          assert.match(res.text, /message\/http/);
        }
        assert.equal(await store.info(`/${ch}`), undefined, 'nothing stored, no channel made');
        await request(server.url(`/plain?id=${ch}`), { method: 'POST', body: RESPONSE, headers: { 'Content-Type': 'message/http' } });
        const res = await request(server.url(`/sub?id=${ch}`));
        assert.equal(res.status, 200);
        assert.equal(res.headers['content-type'], 'message/http');
        assert.equal(res.text, RESPONSE);
      });
    });

    describe('WebSocket publishing', () => {
      it('a text message goes to every channel of the connection, is stored, and comes back to the sender', async () => {
        const { server, socket } = await setup({ websocketPublish: true, messageTemplate: '~channel~:~text~' }, {}, (relay) => ({
          '/multi': relay.subscriber({ websocketPublish: true, channelId: (req) => new URL(req.url!, 'http://x').searchParams.get('id')!.split(',') }),
        }));
        const [a, b] = [id('wsp'), id('wsp')];
        const listener = socket(`/sub?id=${a}`);
        const sender = socket(`/multi?id=${a},${b}`);
        await Promise.all([listener.opened, sender.opened]);
        await waitFor('both subscribed', async () => (await store.info(`/${a}`))?.subscribers === 2);
        sender.ws.send('hello everyone');
        await listener.until('the message', 1);
        assert.deepEqual(listener.texts, [`${a}:hello everyone`]);
        await sender.until('its own message, from both channels', 2);
        assert.deepEqual(sender.texts.sort(), ['hello everyone', 'hello everyone']);
        // Stored as any message: a long-poll finds it.
        assert.equal((await request(server.url(`/sub?id=${b}`))).text, `${b}:hello everyone`);
      });

      it('off by default: messages from subscribers are dropped', async () => {
        const { socket } = await setup();
        const ch = id();
        const ws = socket(`/sub?id=${ch}`);
        await ws.opened;
        ws.ws.send('ignored');
        // A ping round trip after the send: the server has read the message by the time the pong is back.
        await new Promise<void>((resolve) => {
          ws.ws.once('pong', () => resolve());
          ws.ws.ping();
        });
        assert.equal((await store.info(`/${ch}`))?.messages ?? 0, 0);
        assert.equal(ws.texts.length, 0);
      });

      it('websocketPublishRate holds over any second, not per calendar second', async () => {
        const { socket } = await setup({ websocketPublish: true, websocketPublishRate: 3 });
        const ch = id();
        const ws = socket(`/sub?id=${ch}`);
        await ws.opened;
        const published = (n: number) => waitFor(`${n} published`, async () => ((await store.info(`/${ch}`))?.messages ?? 0) === n);
        // The clock the rate is counted on, 100 ms before a second ends.
        mock.timers.enable({ apis: ['Date'], now: 1_800_000_000_900 });
        try {
          for (const text of ['a', 'b', 'c']) ws.ws.send(text);
          await published(3);
          // 200 ms later, in the next calendar second: a fourth within one second of the first three.
          mock.timers.tick(200);
          ws.ws.send('d');
          const closed = await within(ws.closed, 3000, 'close');
          assert.equal(closed.code, 1008);
          assert.equal((await store.info(`/${ch}`))?.messages, 3);

          // One more after `later` ms, on a new socket that sent three at once.
          const oneMoreAfter = async (later: number, texts: string[], total: number) => {
            const next = socket(`/sub?id=${ch}`);
            await next.opened;
            for (const text of texts) next.ws.send(text);
            await published(total);
            mock.timers.tick(later);
            next.ws.send('one more');
            return next;
          };
          const early = await oneMoreAfter(999, ['e', 'f', 'g'], 6);
          assert.equal((await within(early.closed, 3000, 'close')).code, 1008);
          // A second after the first of them, the next one is within the rate again.
          await oneMoreAfter(1000, ['i', 'j', 'k'], 9);
          await published(10);
        } finally {
          mock.timers.reset();
        }
      });

      it('binary frames close 1003, invalid UTF-8 1007, past the rate 1008, a refusing authorize 4403', async () => {
        const { socket } = await setup({ websocketPublish: true, websocketPublishRate: 3 }, {}, (relay) => ({
          '/guarded': relay.subscriber({ websocketPublish: true, authorize: (_req, { role }) => role !== 'publisher' }),
        }));
        const binary = socket(`/sub?id=${id()}`);
        await binary.opened;
        binary.ws.send(Buffer.from([1, 2, 3]), { binary: true });
        assert.equal((await within(binary.closed, 3000, 'close')).code, 1003);

        const invalid = socket(`/sub?id=${id()}`);
        await invalid.opened;
        invalid.ws.send(Buffer.from([0xff, 0xfe]), { binary: false });
        assert.equal((await within(invalid.closed, 3000, 'close')).code, 1007);

        const ch = id();
        const flood = socket(`/sub?id=${ch}`);
        await flood.opened;
        for (let i = 0; i < 10; i++) flood.ws.send(`m${i}`);
        const closed = await within(flood.closed, 3000, 'close');
        assert.equal(closed.code, 1008);
        assert.match(closed.reason, /websocketPublishRate/);
        assert.ok(((await store.info(`/${ch}`))?.messages ?? 0) <= 3, 'no more than the rate was published');

        const guardedCh = id();
        const guarded = socket(`/guarded?id=${guardedCh}`);
        await guarded.opened;
        guarded.ws.send('nope');
        assert.equal((await within(guarded.closed, 3000, 'close')).code, 4403);
        assert.equal((await store.info(`/${guardedCh}`))?.messages ?? 0, 0);
      });
    });
  });
}
