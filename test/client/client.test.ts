/**
 * push-relay/client in Node against a real push-relay on a real port, on each transport: order,
 * resume after a restart and after a cut network, transport fallback, the loss signal, the end of a
 * subscription, multiplexed channels, the async iterator. (The browser cases: test/e2e/client.test.ts.)
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { WebSocket, WebSocketServer } from 'ws';
import { subscribe, type End, type MessageMeta, type SubscribeOptions, type Subscription, type TransportName } from '../../src/client/index.js';
import { waitFor } from '../helpers/wait.js';
import { relayApp, tcpProxy, type RelayApp } from './fixture.js';

const TRANSPORTS: TransportName[] = ['websocket', 'eventsource', 'long-poll'];

interface Recorder {
  sub: Subscription;
  got: string[];
  metas: MessageMeta[];
  ends: End[];
  missed: unknown[];
  states: string[];
  until(n: number, timeout?: number): Promise<void>;
}

function record(url: string, options: SubscribeOptions): Recorder {
  const sub = subscribe(url, { WebSocket: WebSocket as unknown as SubscribeOptions['WebSocket'], backoff: { initial: 100, max: 500 }, ...options });
  const r: Recorder = {
    sub,
    got: [],
    metas: [],
    ends: [],
    missed: [],
    states: [],
    until: async (n, timeout = 10_000) => {
      await waitFor(`${n} messages (have ${r.got.length})`, () => r.got.length >= n, timeout);
    },
  };
  sub.on('message', (data, meta) => {
    r.got.push(String(data));
    r.metas.push(meta);
  });
  sub.on('end', (e) => r.ends.push(e));
  sub.on('missed', (m) => r.missed.push(m));
  sub.on('status', (s) => r.states.push(`${s.state}:${s.transport}`));
  return r;
}

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => `m${from + i}`);

describe('push-relay/client in Node', () => {
  let app: RelayApp;
  let n = 0;
  const channel = () => `c${++n}`;
  const open: Subscription[] = [];
  before(async () => {
    app = await relayApp();
  });
  after(async () => {
    for (const s of open) s.close();
    await app.close();
  });
  const track = (r: Recorder) => (open.push(r.sub), r);

  for (const transport of TRANSPORTS) {
    describe(transport, () => {
      it('100 messages, stored and live, in order, once; status open on this transport', async () => {
        const id = channel();
        for (const m of range(0, 50)) await app.publish(id, m);
        const r = track(record(app.url(`/sub?id=${id}`), { transports: [transport] }));
        await r.until(50);
        for (const m of range(50, 100)) await app.publish(id, m);
        await r.until(100);
        assert.deepEqual(r.got, range(0, 100));
        assert.ok(r.states.includes(`open:${transport}`), r.states.join());
        assert.equal(r.metas[0]!.channel, id);
        assert.equal(r.metas[0]!.transport, transport);
        assert.match(r.metas[99]!.id ?? '', /^\d+:\d+$/);
        r.sub.close();
        assert.equal(r.states.at(-1), `closed:${transport}`);
      });

      it('the app restarted mid-stream (messages published while it is down): nothing lost, nothing twice', async () => {
        const id = channel();
        const r = track(record(app.url(`/sub?id=${id}`), { transports: [transport] }));
        for (const m of range(0, 10)) await app.publish(id, m);
        await r.until(10);
        await app.stop();
        await app.start();
        // Before the client is back, on the restarted app.
        for (const m of range(10, 20)) await app.publish(id, m);
        await r.until(20);
        for (const m of range(20, 30)) await app.publish(id, m);
        await r.until(30);
        assert.deepEqual(r.got, range(0, 30));
        assert.ok(r.states.includes(`reconnecting:${transport}`), r.states.join());
      });

      it('the network cut and restored: nothing lost, nothing twice', async () => {
        const id = channel();
        const proxy = await tcpProxy(app.port);
        try {
          const r = track(record(proxy.url(`/sub?id=${id}`), { transports: [transport] }));
          for (const m of range(0, 10)) await app.publish(id, m);
          await r.until(10);
          await proxy.cut();
          for (const m of range(10, 20)) await app.publish(id, m);
          await waitFor('the client to notice', () => r.states.at(-1) === `reconnecting:${transport}`);
          await proxy.restore();
          await r.until(20);
          assert.deepEqual(r.got, range(0, 20));
        } finally {
          await proxy.close();
        }
      });

      it('lastId resumes after that message; an id older than the channel signals the loss', async () => {
        const id = channel();
        for (const m of range(0, 5)) await app.publish(id, m);
        const first = track(record(app.url(`/sub?id=${id}`), { transports: [transport] }));
        await first.until(5);
        first.sub.close();
        const resumed = track(record(app.url(`/sub?id=${id}`), { transports: [transport], lastId: first.metas[2]!.id! }));
        await resumed.until(2);
        assert.deepEqual(resumed.got, ['m3', 'm4']);
        assert.deepEqual(resumed.missed, []);
        const behind = track(record(app.url(`/sub?id=${id}`), { transports: [transport], lastId: '1000:0' }));
        await behind.until(5);
        assert.deepEqual(behind.got, range(0, 5));
        assert.equal(behind.missed.length, 1, 'one loss signal');
      });

      it('a lastId ahead of every id the channel has given: the server moves it back and says so; the next messages come', async () => {
        const id = channel();
        await app.publish(id, 'stored');
        const r = track(record(app.url(`/sub?id=${id}`), { transports: [transport], lastId: '4102444800:7' }));
        await waitFor('the subscriber waiting', async () => ((await app.relay.channelInfo(id))?.subscribers ?? 0) > 0);
        await app.publish(id, 'next');
        await r.until(1);
        await app.publish(id, 'and the one after');
        await r.until(2);
        assert.deepEqual(r.got, ['next', 'and the one after']);
        assert.equal(r.missed.length, 1, 'the loss signal came with the first');
        assert.equal(r.sub.lastId, r.metas[1]!.id, 'the position follows what came');
      });

      it('a deleted channel ends the subscription: end event, no reconnect', async () => {
        const id = channel();
        await app.publish(id, 'm0');
        const r = track(record(app.url(`/sub?id=${id}`), { transports: [transport] }));
        await r.until(1);
        await waitFor('the subscriber waiting', async () => ((await app.relay.channelInfo(id))?.subscribers ?? 0) > 0);
        await app.relay.deleteChannel(id);
        await waitFor('end', () => r.ends.length === 1);
        assert.equal(r.ends[0]!.reason, 'deleted');
        assert.equal(r.states.at(-1), `closed:${transport}`);
      });
    });
  }

  it('WebSocket refused by a proxy: falls back to EventSource, keeps it, and loses nothing', async () => {
    const noWs = await relayApp({ webSocket: false });
    try {
      const id = channel();
      for (const m of range(0, 5)) await noWs.publish(id, m);
      const r = track(record(noWs.url(`/sub?id=${id}`), {}));
      await r.until(5);
      for (const m of range(5, 10)) await noWs.publish(id, m);
      await r.until(10);
      assert.deepEqual(r.got, range(0, 10));
      assert.equal(r.metas[9]!.transport, 'eventsource');
      r.sub.close();
    } finally {
      await noWs.close();
    }
  });

  it('only long-poll gets through (no upgrade, no event stream): falls back to it', async () => {
    const pinned = await relayApp({ webSocket: false, subscriber: { mode: 'long-poll' } });
    try {
      const id = channel();
      for (const m of range(0, 3)) await pinned.publish(id, m);
      const r = track(record(pinned.url(`/sub?id=${id}`), {}));
      await r.until(3);
      assert.deepEqual(r.got, range(0, 3));
      assert.equal(r.metas[2]!.transport, 'long-poll');
    } finally {
      await pinned.close();
    }
  });

  it('a server that does not resume from the client\'s id (it reads another argument) replays its buffer: nothing is delivered twice', async () => {
    // cursorArguments renames the id argument (pushstream.js's setup): the client's last_event_id is not read.
    const replaying = await relayApp({ subscriber: { cursorArguments: { eventId: 'eventid' }, subscriberTimeout: '300ms' } });
    try {
      for (const transport of ['websocket', 'eventsource'] as const) {
        const id = `replay-${transport}`;
        for (const m of range(0, 3)) await replaying.publish(id, m);
        const r = track(record(replaying.url(`/sub?id=${id}`), { transports: [transport] }));
        await r.until(3);
        // Each time-out ends the stream; each reconnection replays m0..m2, which the client drops.
        await waitFor('two reconnections', () => r.states.filter((st) => st.startsWith('open:')).length >= 3, 5000);
        await replaying.publish(id, 'live');
        await r.until(4);
        assert.deepEqual(r.got, [...range(0, 3), 'live'], transport);
        r.sub.close();
      }
    } finally {
      await replaying.close();
    }
  });

  it('403 ends the subscription without retrying', async () => {
    const closed = await relayApp({ subscriber: { authorize: () => false } });
    try {
      const r = track(record(closed.url('/sub?id=x'), { transports: ['eventsource'] }));
      await waitFor('end', () => r.ends.length === 1);
      assert.equal(r.ends[0]!.reason, 'forbidden');
      assert.equal(r.ends[0]!.status, 403);
    } finally {
      await closed.close();
    }
  });

  it('several channels on one connection: each message names its channel', async () => {
    const multi = await relayApp({ subscriber: { channelId: (req) => new URL(req.url!, 'http://x').searchParams.get('ids')!.split(',') } });
    try {
      for (const transport of TRANSPORTS) {
        const [a, b] = [channel(), channel()];
        const r = track(record(multi.url(`/sub?ids=${a},${b}`), { transports: [transport], channels: [a, b] }));
        await multi.publish(a, 'to-a');
        await multi.publish(b, 'to-b');
        await multi.publish(a, 'to-a-2');
        await r.until(3);
        // Across channels, a catch-up comes in id order, not publish order (docs/transports.md): compare per channel.
        const by = (ch: string) => r.got.filter((_, i) => r.metas[i]!.channel === ch);
        assert.deepEqual(by(a), ['to-a', 'to-a-2'], transport);
        assert.deepEqual(by(b), ['to-b'], transport);
        r.sub.close();
      }
    } finally {
      await multi.close();
    }
  });

  it("the publisher's event type and content type reach the client (WebSocket and EventSource)", async () => {
    for (const transport of ['websocket', 'eventsource'] as const) {
      const id = channel();
      const res = await fetch(app.url(`/pub?id=${id}`), { method: 'POST', body: '{"a":1}', headers: { 'Content-Type': 'application/json', 'X-EventSource-Event': 'greeting' } });
      assert.equal(res.status, 202);
      const r = track(record(app.url(`/sub?id=${id}`), { transports: [transport] }));
      await r.until(1);
      assert.equal(r.got[0], '{"a":1}');
      assert.equal(r.metas[0]!.eventType, 'greeting', transport);
      if (transport === 'websocket') assert.equal(r.metas[0]!.contentType, 'application/json');
      r.sub.close();
    }
  });

  it('binary messages arrive as bytes', async () => {
    const id = channel();
    const bytes = Buffer.from([0, 1, 2, 250, 255]);
    await fetch(app.url(`/pub?id=${id}`), { method: 'POST', body: bytes, headers: { 'Content-Type': 'application/octet-stream' } });
    for (const transport of TRANSPORTS) {
      const sub = subscribe(app.url(`/sub?id=${id}`), { transports: [transport], WebSocket: WebSocket as unknown as SubscribeOptions['WebSocket'] });
      const data = await new Promise<unknown>((resolve) => sub.on('message', (d) => resolve(d)));
      sub.close();
      assert.ok(data instanceof Uint8Array, transport);
      assert.deepEqual([...data], [...bytes], transport);
    }
  });

  it('close() while a WebSocket is still connecting: no crash, and nothing keeps Node running', { timeout: 30_000 }, async () => {
    // A server that takes the connection and never answers the handshake.
    const silent = http.createServer();
    silent.on('upgrade', () => {});
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(silent.address() as AddressInfo).port}/sub?id=x`;
    const script = `
      import { WebSocket } from 'ws';
      import { subscribe } from './src/client/index.ts';
      const sub = subscribe(${JSON.stringify(url)}, { WebSocket, transports: ['websocket', 'long-poll'] });
      setTimeout(() => { sub.close(); console.log('closed'); }, 300);
    `;
    const started = Date.now();
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    silent.closeAllConnections();
    silent.close();
    assert.equal(code, 0, out);
    assert.match(out, /closed/);
    assert.ok(Date.now() - started < 8000, `the process lived ${Date.now() - started} ms after close()`);
  });

  it('a connection that opens and drops at once: the back-off still grows', { timeout: 30_000 }, async () => {
    const server = http.createServer();
    const wss = new WebSocketServer({ server, handleProtocols: () => 'ws+meta.push-relay' });
    let connections = 0;
    wss.on('connection', (ws) => {
      connections++;
      ws.close(1013, 'try again later');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const sub = subscribe(`http://127.0.0.1:${(server.address() as AddressInfo).port}/sub?id=x`, {
      WebSocket: WebSocket as unknown as SubscribeOptions['WebSocket'],
      transports: ['websocket'],
      backoff: { initial: 100, max: 10_000 },
    });
    await new Promise((r) => setTimeout(r, 3000));
    sub.close();
    wss.close();
    server.close();
    // Full jitter from 100 ms, doubling: about 8 attempts in 3 s at most; without growth it would be ~60.
    assert.ok(connections >= 2 && connections <= 15, `${connections} connections in 3 s`);
  });

  it('an EventSource event named "binary" with a text body is delivered as text (the stream goes on)', async () => {
    const id = channel();
    await fetch(app.url(`/pub?id=${id}`), { method: 'POST', body: 'hi!', headers: { 'X-EventSource-Event': 'binary' } });
    await app.publish(id, 'next');
    const r = track(record(app.url(`/sub?id=${id}`), { transports: ['eventsource'] }));
    await r.until(2);
    assert.deepEqual(r.got, ['hi!', 'next']);
    assert.equal(r.metas[0]!.eventType, 'binary');
  });

  it('leaving a for-await loop closes the subscription', async () => {
    const id = channel();
    await app.publish(id, 'one');
    for await (const m of subscribe(app.url(`/sub?id=${id}`), { transports: ['eventsource'] })) {
      assert.equal(m.data, 'one');
      break;
    }
    await waitFor('no subscriber left', async () => ((await app.relay.channelInfo(id))?.subscribers ?? 0) === 0);
  });

  it('for await: yields messages until the subscription closes', async () => {
    const id = channel();
    for (const m of range(0, 3)) await app.publish(id, m);
    const sub = subscribe(app.url(`/sub?id=${id}`), { transports: ['long-poll'] });
    const got: string[] = [];
    for await (const m of sub) {
      got.push(String(m.data));
      if (got.length === 3) sub.close();
    }
    assert.deepEqual(got, range(0, 3));
  });

  it('a listener that throws does not stop delivery', async () => {
    const id = channel();
    const errors: unknown[] = [];
    const sub = subscribe(app.url(`/sub?id=${id}`), { transports: ['eventsource'] });
    open.push(sub);
    const got: string[] = [];
    sub.on('error', (e) => errors.push(e));
    sub.on('message', (d) => {
      got.push(String(d));
      throw new Error('listener bug');
    });
    for (const m of range(0, 3)) await app.publish(id, m);
    await waitFor('3 messages', () => got.length === 3);
    assert.ok(errors.some((e) => e instanceof Error && e.message === 'listener bug'));
  });

  it('a relative URL outside a browser: a TypeError that says to give an absolute one', () => {
    assert.throws(() => subscribe('/sub?id=room-1'), {
      name: 'TypeError',
      message: 'push-relay/client: "/sub?id=room-1" is not an absolute URL, and there is no page to resolve it against (outside a browser, pass one such as "http://localhost:8080/sub?id=room-1")',
    });
  });
});
