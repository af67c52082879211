/**
 * Bad input: a clear answer, nothing lost, the app keeps running.
 */
import assert from 'node:assert/strict';
import express from 'express';
import type { IncomingMessage } from 'node:http';
import { connect } from 'node:net';
import { afterEach, describe, it } from 'node:test';
import { createPushRelay, MemoryStore, type ChannelStore, type PushRelay, type PushRelayOptions } from '../src/index.js';
import { rawExchange, rawGet, request } from './helpers/http-client.js';
import { serveExpress5, serveNodeHttp, type Routes, type TestServer } from './helpers/servers.js';
import { waitFor, within } from './helpers/wait.js';
import type { Middleware } from '../src/index.js';

const open: Array<{ relay: PushRelay; server: TestServer }> = [];
afterEach(async () => {
  for (const { relay, server } of open.splice(0)) {
    await relay.close();
    await server.close();
  }
});

async function start(options: PushRelayOptions = {}, serveWith: (routes: Routes, before?: Middleware[]) => Promise<TestServer> = serveExpress5, before?: Middleware[]) {
  const relay = createPushRelay(options);
  const server = await serveWith({ '/pub': relay.publisher(), '/sub': relay.subscriber({ mode: 'interval-poll' }) }, before);
  open.push({ relay, server });
  return { relay, server };
}

const idOf = (req: IncomingMessage) => new URL(req.url ?? '', 'http://x').searchParams.get('id') ?? undefined;

describe('throwing hooks go to next(err); other channels keep working', () => {
  it('a throwing resolver: 500 from the app error handler, which saw the error', async () => {
    const { server } = await start({
      channelId: (req) => {
        const id = idOf(req);
        if (id === 'boom') throw new Error('resolver exploded');
        return id;
      },
    });
    for (const [method, path] of [['POST', '/pub'], ['GET', '/sub']] as const) {
      const res = await request(server.url(`${path}?id=boom`), { method, body: method === 'POST' ? 'x' : undefined });
      assert.equal(res.status, 500);
      assert.equal(res.text, 'app error handler: resolver exploded');
    }
    assert.equal(server.errors.length, 2);
    assert.equal((server.errors[0] as Error).message, 'resolver exploded');
    assert.equal((await request(server.url('/pub?id=fine'), { method: 'POST', body: 'ok' })).status, 202);
    assert.equal((await request(server.url('/sub?id=fine'))).text, 'ok');
  });

  it('a rejecting async resolver goes to next(err) too', async () => {
    const { server } = await start({ channelId: async () => Promise.reject(new Error('async resolver failed')) });
    const res = await request(server.url('/sub?id=a'));
    assert.equal(res.status, 500);
    assert.equal((server.errors[0] as Error).message, 'async resolver failed');
  });

  it('a throwing authorize hook: 500 via next(err); false: 403; true: served; it sees the id and role', async () => {
    const seen: string[] = [];
    const { server } = await start({
      authorize: async (_req, { channelId, role }) => {
        seen.push(`${role}:${channelId}`);
        if (channelId === 'boom') throw new Error('authorize exploded');
        return channelId !== 'secret';
      },
    });
    const boom = await request(server.url('/pub?id=boom'), { method: 'POST', body: 'x' });
    assert.equal(boom.status, 500);
    assert.equal((server.errors[0] as Error).message, 'authorize exploded');
    const secret = await request(server.url('/sub?id=secret'));
    assert.equal(secret.status, 403);
    assert.ok(secret.text.length > 0);
    assert.equal((await request(server.url('/pub?id=secret'), { method: 'POST', body: 'x' })).status, 403);
    assert.equal((await request(server.url('/pub?id=open'), { method: 'POST', body: 'x' })).status, 202);
    assert.equal((await request(server.url('/sub?id=open'))).text, 'x');
    assert.deepEqual(seen, ['publisher:boom', 'subscriber:secret', 'publisher:secret', 'publisher:open', 'subscriber:open']);
    assert.equal(server.errors.length, 1);
  });

  it('an authorize hook that returns a truthy non-boolean: 403 whose body says what it returned', async () => {
    const verdicts: Record<string, unknown> = { one: 1, user: { id: 7 }, yes: 'yes' };
    const { server } = await start({ authorize: (_req, { channelId }) => verdicts[channelId] as boolean });
    for (const [id, said] of [['one', /returned 1 \(a number\), not true or false/], ['user', /returned an object/], ['yes', /returned a string \("yes"\)/]] as const) {
      const res = await request(server.url(`/sub?id=${id}`));
      assert.equal(res.status, 403, id);
      assert.match(res.text, said, id);
      assert.match(res.text, /only true lets a request through/, id);
    }
    const plain = await request(server.url('/sub?id=none'));
    assert.equal(plain.status, 403);
    assert.equal(plain.text, 'push-relay: not authorized for this channel\n', 'undefined or false: the plain refusal');
  });

  it('without a framework (no next), a throwing hook answers a plain 500 and the server lives', async () => {
    const { server } = await start(
      {
        authorize: (_req, { channelId }) => {
          if (channelId === 'boom') throw new Error('secret internals');
          return true;
        },
      },
      serveNodeHttp,
    );
    const res = await request(server.url('/sub?id=boom'));
    assert.equal(res.status, 500);
    assert.doesNotMatch(res.text, /secret internals/, 'internal messages are not exposed');
    assert.equal((await request(server.url('/pub?id=ok'), { method: 'POST', body: 'x' })).status, 202);
  });

  it('a throwing store method goes to next(err), other channels keep working', async () => {
    const memory = new MemoryStore();
    const broken = (channel: string) => channel.endsWith('/broken');
    const store: ChannelStore = Object.assign(Object.create(memory) as MemoryStore, {
      next: (channel: string, after: Parameters<MemoryStore['next']>[1]) =>
        broken(channel) ? Promise.reject(new Error('store read failed')) : memory.next(channel, after),
      // A long-poll reads with nextOrJoin() where the store has it.
      nextOrJoin: (channel: string, ...rest: [Parameters<MemoryStore['nextOrJoin']>[1], Parameters<MemoryStore['nextOrJoin']>[2]]) =>
        broken(channel) ? Promise.reject(new Error('store read failed')) : memory.nextOrJoin(channel, ...rest),
      publish: (channel: string, ...rest: [Parameters<MemoryStore['publish']>[1], Parameters<MemoryStore['publish']>[2]]) =>
        broken(channel) ? Promise.reject(new Error('store write failed')) : memory.publish(channel, ...rest),
    });
    const { server } = await start({ store });
    assert.equal((await request(server.url('/sub?id=broken'))).status, 500);
    assert.equal((await request(server.url('/pub?id=broken'), { method: 'POST', body: 'x' })).status, 500);
    assert.deepEqual(server.errors.map((e) => (e as Error).message), ['store read failed', 'store write failed']);
    assert.equal((await request(server.url('/pub?id=ok'), { method: 'POST', body: 'x' })).status, 202);
    assert.equal((await request(server.url('/sub?id=ok'))).text, 'x');
    await memory.close();
  });
});

describe('request bodies', () => {
  it('413 arrives before the client has finished sending a body declared too large, and nothing is stored', async () => {
    const { relay, server } = await start();
    const declared = 8 * 1024 * 1024;
    const head = `POST /pub?id=big HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: ${declared}\r\n\r\n`;
    // Send 64 KiB of the 8 MiB and keep the socket open: the answer must come anyway.
    const res = await within(rawExchange(server.port, head, Buffer.alloc(64 * 1024, 'x')), 5000, '413 before the body ends');
    res.socket.destroy();
    assert.equal(res.status, 413);
    assert.match(res.body.toString(), /maxMessageSize \(1MB\)/);
    assert.equal(await relay.channelInfo('big'), undefined);
    assert.equal((await request(server.url('/pub?id=small'), { method: 'POST', body: 'fine' })).status, 202);
  });

  it('413 also for a chunked body that grows past the limit, without waiting for its end', async () => {
    const relay = createPushRelay();
    const server = await serveNodeHttp({ '/pub': relay.publisher({ maxMessageSize: '64kb' }) });
    open.push({ relay, server });
    const chunk = Buffer.alloc(16 * 1024, 'y');
    const chunked = Buffer.concat(Array.from({ length: 6 }, () => Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n')])));
    const head = 'POST /pub?id=chunky HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n';
    const res = await within(rawExchange(server.port, head, chunked), 5000, '413 on a chunked body');
    res.socket.destroy();
    assert.equal(res.status, 413);
    assert.equal(await relay.channelInfo('chunky'), undefined);
  });

  it('maxTotalBodies: a publish whose bytes do not fit beside those being received answers 503, and the budget comes back', async () => {
    const { relay, server } = await start({ maxTotalBodies: '10kb', maxMessageSize: '10kb' }, serveNodeHttp);
    assert.throws(() => relay.publisher({ maxMessageSize: '11kb' }), /"maxMessageSize" \(11KB\) is larger than the relay's "maxTotalBodies" \(10KB\)/);
    // 9 KB declared, 8 KB sent, and the publisher goes quiet: its 8 KB are held.
    const slow = connect(server.port, '127.0.0.1');
    await new Promise((r) => slow.once('connect', r));
    slow.write(`POST /pub?id=slow HTTP/1.1\r\nHost: x\r\nContent-Length: ${9 * 1024}\r\n\r\n${'s'.repeat(8 * 1024)}`);
    // Headers alone hold nothing: announcing 9 KB more costs the relay nothing until the bytes come.
    const announced = connect(server.port, '127.0.0.1');
    await new Promise((r) => announced.once('connect', r));
    announced.write(`POST /pub?id=announced HTTP/1.1\r\nHost: x\r\nContent-Length: ${9 * 1024}\r\n\r\n`);
    let attempt = 0;
    let refused: Awaited<ReturnType<typeof rawExchange>> | undefined;
    await waitFor('a 4 KB publish refused beside the 8 KB being received', async () => {
      refused = await rawExchange(server.port, `POST /pub?id=second-${++attempt} HTTP/1.1\r\nHost: x\r\nContent-Length: ${4 * 1024}\r\n\r\n`, Buffer.alloc(4 * 1024, 'b'));
      refused.socket.destroy();
      return refused.status === 503;
    });
    assert.equal(refused!.headers['retry-after'], '1');
    assert.equal(refused!.headers.connection, 'close');
    assert.match(refused!.body.toString(), /maxTotalBodies \(10KB\)/);
    assert.equal(await relay.channelInfo(`second-${attempt}`), undefined, 'nothing stored');
    // A small one still fits beside it.
    assert.equal((await request(server.url('/pub?id=small'), { method: 'POST', body: 'x'.repeat(1024) })).status, 202);
    // The slow one ends: its share comes back, and an 8 KB publish fits again.
    slow.write('s'.repeat(1024));
    await waitFor('the slow publish stored', async () => (await relay.channelInfo('slow'))?.messages === 1);
    slow.destroy();
    assert.equal((await request(server.url('/pub?id=third'), { method: 'POST', body: 'y'.repeat(8 * 1024) })).status, 202);
    announced.destroy();
  });

  it('maxTotalBodies: a chunked body counts as it arrives; one that leaves, cut off, gives its share back', async () => {
    const { relay, server } = await start({ maxTotalBodies: '10kb', maxMessageSize: '10kb' });
    const chunk = (n: number, c: string) => `${n.toString(16)}\r\n${c.repeat(n)}\r\n`;
    const head = (id: string) => `POST /pub?id=${id} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n`;
    const first = connect(server.port, '127.0.0.1');
    await new Promise((r) => first.once('connect', r));
    first.write(head('c1') + chunk(6 * 1024, 'a'));
    let refused: Awaited<ReturnType<typeof rawExchange>> | undefined;
    await waitFor('the second chunked body refused past the budget', async () => {
      refused = await rawExchange(server.port, head('c2'), Buffer.from(chunk(6 * 1024, 'b')));
      refused.socket.destroy();
      return refused.status === 503;
    });
    assert.equal(await relay.channelInfo('c2'), undefined);
    // The first publisher leaves without finishing: nothing stored, and its 6 KB come back.
    first.destroy();
    await waitFor('an 8 KB chunked publish fits again', async () => {
      const res = await rawExchange(server.port, head('c3'), Buffer.from(chunk(8 * 1024, 'c') + '0\r\n\r\n'));
      res.socket.destroy();
      return res.status === 202;
    });
    assert.equal(await relay.channelInfo('c1'), undefined);
  });

  it('a body cut off by the client stores nothing and the server keeps serving', async () => {
    const resolved: string[] = [];
    const { relay, server } = await start({
      channelId: (req) => {
        const id = idOf(req);
        if (id) resolved.push(id);
        return id;
      },
    });
    const head = 'POST /pub?id=cut HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n';
    const socket = connect(server.port, '127.0.0.1');
    await new Promise((r) => socket.once('connect', r));
    socket.write(head + 'x'.repeat(10));
    // The body is read right after the resolver ran: cut the connection while it is being read.
    await waitFor('the publisher to resolve the channel', () => resolved.includes('cut'));
    socket.destroy();
    assert.equal((await request(server.url('/pub?id=after'), { method: 'POST', body: 'ok' })).status, 202);
    assert.equal(await relay.channelInfo('cut'), undefined);
  });

  for (const serveWith of [serveExpress5, serveNodeHttp]) {
    it(`a body longer than its Content-Length (${serveWith.name}): Node answers the extra bytes 400 and closes, and nothing is stored`, async () => {
      const { relay, server } = await start({}, serveWith);
      const socket = connect(server.port, '127.0.0.1');
      await new Promise((r) => socket.once('connect', r));
      let answer = '';
      socket.on('data', (d: Buffer) => (answer += d.toString('latin1')));
      const closed = new Promise((r) => socket.once('close', r));
      // "ab" is the whole body; "cdef" is read as the next request on the connection, which is not one.
      socket.write('POST /pub?id=longer HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nabcdef');
      await within(closed, 5000, 'the connection closed');
      assert.match(answer, /^HTTP\/1\.1 400 /);
      assert.doesNotMatch(answer, /20[12] /, 'no acknowledgement');
      // The client saw 400 and may well retry: the first attempt must not have been stored.
      assert.equal((await request(server.url('/pub?id=after'), { method: 'POST', body: 'ok' })).status, 202);
      assert.equal(await relay.channelInfo('longer'), undefined);
    });
  }

  for (const [name, parser, body, expected] of [
    ['express.raw()', express.raw({ type: '*/*' }), Buffer.from([0, 255, 1, 254]), Buffer.from([0, 255, 1, 254])],
    ['express.text()', express.text({ type: '*/*' }), 'plain words', Buffer.from('plain words')],
  ] as const) {
    it(`uses req.body when ${name} read the body first`, async () => {
      const { relay, server } = await start({}, serveExpress5, [parser as unknown as Middleware]);
      const res = await request(server.url('/pub?id=parsed'), { method: 'POST', body, headers: { 'Content-Type': 'application/x-thing' } });
      assert.equal(res.status, 202);
      const got = await request(server.url('/sub?id=parsed'));
      assert.ok(got.body.equals(expected), `${got.body.toString('hex')} != ${expected.toString('hex')}`);
      assert.equal(got.headers['content-type'], 'application/x-thing');
      assert.equal((await relay.channelInfo('parsed'))!.messages, 1);
    });
  }

  it('a body express.text() decoded from Latin-1 is published as the bytes sent; another charset answers 500, nothing published', async () => {
    const { relay, server } = await start({}, serveExpress5, [express.text({ type: '*/*' }) as unknown as Middleware]);
    const latin1 = Buffer.from('636166e9', 'hex'); // "café" in ISO-8859-1
    const type = 'text/plain; charset=iso-8859-1';
    assert.equal((await request(server.url('/pub?id=latin1'), { method: 'POST', body: latin1, headers: { 'Content-Type': type } })).status, 202);
    const got = await request(server.url('/sub?id=latin1'));
    assert.equal(got.body.toString('hex'), latin1.toString('hex'));
    assert.equal(got.headers['content-type'], type);
    const utf16 = await request(server.url('/pub?id=utf16'), { method: 'POST', body: Buffer.from('hi', 'utf16le'), headers: { 'Content-Type': 'text/plain; charset=utf-16le' } });
    assert.equal(utf16.status, 500);
    assert.match(utf16.text, /decoded this request body from utf-16le/);
    assert.match(utf16.text, /Mount the publisher before that parser/);
    assert.equal(await relay.channelInfo('utf16'), undefined);
    // US-ASCII decoding replaces bytes above 0x7f: they cannot be given back either.
    const ascii = await request(server.url('/pub?id=ascii'), { method: 'POST', body: Buffer.from('63e9', 'hex'), headers: { 'Content-Type': 'text/plain; charset=us-ascii' } });
    assert.equal(ascii.status, 500);
    assert.equal(await relay.channelInfo('ascii'), undefined);
  });

  it('maxMessageSize also applies to a body express.raw() already read', async () => {
    const relay = createPushRelay();
    const server = await serveExpress5({ '/pub': relay.publisher({ maxMessageSize: 10 }) }, [express.raw({ type: '*/*' }) as unknown as Middleware]);
    open.push({ relay, server });
    const res = await request(server.url('/pub?id=r'), { method: 'POST', body: Buffer.alloc(11) });
    assert.equal(res.status, 413);
    assert.equal(await relay.channelInfo('r'), undefined);
  });

  const exactJson = '{"n": 1.0, "big": 12345678901234567890}';

  it('a global express.json(): 500 saying how to mount the publisher, nothing published (never a re-serialised object)', async () => {
    const { relay, server } = await start({}, serveExpress5, [express.json() as unknown as Middleware]);
    const res = await request(server.url('/pub?id=j'), { method: 'POST', body: exactJson, headers: { 'Content-Type': 'application/json' } });
    assert.equal(res.status, 500);
    assert.match(res.text, /body parser/);
    assert.match(res.text, /Mount the publisher before that parser/);
    assert.match(res.text, /rawBody/);
    assert.equal(await relay.channelInfo('j'), undefined, 'nothing was published');
  });

  it('a global express.urlencoded() and a plain curl -d: the same clear 500', async () => {
    const { relay, server } = await start({}, serveExpress5, [express.urlencoded({ extended: false }) as unknown as Middleware]);
    const res = await request(server.url('/pub?id=f'), { method: 'POST', body: 'hello', headers: { 'Content-Type': 'application/x-www-form-urlencoded' } });
    assert.equal(res.status, 500);
    assert.match(res.text, /Mount the publisher before that parser/);
    assert.equal(await relay.channelInfo('f'), undefined);
  });

  it('a parser that keeps the raw bytes (verify hook -> req.rawBody): the exact bytes are published', async () => {
    const keepRaw = express.json({ verify: (req, _res, buf) => ((req as unknown as { rawBody: Buffer }).rawBody = buf) });
    const { server } = await start({}, serveExpress5, [keepRaw as unknown as Middleware]);
    const res = await request(server.url('/pub?id=r'), { method: 'POST', body: exactJson, headers: { 'Content-Type': 'application/json' } });
    assert.equal(res.status, 202);
    const got = await request(server.url('/sub?id=r'));
    assert.equal(got.text, exactJson, 'byte for byte, 1.0 and the big number included');
    assert.equal(got.headers['content-type'], 'application/json');
  });

  it('a global parser that left an empty body: an empty message', async () => {
    const { server } = await start({}, serveExpress5, [express.json() as unknown as Middleware]);
    const res = await request(server.url('/pub?id=e'), { method: 'POST', headers: { 'Content-Type': 'application/json', 'Content-Length': '0' } });
    assert.equal(res.status, 202);
    const got = await request(server.url('/sub?id=e'));
    assert.equal(got.status, 200);
    assert.equal(got.body.length, 0);
  });
});

describe('hostile cursor headers', () => {
  const cases: Array<[string, Record<string, string>]> = [
    ['garbage date', { 'If-Modified-Since': 'garbage', 'If-None-Match': '1' }],
    ['huge tag', { 'If-Modified-Since': 'Thu, 01 Jan 2015 00:00:00 GMT', 'If-None-Match': '9'.repeat(10_000) }],
    ['negative tag', { 'If-Modified-Since': 'Thu, 01 Jan 2015 00:00:00 GMT', 'If-None-Match': '-1' }],
    ['star', { 'If-Modified-Since': 'Thu, 01 Jan 2015 00:00:00 GMT', 'If-None-Match': '*' }],
    ['list of tags', { 'If-Modified-Since': 'Thu, 01 Jan 2015 00:00:00 GMT', 'If-None-Match': 'W/"1", "2", garbage' }],
    ['far future date', { 'If-Modified-Since': 'Fri, 31 Dec 9999 23:59:59 GMT', 'If-None-Match': '0' }],
    ['date before the epoch', { 'If-Modified-Since': 'Mon, 01 Jan 1900 00:00:00 GMT' }],
    ['only If-None-Match', { 'If-None-Match': '"3"' }],
    ['long garbage date', { 'If-Modified-Since': 'x'.repeat(7000) }],
    ['empty values', { 'If-Modified-Since': '', 'If-None-Match': '' }],
    ['unquoted quote', { 'If-Modified-Since': 'Thu, 01 Jan 2015 00:00:00 GMT', 'If-None-Match': '"' }],
  ];
  it('are read as docs/protocol.md says and never crash: 200 with a message or 304', async () => {
    const { relay, server } = await start();
    await relay.publish('h', 'stored');
    for (const [name, headers] of cases) {
      const res = await rawGet(server.port, '/sub?id=h', headers);
      // Everything but the future date reads as "before the stored message" (or no cursor at all).
      if (name === 'far future date') assert.equal(res.status, 304, name);
      else {
        assert.equal(res.status, 200, name);
        assert.equal(res.body.toString(), 'stored', name);
      }
    }
    assert.deepEqual(server.errors, []);
    // The same header twice.
    const twice = await rawExchange(
      server.port,
      'GET /sub?id=h HTTP/1.1\r\nHost: x\r\nConnection: close\r\nIf-Modified-Since: Thu, 01 Jan 2015 00:00:00 GMT\r\nIf-None-Match: 1\r\nIf-None-Match: 2\r\n\r\n',
    );
    twice.socket.destroy();
    assert.equal(twice.status, 200);
  });
});

describe('clients that leave', () => {
  it('a parked subscriber whose client goes is removed at once', async () => {
    const relay = createPushRelay();
    const server = await serveExpress5({ '/sub': relay.subscriber() });
    open.push({ relay, server });
    const controller = new AbortController();
    const held = request(server.url('/sub?id=gone'), { signal: controller.signal }).catch((err: Error) => err);
    await waitFor('a waiting subscriber', async () => (await relay.channelInfo('gone'))?.subscribers === 1);
    controller.abort();
    assert.ok((await held) instanceof Error);
    await waitFor('the subscriber to be counted out and the unused channel to go', async () => (await relay.channelInfo('gone')) === undefined);
    // A message published now is stored for the next subscriber, not sent to the departed one.
    assert.equal((await relay.publish('gone', 'later')).subscribers, 0);
  });
});

describe('store full', () => {
  it('507 with a clear body, nothing stored, existing messages intact', async () => {
    const relay = createPushRelay({ maxReservedMemory: 4096, maxMessageSize: '1mb' });
    for (const serveWith of [serveNodeHttp, serveExpress5]) {
      const server = await serveWith({ '/pub': relay.publisher(), '/sub': relay.subscriber() });
      try {
        const id = `full-${serveWith.name}`;
        assert.equal((await request(server.url(`/pub?id=${id}`), { method: 'POST', body: Buffer.alloc(2000, 'a') })).status, 202);
        const res = await request(server.url(`/pub?id=${id}`), { method: 'POST', body: Buffer.alloc(3000, 'b') });
        assert.equal(res.status, 507);
        assert.match(res.text, /store full/);
        assert.match(res.text, /nothing was stored/);
        assert.deepEqual(server.errors, [], 'a protocol answer, not an app error');
        assert.equal((await relay.channelInfo(id))!.messages, 1);
        const kept = await request(server.url(`/sub?id=${id}`));
        assert.ok(kept.body.equals(Buffer.alloc(2000, 'a')));
        await relay.deleteChannel(id);
      } finally {
        await server.close();
      }
    }
    await relay.close();
  });
});
