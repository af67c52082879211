/**
 * WebSocket subscribers with `ws` as the client, through relay.handleUpgrade() under Express 5 (route
 * params in the resolver) and plain node:http: frames, the metadata subprotocol and resume, close
 * codes, concurrency, limits, keep-alive pings and refused upgrades. One suite, run on each store
 * (websocket.memory.test.ts, websocket.redis.test.ts); the checks of handleUpgrade itself, which no
 * store affects, run once.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import express from 'express';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import WebSocket from 'ws';
import { createPushRelay, type ChannelStore, type PushRelay, type PushRelayOptions, type SubscriberOptions } from '../../src/index.js';
import { pingTimers } from '../../src/transports/keep-alive.js';
import { WEBSOCKET_META_PROTOCOL } from '../../src/http/upgrade.js';
import { waitFor, within } from '../helpers/wait.js';

const WAIT = 3000;

interface Received {
  data: Buffer;
  binary: boolean;
}

/** A `ws` client that queues what it receives, so a test awaits the next frame or the close. */
class Client {
  readonly ws: WebSocket;
  readonly frames: Received[] = [];
  readonly opened: Promise<void>;
  readonly closed: Promise<{ code: number; reason: string }>;
  /** The HTTP answer when the server refused the upgrade. */
  readonly refused: Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders; socketClosed: Promise<void> }>;
  #waiters: Array<() => void> = [];

  constructor(url: string, protocols: string[] = [], headers: Record<string, string> = {}) {
    this.ws = new WebSocket(url, protocols, { headers });
    this.ws.on('message', (data: Buffer, binary) => {
      this.frames.push({ data, binary });
      for (const w of this.#waiters.splice(0)) w();
    });
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('error', reject);
    });
    this.closed = new Promise((resolve) => this.ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    this.refused = new Promise((resolve) => {
      this.ws.once('unexpected-response', (_req, res) => {
        const socketClosed = new Promise<void>((r) => (res.socket.destroyed ? r() : res.socket.once('close', () => r())));
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers, socketClosed }));
      });
    });
    // The refusal path also emits 'error' on the client; the tests read `refused` instead.
    this.ws.on('error', () => {});
  }

  /** The `n`-th frame (from 0), waiting for it. */
  async frame(n: number): Promise<Received> {
    const deadline = Date.now() + WAIT;
    while (this.frames.length <= n) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no frame #${n} within ${WAIT} ms (got ${this.frames.length})`);
      await within(new Promise<void>((r) => this.#waiters.push(r)), left, `frame #${n}`).catch(() => {});
    }
    return this.frames[n]!;
  }

  texts(): string[] {
    return this.frames.map((f) => f.data.toString('utf8'));
  }

  close(): Promise<unknown> {
    this.ws.close();
    return within(this.closed, WAIT, 'close');
  }
}

/** A metadata frame split into its header fields and body. */
function parseMeta(frame: Received): { fields: Record<string, string>; body: Buffer } {
  const end = frame.data.indexOf('\n\n');
  assert.ok(end >= 0, `metadata frame has a blank line: ${JSON.stringify(frame.data.toString())}`);
  const fields: Record<string, string> = {};
  for (const line of frame.data.subarray(0, end).toString('utf8').split('\n')) {
    const colon = line.indexOf(': ');
    fields[line.slice(0, colon)] = line.slice(colon + 2);
  }
  return { fields, body: frame.data.subarray(end + 2) };
}

interface App {
  relay: PushRelay;
  server: http.Server;
  /** ws://127.0.0.1:port + path */
  ws(path: string): string;
  http(path: string): string;
  close(): Promise<void>;
}

type Kind = 'express5' | 'node:http';

/** A fresh store for one app, and how to dispose of it. */
export type StoreFactory = () => Promise<{ store: ChannelStore; close(): Promise<void> }>;

/**
 * The relay on an app: Express 5 with route params (`/rooms/:room/events`, `/rooms/:room/messages`),
 * or plain node:http with relay.handler() and the `id` query argument (`/sub?id=`, `/pub?id=`).
 * The authorize hook refuses any subscriber URL that contains "forbidden".
 */
async function startWith(
  makeStore: StoreFactory,
  kind: Kind,
  relayOptions: PushRelayOptions = {},
  subscriberOptions: SubscriberOptions = {},
): Promise<App> {
  const { store, close: closeStore } = await makeStore();
  const relay = createPushRelay({ store, ...relayOptions });
  const authorize = (req: IncomingMessage) => !(req.url ?? '').includes('forbidden');
  let handler: (req: IncomingMessage, res: ServerResponse) => void;
  if (kind === 'express5') {
    const app = express();
    const room = (req: IncomingMessage) => (req as express.Request<{ room: string }>).params.room;
    app.get('/rooms/:room/events', relay.subscriber({ channelId: room, authorize, ...subscriberOptions }));
    app.all('/rooms/:room/messages', relay.publisher({ channelId: room }));
    handler = app;
  } else {
    handler = relay.handler({ '/sub': relay.subscriber({ authorize, ...subscriberOptions }), '/pub': relay.publisher() });
  }
  const server = http.createServer(handler);
  await relay.handleUpgrade(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    relay,
    server,
    ws: (path) => `ws://127.0.0.1:${port}${path}`,
    http: (path) => `http://127.0.0.1:${port}${path}`,
    async close() {
      await relay.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await closeStore();
    },
  };
}

/** The subscriber path of channel `id` on app `kind`, with extra query arguments. */
function sub(kind: Kind, id: string, query = ''): string {
  return kind === 'express5' ? `/rooms/${id}/events${query ? `?${query}` : ''}` : `/sub?id=${id}${query ? `&${query}` : ''}`;
}

/** Sends an upgrade request by hand; resolves with everything the server wrote once it closes the socket. */
async function rawUpgrade(app: App, path: string, headers: Record<string, string>): Promise<string> {
  const socket = net.connect(Number(new URL(app.http('/')).port), '127.0.0.1');
  let answer = '';
  socket.setEncoding('latin1');
  socket.on('data', (chunk: string) => (answer += chunk));
  const ended = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  const lines = Object.entries({ Host: 'x', Connection: 'Upgrade', Upgrade: 'websocket', ...headers }).map(([k, v]) => `${k}: ${v}\r\n`);
  socket.write(`GET ${path} HTTP/1.1\r\n${lines.join('')}\r\n`);
  await within(ended, WAIT, 'the server closing the socket');
  return answer;
}

async function subscribers(app: App, id: string): Promise<number> {
  return (await app.relay.channelInfo(id))?.subscribers ?? 0;
}

/**
 * An authorize hook that holds the requests whose URL contains `slow` (all of them when `slow` is '')
 * until release(); hookCalled resolves when it first holds one.
 */
function heldHook(slow: string): { authorize: (req: IncomingMessage) => boolean | Promise<boolean>; hookCalled: Promise<void>; release: () => void } {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  let asked!: () => void;
  const hookCalled = new Promise<void>((resolve) => (asked = resolve));
  const authorize = (req: IncomingMessage) => {
    if (!(req.url ?? '').includes(slow)) return true;
    asked();
    return gate.then(() => true);
  };
  return { authorize, hookCalled, release };
}

/** A raw client's upgrade request for `path`, with a valid key. */
const upgradeRequest = (path: string) =>
  `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`;

export function websocketSuite(storeName: string, makeStore: StoreFactory): void {
  const start = (kind: Kind, relayOptions?: PushRelayOptions, subscriberOptions?: SubscriberOptions) =>
    startWith(makeStore, kind, relayOptions, subscriberOptions);

  for (const kind of ['express5', 'node:http'] as const) {
    describe(`WebSocket subscriber (${kind}, ${storeName} store)`, () => {
      let app: App;
      before(async () => {
        app = await start(kind);
      });
      after(() => app.close());

      test('receives every message published, text in text frames, in order', async () => {
        const c = new Client(app.ws(sub(kind, 'recv')));
        await within(c.opened, WAIT, 'open');
        assert.equal(c.ws.protocol, '', 'no subprotocol asked, none chosen');
        await waitFor('the socket counted as a subscriber', async () => (await subscribers(app, 'recv')) === 1);
        for (const text of ['one', 'two', 'héllo\nthree']) await app.relay.publish('recv', text);
        await c.frame(2);
        assert.deepEqual(c.texts(), ['one', 'two', 'héllo\nthree']);
        assert.deepEqual(
          c.frames.map((f) => f.binary),
          [false, false, false],
        );
        await c.close();
        await waitFor('the subscriber counted out', async () => (await subscribers(app, 'recv')) === 0);
      });

      test("Nchan's subprotocol ws+meta.nchan: echoed, framed as NchanSubscriber parses it, resumable", async () => {
        // NchanSubscriber.js asks for exactly this, and drops the connection when it is not echoed.
        const c = new Client(app.ws(sub(kind, 'nchan')), ['ws+meta.nchan']);
        await within(c.opened, WAIT, 'open');
        assert.equal(c.ws.protocol, 'ws+meta.nchan');
        await app.relay.publish('nchan', 'hello', { contentType: 'text/plain', eventType: 'chat' });
        await app.relay.publish('nchan', 'plain');
        await app.relay.publish('nchan', Buffer.from([0, 0xff]), { contentType: 'application/octet-stream' });
        await c.frame(2);
        const nchanFrame = /^id: (.*)\n(content-type: (.*)\n)?\n/;
        const [typed, untyped, bytes] = c.frames;
        const m = nchanFrame.exec(typed!.data.toString('latin1'))!;
        assert.ok(m, 'every frame matches the client\'s parser');
        assert.equal(typed!.data.toString(), `id: ${m[1]}\ncontent-type: text/plain\n\nhello`, 'no event: line');
        assert.equal(untyped!.data.toString().replace(/^id: .*\n/, ''), '\nplain');
        assert.equal(bytes!.binary, true);
        assert.ok(nchanFrame.test(bytes!.data.subarray(0, 255).toString('latin1')));
        await c.close();
        // Its resume: last_event_id in the query.
        await app.relay.publish('nchan', 'later');
        const again = new Client(app.ws(sub(kind, 'nchan', `last_event_id=${encodeURIComponent(m[1]!)}`)), ['ws+meta.nchan']);
        await within(again.opened, WAIT, 'reopen');
        await again.frame(2);
        assert.deepEqual(
          again.texts().map((t) => t.slice(t.indexOf('\n\n') + 2)),
          ['plain', Buffer.from([0, 0xff]).toString(), 'later'],
        );
        await again.close();
      });

      test('metadata subprotocol: id and content type per frame; resume from last_event_id without loss or duplicate', async () => {
        const first = new Client(app.ws(sub(kind, 'resume')), [WEBSOCKET_META_PROTOCOL]);
        await within(first.opened, WAIT, 'open');
        assert.equal(first.ws.protocol, WEBSOCKET_META_PROTOCOL);
        await app.relay.publish('resume', 'm1', { contentType: 'text/plain' });
        await app.relay.publish('resume', '{"n":2}', { contentType: 'application/json', eventType: 'update' });
        const m2 = parseMeta(await first.frame(1));
        const m1 = parseMeta(first.frames[0]!);
        assert.equal(m1.fields['content-type'], 'text/plain');
        assert.equal(m1.body.toString(), 'm1');
        assert.equal(m2.fields['content-type'], 'application/json');
        assert.equal(m2.fields.event, 'update');
        assert.equal(m2.body.toString(), '{"n":2}');
        assert.match(m2.fields.id!, /^\d+:\d+$/);
        assert.equal(m1.fields.missed, undefined);
        await first.close();

        // Published while nobody listens: the next socket must get exactly these, then live ones.
        for (const text of ['m3', 'm4', 'm5']) await app.relay.publish('resume', text);
        const resumeAt = sub(kind, 'resume', `last_event_id=${encodeURIComponent(m2.fields.id!)}`);
        const again = new Client(app.ws(resumeAt), [WEBSOCKET_META_PROTOCOL]);
        await within(again.opened, WAIT, 'reopen');
        await again.frame(2);
        await app.relay.publish('resume', 'm6');
        await again.frame(3);
        const got = again.frames.map((f) => parseMeta(f));
        assert.deepEqual(
          got.map((m) => m.body.toString()),
          ['m3', 'm4', 'm5', 'm6'],
        );
        assert.ok(got.every((m) => m.fields.missed === undefined), 'nothing was lost');
        const ids = [m2.fields.id!, ...got.map((m) => m.fields.id!)];
        const sorted = [...ids].sort((a, b) => {
          const [at, ag] = a.split(':').map(Number) as [number, number];
          const [bt, bg] = b.split(':').map(Number) as [number, number];
          return at - bt || ag - bg;
        });
        assert.deepEqual(ids, sorted, 'ids grow');
        assert.equal(new Set(ids).size, ids.length, 'ids are distinct');
        await again.close();
      });

      test('a last_event_id ahead of every id the channel gave: the next message published comes, with the loss signal', async () => {
        await app.relay.publish('future', 'stored');
        const c = new Client(app.ws(sub(kind, 'future', `last_event_id=${encodeURIComponent('4102444800:3')}`)), [WEBSOCKET_META_PROTOCOL]);
        await within(c.opened, WAIT, 'open');
        await waitFor('subscribed', async () => (await subscribers(app, 'future')) === 1);
        await app.relay.publish('future', 'next');
        const got = parseMeta(await c.frame(0));
        assert.equal(got.body.toString(), 'next');
        assert.equal(got.fields.missed, '1');
        await c.close();
      });

      test('application/octet-stream and non-UTF-8 bodies go in binary frames, byte for byte', async () => {
        const c = new Client(app.ws(sub(kind, 'bin')));
        await within(c.opened, WAIT, 'open');
        await waitFor('subscribed', async () => (await subscribers(app, 'bin')) === 1);
        const bytes = Buffer.from([0, 1, 2, 0xff, 0xfe, 10, 13]);
        await app.relay.publish('bin', bytes, { contentType: 'application/octet-stream' });
        await app.relay.publish('bin', 'plain text', { contentType: 'text/plain; charset=utf-8' });
        await app.relay.publish('bin', Buffer.from([0xc3, 0x28]), { contentType: 'text/plain' });
        await app.relay.publish('bin', 'ascii but typed binary', { contentType: 'image/png' });
        await c.frame(3);
        assert.deepEqual(
          c.frames.map((f) => f.binary),
          [true, false, true, true],
        );
        assert.deepEqual(c.frames[0]!.data, bytes);
        assert.deepEqual(c.frames[2]!.data, Buffer.from([0xc3, 0x28]));
        await c.close();
      });

      test('deleting the channel closes the socket with 4410 and a reason', async () => {
        const c = new Client(app.ws(sub(kind, 'del')));
        await within(c.opened, WAIT, 'open');
        await waitFor('subscribed', async () => (await subscribers(app, 'del')) === 1);
        await app.relay.deleteChannel('del');
        const { code, reason } = await within(c.closed, WAIT, 'close after delete');
        assert.equal(code, 4410);
        assert.equal(reason, 'push-relay: channel deleted');
      });

      test('an unauthorized upgrade is refused with 403 over HTTP, and nothing is counted', async () => {
        const c = new Client(app.ws(sub(kind, 'forbidden')));
        const refused = await within(c.refused, WAIT, 'refusal');
        assert.equal(refused.status, 403);
        assert.match(refused.body, /not authorized/);
        assert.equal(refused.headers.connection, 'close');
        await within(refused.socketClosed, WAIT, 'the server closing the socket');
        assert.equal(await subscribers(app, 'forbidden'), 0);
      });

      test('an upgrade on a path no subscriber serves gets the app\'s 404', async () => {
        const c = new Client(app.ws('/no/such/route'));
        const refused = await within(c.refused, WAIT, 'refusal');
        assert.equal(refused.status, 404);
        await within(refused.socketClosed, WAIT, 'the server closing the socket');
      });

      test('messages from the client are ignored', async () => {
        const c = new Client(app.ws(sub(kind, 'ignore')));
        await within(c.opened, WAIT, 'open');
        c.ws.send('a client may not publish here');
        c.ws.send(Buffer.from([1, 2, 3]));
        await waitFor('subscribed', async () => (await subscribers(app, 'ignore')) === 1);
        await app.relay.publish('ignore', 'from the publisher');
        assert.equal((await c.frame(0)).data.toString(), 'from the publisher');
        assert.equal((await app.relay.channelInfo('ignore'))?.messages, 1, 'nothing the client sent was published');
        await c.close();
      });
    });
  }

  describe(`WebSocket subscriber options (${storeName} store)`, () => {
    test('concurrency "last": a newer socket closes the older with 4409; the newer keeps receiving', async () => {
      const app = await start('express5', {}, { concurrency: 'last' });
      try {
        const older = new Client(app.ws('/rooms/last/events'));
        await within(older.opened, WAIT, 'open older');
        await waitFor('older subscribed', async () => (await subscribers(app, 'last')) === 1);
        const newer = new Client(app.ws('/rooms/last/events'));
        await within(newer.opened, WAIT, 'open newer');
        const { code, reason } = await within(older.closed, WAIT, 'older closed');
        assert.equal(code, 4409);
        assert.match(reason, /newer subscriber/);
        await app.relay.publish('last', 'for the newer');
        assert.equal((await newer.frame(0)).data.toString(), 'for the newer');
        assert.equal(older.frames.length, 0);
        assert.equal(await subscribers(app, 'last'), 1);
        await newer.close();
      } finally {
        await app.close();
      }
    });

    test('an upgrade whose client leaves while the authorize hook decides is never counted: it cannot evict under "last"', async () => {
      const { authorize, hookCalled, release } = heldHook('slow');
      const app = await start('express5', {}, { concurrency: 'last', authorize });
      const serverSide = new Map<number, net.Socket>();
      app.server.on('connection', (s: net.Socket) => serverSide.set(s.remotePort!, s));
      try {
        const legit = new Client(app.ws('/rooms/hook/events'));
        await within(legit.opened, WAIT, 'open');
        await waitFor('subscribed', async () => (await subscribers(app, 'hook')) === 1);
        const raw = net.connect(Number(new URL(app.http('/')).port), '127.0.0.1');
        await new Promise<void>((resolve) => raw.once('connect', resolve));
        raw.on('error', () => {});
        raw.write(upgradeRequest('/rooms/hook/events?slow=1'));
        await within(hookCalled, WAIT, 'the authorize hook asked');
        raw.end();
        await waitFor('the server side of the connection', async () => serverSide.has(raw.localPort!));
        const server = serverSide.get(raw.localPort!)!;
        if (!server.destroyed) await within(new Promise((resolve) => server.once('close', resolve)), WAIT, 'the server seeing the client leave while the hook decides');
        release();
        await new Promise((resolve) => setImmediate(resolve));
        await app.relay.publish('hook', 'still the subscriber');
        assert.equal((await legit.frame(0)).data.toString(), 'still the subscriber');
        assert.equal(await subscribers(app, 'hook'), 1);
        await legit.close();
      } finally {
        release();
        await app.close();
      }
    });

    test('a frame the client sends before the handshake is answered reaches the socket once it opens', async () => {
      const { authorize, hookCalled, release } = heldHook('');
      const app = await start('node:http', {}, { websocketPublish: true, authorize });
      try {
        const raw = net.connect(Number(new URL(app.http('/')).port), '127.0.0.1');
        raw.on('error', () => {});
        let answer = '';
        raw.setEncoding('latin1');
        raw.on('data', (chunk: string) => (answer += chunk));
        await new Promise<void>((resolve) => raw.once('connect', resolve));
        raw.write(upgradeRequest('/sub?id=early'));
        await within(hookCalled, WAIT, 'the authorize hook asked');
        // A masked text frame "hi", sent while the app decides: a client should wait for the 101, but
        // one that does not loses nothing.
        raw.write(Buffer.from([0x81, 0x82, 1, 2, 3, 4, 'h'.charCodeAt(0) ^ 1, 'i'.charCodeAt(0) ^ 2]));
        release();
        await waitFor('the 101', async () => answer.startsWith('HTTP/1.1 101'));
        await waitFor('the early frame published', async () => (await app.relay.channelInfo('early'))?.messages === 1);
        raw.destroy();
      } finally {
        release();
        await app.close();
      }
    });

    test('a malformed handshake is refused with 400 before it is counted: it cannot evict under "last"', async () => {
      const app = await start('express5', {}, { concurrency: 'last' });
      try {
        const legit = new Client(app.ws('/rooms/guarded/events'));
        await within(legit.opened, WAIT, 'open');
        await waitFor('subscribed', async () => (await subscribers(app, 'guarded')) === 1);
        const answer = await rawUpgrade(app, '/rooms/guarded/events', { 'Sec-WebSocket-Key': 'not a key', 'Sec-WebSocket-Version': '13' });
        assert.match(answer, /^HTTP\/1\.1 400 /);
        assert.match(answer, /Sec-WebSocket-Key/);
        await app.relay.publish('guarded', 'still the subscriber');
        assert.equal((await legit.frame(0)).data.toString(), 'still the subscriber');
        await legit.close();
      } finally {
        await app.close();
      }
    });

    test('concurrency "first": a second upgrade is refused with 409 over HTTP', async () => {
      const app = await start('node:http', {}, { concurrency: 'first' });
      try {
        const first = new Client(app.ws('/sub?id=first'));
        await within(first.opened, WAIT, 'open');
        await waitFor('first subscribed', async () => (await subscribers(app, 'first')) === 1);
        const second = new Client(app.ws('/sub?id=first'));
        const refused = await within(second.refused, WAIT, 'refusal');
        assert.equal(refused.status, 409);
        await app.relay.publish('first', 'still here');
        assert.equal((await first.frame(0)).data.toString(), 'still here');
        await first.close();
      } finally {
        await app.close();
      }
    });

    test('maxChannelSubscribers counts sockets: one over the limit is refused with 403', async () => {
      const app = await start('express5', {}, { maxChannelSubscribers: 2 });
      try {
        const a = new Client(app.ws('/rooms/full/events'));
        const b = new Client(app.ws('/rooms/full/events'));
        await within(Promise.all([a.opened, b.opened]), WAIT, 'open two');
        await waitFor('two subscribed', async () => (await subscribers(app, 'full')) === 2);
        const c = new Client(app.ws('/rooms/full/events'));
        const refused = await within(c.refused, WAIT, 'refusal');
        assert.equal(refused.status, 403);
        assert.match(refused.body, /maxChannelSubscribers/);
        await a.close();
        await waitFor('one left', async () => (await subscribers(app, 'full')) === 1);
        const d = new Client(app.ws('/rooms/full/events'));
        await within(d.opened, WAIT, 'a free place again');
        await Promise.all([b.close(), d.close()]);
      } finally {
        await app.close();
      }
    });

    test('subscriberTimeout closes the socket with 4408', async () => {
      const app = await start('express5', {}, { subscriberTimeout: '300ms' });
      try {
        const c = new Client(app.ws('/rooms/slow/events'));
        await within(c.opened, WAIT, 'open');
        const { code, reason } = await within(c.closed, WAIT, 'timed out');
        assert.equal(code, 4408);
        assert.match(reason, /subscriberTimeout/);
      } finally {
        await app.close();
      }
    });

    test('keep-alive pings every pingInterval, from one shared timer', async () => {
      const app = await start('node:http', {}, { pingInterval: '50ms' });
      try {
        // Earlier sockets (other intervals) may still be closing: count relative to now.
        await waitFor('no ping timer left from earlier tests', () => pingTimers() === 0);
        const a = new Client(app.ws('/sub?id=ping'));
        const b = new Client(app.ws('/sub?id=ping2'));
        const pings = [a, b].map((c) => new Promise<void>((resolve) => c.ws.once('ping', () => resolve())));
        await within(Promise.all([a.opened, b.opened]), WAIT, 'open');
        await within(Promise.all(pings), WAIT, 'a ping on each socket');
        assert.equal(pingTimers(), 1, 'two sockets, one timer');
        await Promise.all([a.close(), b.close()]);
        await waitFor('the timer stopped with its last socket', () => pingTimers() === 0);
      } finally {
        await app.close();
      }
    });

    test('a peer that stops answering pings is cut', async () => {
      const app = await start('node:http', {}, { pingInterval: '50ms' });
      try {
        // autoPong off: this client never answers, like a peer that vanished without a FIN.
        const ws = new WebSocket(app.ws('/sub?id=deaf'), { autoPong: false });
        const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
        ws.on('error', () => {});
        const code = await within(closed, WAIT, 'cut');
        assert.equal(code, 1006, 'terminated, no close frame');
        await waitFor('counted out', async () => (await subscribers(app, 'deaf')) === 0);
      } finally {
        await app.close();
      }
    });

    test('resuming from an id older than anything stored carries the loss signal (missed: 1)', async () => {
      const app = await start('express5', { messageBufferLength: 2 });
      try {
        const first = new Client(app.ws('/rooms/lossy/events'), [WEBSOCKET_META_PROTOCOL]);
        await within(first.opened, WAIT, 'open');
        await waitFor('subscribed', async () => (await subscribers(app, 'lossy')) === 1);
        await app.relay.publish('lossy', 'kept-by-client');
        const seen = parseMeta(await first.frame(0)).fields.id!;
        await first.close();
        for (const text of ['gone1', 'gone2', 'stored1', 'stored2']) await app.relay.publish('lossy', text);
        const again = new Client(app.ws(`/rooms/lossy/events?last_event_id=${seen}`), [WEBSOCKET_META_PROTOCOL]);
        await again.frame(1);
        const [a, b] = again.frames.map((f) => parseMeta(f));
        assert.equal(a!.body.toString(), 'stored1');
        assert.equal(a!.fields.missed, '1');
        assert.equal(b!.body.toString(), 'stored2');
        assert.equal(b!.fields.missed, undefined);
        await again.close();
      } finally {
        await app.close();
      }
    });

    test('1,000 sockets each receive 100 messages, in order', async () => {
      const app = await start('node:http', {}, { pingInterval: 0 });
      const clients = 1000;
      const messages = 100;
      const counts = new Array<number>(clients).fill(0);
      const errors: string[] = [];
      const sockets: WebSocket[] = [];
      try {
        // In batches, so the accept backlog never overflows.
        for (let made = 0; made < clients; made += 200) {
          const batch = Array.from({ length: 200 }, (_, j) => {
            const i = made + j;
            const ws = new WebSocket(app.ws('/sub?id=crowd'));
            ws.on('message', (data: Buffer) => {
              const n = Number(data.toString().slice(1));
              if (n !== counts[i]) errors.push(`socket ${i} got n${n} after ${counts[i]} messages`);
              counts[i] = n + 1;
            });
            sockets.push(ws);
            return new Promise<void>((resolve, reject) => {
              ws.once('open', () => resolve());
              ws.once('error', reject);
            });
          });
          await within(Promise.all(batch), 10_000, `sockets ${made} to ${made + 200} open`);
        }
        await waitFor(`${clients} sockets counted`, async () => (await subscribers(app, 'crowd')) === clients, 10_000);
        const started = Date.now();
        for (let n = 0; n < messages; n++) await app.relay.publish('crowd', `n${n}`);
        await waitFor('every message at every socket', () => counts.every((c) => c === messages) || errors.length > 0, 30_000);
        const elapsed = Date.now() - started;
        assert.deepEqual(errors, []);
        console.log(`# ${storeName}: ${clients} WebSocket subscribers x ${messages} messages delivered in ${elapsed} ms`);
      } finally {
        for (const ws of sockets) ws.terminate();
        await app.close();
      }
    });

    test('relay.close() closes sockets with 1001; later upgrades get 503', async () => {
      const app = await start('express5');
      const c = new Client(app.ws('/rooms/bye/events'));
      await within(c.opened, WAIT, 'open');
      await waitFor('subscribed', async () => (await subscribers(app, 'bye')) === 1);
      await app.relay.close();
      const { code } = await within(c.closed, WAIT, 'closed by the relay');
      assert.equal(code, 1001);
      const late = new Client(app.ws('/rooms/bye/events'));
      assert.equal((await within(late.refused, WAIT, 'refusal')).status, 503);
      await app.close();
    });
  });
}

/** What handleUpgrade and the subscriber do whatever the store: run once. */
export function upgradeSuite(makeStore: StoreFactory): void {
  const start = (kind: Kind, relayOptions?: PushRelayOptions, subscriberOptions?: SubscriberOptions) =>
    startWith(makeStore, kind, relayOptions, subscriberOptions);

  describe('relay.handleUpgrade()', () => {
    test('mode "websocket" answers a plain GET with 426 Upgrade Required', async () => {
      const app = await start('express5', {}, { mode: 'websocket' });
      try {
        const res = await fetch(app.http('/rooms/x/events'));
        assert.equal(res.status, 426);
        assert.equal(res.headers.get('upgrade'), 'websocket');
        assert.match(await res.text(), /WebSocket subscribers only/);
      } finally {
        await app.close();
      }
    });

    test('a subscriber pinned to long-poll answers an upgrade request over HTTP, as a long-poll', async () => {
      const app = await start('express5', {}, { mode: 'long-poll' });
      try {
        await app.relay.publish('pinned', 'stored before');
        const c = new Client(app.ws('/rooms/pinned/events'));
        const answer = await within(c.refused, WAIT, 'the long-poll answer');
        assert.equal(answer.status, 200);
        assert.equal(answer.body, 'stored before');
        assert.ok(answer.headers.etag !== undefined && answer.headers['last-modified'] !== undefined);
        await within(answer.socketClosed, WAIT, 'the server closing the socket');
      } finally {
        await app.close();
      }
    });

    test('without handleUpgrade, an upgrade reaching the subscriber is answered 501 naming the fix, and the app is warned once', async () => {
      const warnings: string[] = [];
      const onWarning = (w: Error & { code?: string }) => w.code === 'PUSH_RELAY_NO_UPGRADE' && warnings.push(w.message);
      process.on('warning', onWarning);
      const relay = createPushRelay();
      const server = http.createServer(relay.handler({ '/sub': relay.subscriber() }));
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      try {
        const c = new Client(`ws://127.0.0.1:${(server.address() as AddressInfo).port}/sub?id=x`);
        const refused = await within(c.refused, WAIT, 'refusal');
        assert.equal(refused.status, 501);
        assert.match(refused.body, /handleUpgrade/);
        const again = new Client(`ws://127.0.0.1:${(server.address() as AddressInfo).port}/sub?id=x`);
        await within(again.refused, WAIT, 'refusal');
        await waitFor('the warning', () => warnings.length > 0);
        assert.deepEqual(warnings, ['push-relay: a WebSocket client was answered 501: call `await relay.handleUpgrade(server)` with the server the app listens on (docs/transports.md)']);
      } finally {
        process.off('warning', onWarning);
        await relay.close();
        server.closeAllConnections();
        server.close();
      }
    });

    test('with handleUpgrade, a WebSocket request whose Connection header lost "upgrade" (a proxy) gets 400 naming the header, not the 501', async () => {
      const warnings: string[] = [];
      const onWarning = (w: Error & { code?: string }) => w.code === 'PUSH_RELAY_NO_UPGRADE' && warnings.push(w.message);
      process.on('warning', onWarning);
      const app = await start('node:http');
      try {
        const answer = await rawUpgrade(app, '/sub?id=proxied', { Connection: 'close', 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version': '13' });
        assert.match(answer, /^HTTP\/1\.1 400 /);
        assert.match(answer, /Connection header does not name "upgrade".*proxy_set_header Connection "upgrade"/);
        assert.deepEqual(warnings, []);
      } finally {
        process.off('warning', onWarning);
        await app.close();
      }
    });

    test('a non-WebSocket upgrade is answered by the app as a plain request, then the socket closes', async () => {
      const app = await start('node:http');
      try {
        const answer = await rawUpgrade(app, '/elsewhere', { Upgrade: 'h2c' });
        assert.match(answer, /^HTTP\/1\.1 404 /);
        assert.match(answer, /\r\nConnection: close\r\n/i);
      } finally {
        await app.close();
      }
    });

    test('without the optional "ws" package, handleUpgrade rejects with an actionable error and leaves the server alone', async () => {
      // A child process whose module resolution cannot find `ws`, as on an install without it.
      const hook = `export async function resolve(s, c, next) {
        if (s === 'ws') throw Object.assign(new Error("Cannot find package 'ws'"), { code: 'ERR_MODULE_NOT_FOUND' });
        return next(s, c);
      }`;
      const register = `import { register } from 'node:module'; register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(hook)}`)});`;
      const script = `
        const { createPushRelay } = await import(${JSON.stringify(new URL('../../src/index.ts', import.meta.url).href)});
        const http = await import('node:http');
        const relay = createPushRelay();
        const server = http.createServer();
        const outcome = await relay.handleUpgrade(server).then(() => ({ loaded: true }), (err) => ({ message: err.message }));
        console.log(JSON.stringify({ ...outcome, listeners: server.listenerCount('upgrade') }));
        await relay.close();`;
      const { stdout } = await promisify(execFile)(
        process.execPath,
        ['--import', 'tsx', '--import', `data:text/javascript,${encodeURIComponent(register)}`, '--input-type=module', '-e', script],
        { timeout: 20_000 },
      );
      assert.deepEqual(JSON.parse(stdout), {
        message: 'push-relay: WebSocket subscribers need the optional peer dependency "ws" (npm install ws)',
        listeners: 0,
      });
    });

    test('handleUpgrade checks its arguments and attaches once per server', async () => {
      const relay = createPushRelay();
      assert.throws(() => relay.handleUpgrade({} as http.Server), /handleUpgrade\(\) takes the node:http/);
      const server = http.createServer();
      assert.throws(() => relay.handleUpgrade(server, 'app' as never), /must be a request handler/);
      await relay.handleUpgrade(server);
      await relay.handleUpgrade(server);
      assert.equal(server.listenerCount('upgrade'), 1);
      await relay.close();
    });
  });
}
