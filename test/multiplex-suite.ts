/**
 * Multiplexed subscribers (a resolver returning several channel ids) over every transport, against any
 * ChannelStore: `multiplex.memory.test.ts` runs it on a MemoryStore, `multiplex.redis.test.ts` on a
 * RedisStore. The subscriber endpoint takes its ids from `?ids=a,b,c`; every test uses its own ids.
 */
import assert from 'node:assert/strict';
import { EventSource } from 'eventsource';
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { after, afterEach, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { createPushRelay, type ChannelStore, type PushRelay, type PushRelayOptions, type SubscriberOptions } from '../src/index.js';
import { formatComposite, parseComposite } from '../src/protocol/position.js';
import { WEBSOCKET_META_PROTOCOL } from '../src/http/upgrade.js';
import { request, type HttpResponse } from './helpers/http-client.js';
import { serveNodeHttp, type TestServer } from './helpers/servers.js';
import { nextSecond, waitFor, within } from './helpers/wait.js';
import { parseMultipart, parseSse, RawStream } from './transports/stream-client.js';

export type StoreFactory = () => Promise<{ store: ChannelStore; close(): Promise<void> }>;

const WAIT = 5000;

/** The ids of `?ids=a,b,c` (each decoded); `?ids=` names no channel. */
function idsFromQuery(req: IncomingMessage): string[] | undefined {
  const ids = new URL(req.url ?? '/', 'http://x').searchParams.get('ids');
  return ids === null ? undefined : ids.split(',');
}

interface Fixture {
  relay: PushRelay;
  server: TestServer;
  /** `n` fresh channel ids. */
  ids(n: number): string[];
  /** Publishes; resolves to the message id (`time:tag`). */
  post(id: string, body: string): Promise<string>;
  /** A long-poll request on `ids`. */
  get(ids: string[], headers?: Record<string, string>): Promise<HttpResponse>;
  stream(ids: string[], headers: Record<string, string>, query?: string): RawStream;
  ws(ids: string[], query?: string): WebSocket;
  /** Waits until every channel of `ids` counts `n` waiting subscribers. */
  waiting(ids: string[], n: number): Promise<void>;
}

const path = (ids: string[], query = '') => `/sub?ids=${ids.map(encodeURIComponent).join(',')}${query}`;
const idOf = (text: string) => {
  const [time, tag] = text.split(':').map(Number);
  return { time: time!, tag: tag! };
};
const cmp = (a: string, b: string) => {
  const x = idOf(a);
  const y = idOf(b);
  return x.time - y.time || x.tag - y.tag;
};

export function multiplexSuite(label: string, makeStore: StoreFactory): void {
  describe(`multiplexed subscribers (${label})`, () => {
    let store: ChannelStore;
    let closeStore: () => Promise<void>;
    const open: Array<{ relay: PushRelay; server: TestServer }> = [];
    const closers: Array<() => void> = [];
    let counter = 0;
    const prefix = randomBytes(4).toString('hex');

    before(async () => {
      ({ store, close: closeStore } = await makeStore());
    });
    afterEach(async () => {
      for (const c of closers.splice(0)) c();
      for (const f of open.splice(0)) {
        await f.relay.close();
        await f.server.close();
      }
    });
    after(async () => {
      await closeStore();
    });

    async function fixture(subscriber: SubscriberOptions = {}, relayOptions: Omit<PushRelayOptions, 'store'> = {}): Promise<Fixture> {
      const relay = createPushRelay({ ...relayOptions, store });
      const server = await serveNodeHttp({ '/pub': relay.publisher(), '/sub': relay.subscriber({ channelId: idsFromQuery, ...subscriber }) });
      await relay.handleUpgrade(server.server);
      open.push({ relay, server });
      const f: Fixture = {
        relay,
        server,
        ids: (n) => Array.from({ length: n }, () => `mx-${label}-${prefix}-${++counter}`),
        post: async (id, body) => {
          const res = await request(server.url(`/pub?id=${encodeURIComponent(id)}`), { method: 'POST', body, headers: { Accept: 'application/json' } });
          assert.ok(res.status === 201 || res.status === 202, `publish answered ${res.status}: ${res.text}`);
          return (JSON.parse(res.text) as { last_message_id: string }).last_message_id;
        },
        get: (ids, headers = {}) => request(server.url(path(ids)), { headers }),
        stream: (ids, headers, query) => {
          const s = new RawStream(server.port, path(ids, query), headers);
          closers.push(() => s.close());
          return s;
        },
        ws: (ids, query) => {
          const ws = new WebSocket(`ws://127.0.0.1:${server.port}${path(ids, query)}`, [WEBSOCKET_META_PROTOCOL]);
          ws.on('error', () => {});
          closers.push(() => ws.terminate());
          return ws;
        },
        waiting: async (ids, n) => {
          await waitFor(`${n} waiting subscribers on ${ids.length} channels`, async () => {
            const infos = await Promise.all(ids.map((id) => relay.channelInfo(id)));
            return infos.every((i) => (i?.subscribers ?? 0) === n);
          }, WAIT);
        },
      };
      return f;
    }

    /** Publishes `n` messages round-robin over `ids`; the bodies name the channel. Resolves to them in publish order. */
    async function publishAcross(f: Fixture, ids: string[], n: number, from = 0): Promise<Array<{ channel: number; body: string; id: string }>> {
      const sent: Array<{ channel: number; body: string; id: string }> = [];
      for (let i = from; i < from + n; i++) {
        const channel = (i * 7 + Math.floor(i / 3)) % ids.length;
        const body = `c${channel}-m${i}`;
        sent.push({ channel, body, id: await f.post(ids[channel]!, body) });
      }
      return sent;
    }

    /** The order a multiplexed subscriber gets messages in when catching up: by id, ties in resolver order. */
    const mergeOrder = (sent: Array<{ channel: number; body: string; id: string }>) =>
      [...sent].sort((a, b) => cmp(a.id, b.id) || a.channel - b.channel).map((m) => m.body);

    describe('composite cursor', () => {
      it('round-trips and is never a single-channel tag', () => {
        const cursors = [{ time: 1795340901, tag: 3 }, undefined, { time: 1795340903, tag: 0 }];
        const text = formatComposite(cursors);
        assert.equal(text, 'M1795340901.0:3.-.2:0');
        assert.deepEqual(parseComposite(text), cursors);
        assert.deepEqual(parseComposite(`"${text}"`), cursors);
        assert.equal(parseComposite('3'), undefined);
        assert.equal(parseComposite('1795340901:3'), undefined);
        assert.equal(formatComposite([undefined, undefined]), 'M0.-.-');
      });
    });

    describe('long-poll', () => {
      it('traverses 3 channels with the composite cursor: every message once, in order, many within one second', async () => {
        const f = await fixture({ subscriberTimeout: 300 });
        const ids = f.ids(3);
        const sent = await publishAcross(f, ids, 30);
        const got: string[] = [];
        let headers: Record<string, string> = {};
        for (;;) {
          const res = await f.get(ids, headers);
          if (res.status === 304) {
            assert.equal(res.headers.etag, headers['If-None-Match'], 'a timed-out request echoes the composite cursor');
            break;
          }
          assert.equal(res.status, 200, res.text);
          got.push(res.text);
          const etag = String(res.headers.etag);
          assert.match(etag, /^M\d+(\.(-|\d+:\d+)){3}$/);
          const cursors = parseComposite(etag)!;
          const channel = Number(/^c(\d)/.exec(res.text)![1]);
          const message = sent.find((m) => m.body === res.text)!;
          assert.deepEqual(cursors[channel], idOf(message.id), 'the composite names the message on its channel');
          assert.equal(res.headers['last-modified'], new Date(idOf(message.id).time * 1000).toUTCString());
          headers = { 'If-Modified-Since': String(res.headers['last-modified']), 'If-None-Match': etag };
          assert.ok(got.length <= sent.length, `more answers than messages: ${JSON.stringify(got)}`);
        }
        assert.deepEqual(got, mergeOrder(sent));
        // Then live: a waiting request is answered by the next message, on whichever channel.
        const waiting = f.get(ids, headers);
        await f.waiting(ids, 1);
        const live = await f.post(ids[1]!, 'live');
        const res = await within(waiting, WAIT, 'the live answer');
        assert.equal(res.text, 'live');
        assert.deepEqual(parseComposite(String(res.headers.etag))![1], idOf(live));
        await f.waiting(ids, 0);
      });

      it('counts as a subscriber on every channel while waiting (201), and leaves all of them once answered', async () => {
        const f = await fixture();
        const ids = f.ids(3);
        const waiting = f.get(ids);
        await f.waiting(ids, 1);
        const res = await request(f.server.url(`/pub?id=${ids[2]}`), { method: 'POST', body: 'x', headers: { Accept: 'application/json' } });
        assert.equal(res.status, 201);
        assert.equal((await within(waiting, WAIT, 'the answer')).text, 'x');
        await f.waiting(ids, 0);
        // The others got nothing: a publish there finds no subscriber.
        const other = await request(f.server.url(`/pub?id=${ids[0]}`), { method: 'POST', body: 'y' });
        assert.equal(other.status, 202);
      });

      it('a single-channel cursor applies to every channel; a composite for another number of channels is refused', async () => {
        const f = await fixture();
        const ids = f.ids(2);
        const a = await f.post(ids[0]!, 'a1');
        await f.post(ids[1]!, 'b1');
        const b2 = await f.post(ids[1]!, 'b2');
        const { time, tag } = idOf(a);
        const res = await f.get(ids, { 'If-Modified-Since': new Date(time * 1000).toUTCString(), 'If-None-Match': String(tag) });
        assert.equal(res.status, 200);
        // Everything after (time, tag) on either channel, earliest first.
        assert.ok(res.text === 'b1' || res.text === 'b2');
        assert.ok(cmp(b2, a) > 0);
        const bad = await f.get(ids, { 'If-None-Match': formatComposite([undefined, undefined, undefined]) });
        assert.equal(bad.status, 400);
        assert.match(bad.text, /names 3 channels, this subscription has 2/);
      });

      it('DELETE of one channel answers 410 naming it, and leaves the other channels', async () => {
        const f = await fixture();
        const ids = f.ids(3);
        const waiting = f.get(ids);
        await f.waiting(ids, 1);
        const del = await request(f.server.url(`/pub?id=${ids[1]}`), { method: 'DELETE' });
        assert.equal(del.status, 200);
        const res = await within(waiting, WAIT, 'the 410');
        assert.equal(res.status, 410);
        assert.equal(res.text.trim(), `push-relay: channel ${JSON.stringify(ids[1])} deleted`);
        await f.waiting([ids[0]!, ids[2]!], 0);
      });
    });

    describe('resolver checks', () => {
      it('255 channel ids are served, 256 answer 400; empty, duplicate and non-string ids answer 400', async () => {
        const f = await fixture();
        const ids = f.ids(256);
        const waiting = f.get(ids.slice(0, 255));
        await f.waiting([ids[0]!, ids[254]!], 1);
        await f.post(ids[200]!, 'to #200');
        const res = await within(waiting, WAIT, 'the answer on 255 channels');
        assert.equal(res.text, 'to #200');
        assert.equal(parseComposite(String(res.headers.etag))!.length, 255);
        await f.waiting([ids[0]!, ids[200]!, ids[254]!], 0);

        const tooMany = await f.get(ids);
        assert.equal(tooMany.status, 400);
        assert.match(tooMany.text, /too many channel ids \(256\).*at most 255/);
        const dup = await f.get([ids[0]!, ids[1]!, ids[0]!]);
        assert.equal(dup.status, 400);
        assert.match(dup.text, /repeats an earlier one/);
        const empty = await f.get([ids[0]!, '']);
        assert.equal(empty.status, 400);
        assert.match(empty.text, /#2 of 2 is empty/);
      });

      it('checks every id (length limit), an empty array, a non-string entry; a publisher takes several', async () => {
        const relay = createPushRelay({ store, maxChannelIdLength: 10 });
        const lists: Record<string, unknown> = { long: ['ok', 'x'.repeat(11)], none: [], number: ['ok', 5], one: ['solo'] };
        const server = await serveNodeHttp({
          '/sub': relay.subscriber({ channelId: (req) => lists[idsFromQuery(req)![0]!] as string[] }),
          '/pub': relay.publisher({ channelId: (req) => (idsFromQuery(req)![0] === 'two' ? ['a', 'b'] : ['solo']) }),
        });
        open.push({ relay, server });
        const at = (name: string) => request(server.url(`/sub?ids=${name}`));
        assert.match((await at('long')).text, /longer than maxChannelIdLength/);
        const none = await at('none');
        assert.equal(none.status, 400);
        assert.match(none.text, /no channel id \(an empty array\)/);
        const number = await at('number');
        assert.equal(number.status, 400);
        assert.match(number.text, /#2 of 2 is not a string \(number\)/);
        // A publisher naming several channels publishes to each (see the publish-to-several suite).
        const two = await request(server.url('/pub?ids=two'), { method: 'POST', body: 'x', headers: { accept: 'application/json' } });
        assert.equal(two.status, 202);
        assert.deepEqual(JSON.parse(two.text).channels.map((c: { channel: string }) => c.channel), ['a', 'b']);
        await relay.deleteChannel('a');
        await relay.deleteChannel('b');
        // A one-id array is that id.
        const pub = await request(server.url('/pub?ids=one'), { method: 'POST', body: 'single' });
        assert.equal(pub.status, 202);
        const sub = await at('one');
        assert.equal(sub.status, 200);
        assert.match(String(sub.headers.etag), /^\d+$/, 'a plain tag, not a composite cursor');
        assert.equal(sub.text, 'single');
        await relay.deleteChannel('solo');
      });

      it('runs the authorize hook for every id: one refused id answers 403 and joins nothing', async () => {
        const seen: string[] = [];
        const f = await fixture({
          authorize: (_req, { channelId, role }) => {
            seen.push(`${role}:${channelId}`);
            return !channelId.includes('forbidden');
          },
        });
        const [a, b] = f.ids(2);
        const res = await f.get([a!, `${b}-forbidden`, b!]);
        assert.equal(res.status, 403);
        assert.match(res.text, /not authorized for channel ".*-forbidden"/);
        assert.deepEqual(seen.sort(), [`subscriber:${a}`, `subscriber:${b}`, `subscriber:${b}-forbidden`].sort());
        assert.equal(await f.relay.channelInfo(a!), undefined, 'no channel joined');
      });

      it('rolls the joins back when one channel refuses (maxChannelSubscribers)', async () => {
        const f = await fixture({ maxChannelSubscribers: 1 });
        const ids = f.ids(3);
        // A single-channel subscriber fills channel #2.
        const single = request(f.server.url(`/sub?ids=${ids[1]}`));
        await f.waiting([ids[1]!], 1);
        const res = await f.get(ids);
        assert.equal(res.status, 403);
        assert.match(res.text, /maxChannelSubscribers/);
        await f.waiting([ids[0]!, ids[2]!], 0);
        await f.waiting([ids[1]!], 1);
        // The refused one left nothing behind: the single subscriber still gets its message.
        await f.post(ids[1]!, 'for the single one');
        assert.equal((await within(single, WAIT, 'the single subscriber')).text, 'for the single one');
      });
    });

    describe('streams', () => {
      it('EventSource: stored messages in merge order, then live; resumes every channel from the composite Last-Event-ID', async () => {
        const f = await fixture();
        const ids = f.ids(3);
        const sent = await publishAcross(f, ids, 12);
        const s = f.stream(ids, { Accept: 'text/event-stream' });
        const events = () => parseSse(s.text).filter((e) => !e.event.startsWith('push-relay-'));
        await s.until('12 events', () => events().length >= 12, WAIT);
        assert.deepEqual(events().map((e) => e.data), mergeOrder(sent));
        const live = await publishAcross(f, ids, 3, 12);
        await s.until('15 events', () => events().length >= 15, WAIT);
        assert.deepEqual(events().slice(12).map((e) => e.data), live.map((m) => m.body), 'live: in publish order');
        const last = events()[14]!;
        assert.match(last.id!, /^M\d+(\.\d+:\d+){3}$/);
        s.close();
        await f.waiting(ids, 0);
        // Published while the client is away; it resumes every channel where it was.
        const away = await publishAcross(f, ids, 6, 15);
        const header = f.stream(ids, { Accept: 'text/event-stream', 'Last-Event-ID': last.id! });
        const query = f.stream(ids, { Accept: 'text/event-stream' }, `&last_event_id=${encodeURIComponent(last.id!)}`);
        for (const r of [header, query]) {
          const got = () => parseSse(r.text).filter((e) => !e.event.startsWith('push-relay-'));
          await r.until('6 events', () => got().length >= 6, WAIT);
          assert.deepEqual(got().map((e) => e.data), mergeOrder(away));
          assert.equal(r.headers['x-push-relay-missed'], undefined);
        }
        // A middle id resumes from there too: the composite names each channel's position.
        const middle = events()[5]!;
        const fromMiddle = f.stream(ids, { Accept: 'text/event-stream', 'Last-Event-ID': middle.id! });
        const rest = () => parseSse(fromMiddle.text).filter((e) => !e.event.startsWith('push-relay-'));
        await fromMiddle.until('the rest', () => rest().length >= 15, WAIT);
        const expected = [...events().slice(6).map((e) => e.data), ...mergeOrder(away)];
        assert.deepEqual(new Set(rest().map((e) => e.data)), new Set(expected));
        assert.equal(rest().length, expected.length);
      });

      it('EventSource: catching up across seconds, messages come in id order whatever their channel', async () => {
        const f = await fixture();
        const ids = f.ids(3);
        await nextSecond();
        const sent = [];
        // The last channel's messages are the oldest: a per-channel read would send them late.
        for (const body of ['c2-a', 'c2-b', 'c2-c']) sent.push({ channel: 2, body, id: await f.post(ids[2]!, body) });
        await nextSecond();
        for (const [channel, body] of [[0, 'c0-a'], [1, 'c1-a'], [0, 'c0-b']] as const) sent.push({ channel, body, id: await f.post(ids[channel]!, body) });
        assert.ok(cmp(sent[2]!.id, sent[3]!.id) < 0);
        const s = f.stream(ids, { Accept: 'text/event-stream' });
        await s.until('6 events', () => parseSse(s.text).length >= 6, WAIT);
        const order = parseSse(s.text).map((e) => e.data);
        assert.deepEqual(order, mergeOrder(sent));
        assert.deepEqual(order.slice(0, 3), ['c2-a', 'c2-b', 'c2-c'], 'the oldest second first, whatever its channel');
        assert.ok(order.indexOf('c0-a') < order.indexOf('c0-b'), "a channel's own order");
      });

      it('with the eventsource client: reconnects after subscriberTimeout with the composite Last-Event-ID, no loss, no duplicate', async () => {
        // The end event asks for a quick reconnect: hold the reconnect until the messages sent while away
        // are stored, so it must catch up from its composite Last-Event-ID rather than hear them live.
        let release!: () => void;
        const away = new Promise<void>((resolve) => (release = resolve));
        const reconnects: string[] = [];
        const f = await fixture({
          subscriberTimeout: 400,
          authorize: async (req) => {
            const last = req.headers['last-event-id'];
            if (typeof last === 'string') {
              reconnects.push(last);
              await away;
            }
            return true;
          },
        });
        const ids = f.ids(3);
        const got: string[] = [];
        const ends: string[] = [];
        const es = new EventSource(f.server.url(path(ids)));
        es.onmessage = (e) => got.push(String(e.data));
        es.addEventListener('push-relay-end', (e) => ends.push(String(e.data)));
        closers.push(() => es.close());
        await f.waiting(ids, 1);
        const before = await publishAcross(f, ids, 6);
        await waitFor('6 messages', () => got.length >= 6, WAIT);
        await waitFor('the end event', () => ends.length > 0, WAIT);
        await f.waiting(ids, 0);
        let sentAway: Awaited<ReturnType<typeof publishAcross>>;
        try {
          sentAway = await publishAcross(f, ids, 6, 6);
        } finally {
          release();
        }
        await waitFor('12 messages after the reconnect', () => got.length >= 12, 10_000);
        assert.deepEqual(got.slice(0, 6), before.map((m) => m.body));
        assert.deepEqual(got.slice(6), mergeOrder(sentAway));
        const newest = ids.map((_, channel) => before.filter((m) => m.channel === channel).at(-1)!.id);
        assert.deepEqual(
          parseComposite(reconnects[0]!)?.map((c) => (c ? `${c.time}:${c.tag}` : '-')),
          newest,
          'the reconnect carries the newest id of every channel',
        );
        assert.equal(ends[0], 'timeout');
        es.close();
        await f.waiting(ids, 0);
      });

      it('chunked: one chunk per message of any channel; concurrency "last" ends it naming the channel taken over', async () => {
        const f = await fixture({ concurrency: 'last' });
        const ids = f.ids(2);
        const sent = await publishAcross(f, ids, 4);
        const s = f.stream(ids, { TE: 'chunked' });
        await s.until('4 chunks', () => s.chunks.length >= 4, WAIT);
        assert.deepEqual(s.chunks.map((c) => c.toString()), mergeOrder(sent));
        // A newer multiplexed subscriber takes both channels over: the chunked stream ends (trailer).
        const e = f.stream(ids, { Accept: 'text/event-stream' }, `&last_event_id=M0.-.-`);
        await e.until('4 events', () => parseSse(e.text).length >= 4, WAIT);
        await s.until('the end', () => s.ended, WAIT);
        assert.equal(s.trailers['x-push-relay-end'], 'conflict');
        // A single-channel subscriber on the second channel takes it over: the end names that channel.
        const newest = idOf(sent.filter((m) => m.channel === 1).at(-1)!.id);
        const single = request(f.server.url(`/sub?ids=${ids[1]}`), {
          headers: { 'If-Modified-Since': new Date(newest.time * 1000).toUTCString(), 'If-None-Match': String(newest.tag) },
        });
        await e.until('the end', () => e.ended, WAIT);
        const end = parseSse(e.text).at(-1)!;
        assert.equal(end.event, 'push-relay-end');
        assert.equal(end.data, `conflict\n${ids[1]}`);
        await f.waiting([ids[0]!], 0);
        await f.waiting([ids[1]!], 1);
        await f.post(ids[1]!, 'for the single one');
        assert.equal((await within(single, WAIT, 'the single subscriber')).text, 'for the single one');
      });

      it('EventSource: DELETE of one channel ends the stream with push-relay-end "deleted" and the channel id', async () => {
        const f = await fixture();
        const ids = f.ids(2);
        const s = f.stream(ids, { Accept: 'text/event-stream' });
        await s.head();
        await f.waiting(ids, 1);
        await f.relay.deleteChannel(ids[0]!);
        await s.until('the end', () => s.ended, WAIT);
        const end = parseSse(s.text).find((e) => e.event === 'push-relay-end');
        assert.equal(end?.data, `deleted\n${ids[0]}`);
        await f.waiting([ids[1]!], 0);
      });

      it('multipart/mixed: each part\'s Etag is the composite cursor, and resumes', async () => {
        const f = await fixture();
        const ids = f.ids(2);
        const sent = await publishAcross(f, ids, 4);
        const s = f.stream(ids, { Accept: 'multipart/mixed' });
        await s.head();
        const boundary = /boundary=(\w+)/.exec(s.headers['content-type']!)![1]!;
        const parts = await s.until('4 parts', () => {
          const p = parseMultipart(s.body, boundary).parts;
          return p.length >= 4 && p;
        }, WAIT);
        assert.deepEqual(parts.map((p) => p.body.toString()), mergeOrder(sent));
        for (const p of parts) assert.match(p.headers.etag!, /^M\d+(\.(-|\d+:\d+)){2}$/);
        const resumed = await f.get(ids, { 'If-Modified-Since': parts[1]!.headers['last-modified']!, 'If-None-Match': parts[1]!.headers.etag! });
        assert.equal(resumed.text, mergeOrder(sent)[2]);
      });

      it('WebSocket: frames of every channel, the composite id in the metadata; resumes with last_event_id; 4410 naming a deleted channel', async () => {
        const f = await fixture();
        const ids = f.ids(3);
        const sent = await publishAcross(f, ids, 6);
        const ws = f.ws(ids);
        const frames: string[] = [];
        ws.on('message', (data: Buffer) => frames.push(data.toString('utf8')));
        const closed = new Promise<{ code: number; reason: string }>((r) => ws.once('close', (code, reason) => r({ code, reason: reason.toString() })));
        await within(new Promise((r) => ws.once('open', r)), WAIT, 'the handshake');
        assert.equal(ws.protocol, WEBSOCKET_META_PROTOCOL);
        await waitFor('6 frames', () => frames.length >= 6, WAIT);
        const meta = frames.map((text) => {
          const end = text.indexOf('\n\n');
          return { id: /^id: (.*)$/m.exec(text.slice(0, end))![1]!, body: text.slice(end + 2) };
        });
        assert.deepEqual(meta.map((m) => m.body), mergeOrder(sent));
        const live = await f.post(ids[2]!, 'live');
        await waitFor('7 frames', () => frames.length >= 7, WAIT);
        assert.ok(frames[6]!.endsWith('\n\nlive'));
        assert.deepEqual(parseComposite(/^id: (.*)$/m.exec(frames[6]!)![1]!)![2], idOf(live));
        // Resume from the third frame's id: the rest, no more, no less.
        const again = f.ws(ids, `&last_event_id=${encodeURIComponent(meta[2]!.id)}`);
        const more: string[] = [];
        again.on('message', (data: Buffer) => more.push(data.toString('utf8').split('\n\n')[1]!));
        await waitFor('4 frames on the resumed socket', () => more.length >= 4, WAIT);
        assert.deepEqual(more, [...mergeOrder(sent).slice(3), 'live']);
        await f.waiting(ids, 2);
        await f.relay.deleteChannel(ids[1]!);
        const { code, reason } = await within(closed, WAIT, 'the close');
        assert.equal(code, 4410);
        assert.equal(reason, `push-relay: channel ${JSON.stringify(ids[1])} deleted`);
        await f.waiting([ids[0]!, ids[2]!], 0);
      });
    });

    it('interval-poll answers 304 with the composite cursor; relay.close() answers 503 and leaves every channel', async () => {
      const poll = await fixture({ mode: 'interval-poll' });
      const ids = poll.ids(2);
      const a = await poll.post(ids[0]!, 'a');
      const first = await poll.get(ids);
      assert.equal(first.text, 'a');
      const nothing = await poll.get(ids, { 'If-Modified-Since': String(first.headers['last-modified']), 'If-None-Match': String(first.headers.etag) });
      assert.equal(nothing.status, 304);
      assert.deepEqual(parseComposite(String(nothing.headers.etag)), [idOf(a), undefined]);
      assert.equal(nothing.headers['last-modified'], first.headers['last-modified']);

      const f = await fixture();
      const more = f.ids(3);
      const waiting = f.get(more);
      await f.waiting(more, 1);
      await f.relay.close();
      const res = await within(waiting, WAIT, 'the 503');
      assert.equal(res.status, 503);
      const infos = await Promise.all(more.map((id) => store.info(`/${id}`)));
      assert.deepEqual(infos.map((i) => i?.subscribers ?? 0), [0, 0, 0]);
    });

    it('WebSocket: a refused multiplexed upgrade gets the HTTP refusal (authorize, one id)', async () => {
      const f = await fixture({ authorize: (_req, { channelId }) => !channelId.includes('forbidden') });
      const [a] = f.ids(1);
      const ws = f.ws([a!, `${a}-forbidden`]);
      const status = await within(
        new Promise<number>((resolve) => ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0))),
        WAIT,
        'the refusal',
      );
      assert.equal(status, 403);
    });

    it('leaves no parked subscriber behind when clients leave (long-poll, streams, WebSocket)', async () => {
      const f = await fixture();
      const ids = f.ids(4);
      const controllers = Array.from({ length: 5 }, () => new AbortController());
      const polls = controllers.map((c) => request(f.server.url(path(ids)), { signal: c.signal }).catch(() => undefined));
      const streams = [f.stream(ids, { Accept: 'text/event-stream' }), f.stream(ids, { Accept: 'multipart/mixed' }), f.stream(ids, { 'TE': 'chunked' })];
      const sockets = [f.ws(ids), f.ws(ids.slice(1))];
      await Promise.all(sockets.map((ws) => within(new Promise((r) => ws.once('open', r)), WAIT, 'the handshake')));
      await f.waiting([ids[0]!], 9);
      await f.waiting(ids.slice(1), 10);
      for (const c of controllers) c.abort();
      for (const s of streams) s.close();
      for (const ws of sockets) ws.terminate();
      await Promise.all(polls);
      await f.waiting(ids, 0);
    });
  });
}
