/**
 * Clients that hold a connection without doing anything: a publisher that sends its body a byte at a
 * time (slowloris) gets 408 after bodyTimeout and its connection closes, with nothing stored; a
 * subscriber's connection gets TCP keep-alive, so a client that vanished is noticed by the kernel
 * (read here from /proc/net/tcp: the keep-alive timer of the server's side of the connection).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { describe, it } from 'node:test';
import { createPushRelay } from '../../src/index.js';
import { request } from '../helpers/http-client.js';
import { serveNodeHttp } from '../helpers/servers.js';
import { waitFor, within } from '../helpers/wait.js';

const connect = (port: number) =>
  new Promise<net.Socket>((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => resolve(socket));
    socket.once('error', reject);
  });

describe('a publisher that sends its body too slowly', () => {
  it('gets 408 after bodyTimeout, its connection closes, and nothing is stored', async () => {
    const relay = createPushRelay();
    const server = await serveNodeHttp({ '/pub': relay.publisher({ bodyTimeout: 300 }), '/sub': relay.subscriber() });
    try {
      const socket = await connect(server.port);
      let answer = '';
      socket.on('data', (c: Buffer) => (answer += c.toString()));
      const closed = new Promise<void>((r) => socket.once('close', () => r()));
      const started = Date.now();
      socket.write('POST /pub?id=slow HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nab');
      // Keep trickling: the limit is on the whole body, not on the gaps between bytes.
      const drip = setInterval(() => socket.writable && socket.write('c'), 50);
      await within(closed, 3000, 'the server closes the connection');
      clearInterval(drip);
      const elapsed = Date.now() - started;
      assert.match(answer, /^HTTP\/1\.1 408 /);
      assert.match(answer, /connection: close/i);
      assert.match(answer, /bodyTimeout \(300 ms\); nothing was stored/);
      assert.ok(elapsed >= 250 && elapsed < 2000, `closed after ${elapsed} ms`);
      assert.equal(await relay.channelInfo('slow'), undefined);
      // A publisher that sends in time is not affected.
      assert.equal((await request(server.url('/pub?id=fast'), { method: 'POST', body: 'hello' })).status, 202);
    } finally {
      await relay.close();
      await server.close();
    }
  });

  it('bodyTimeout: 0 leaves the body read unbounded (the server\'s own requestTimeout still applies)', async () => {
    const relay = createPushRelay();
    const server = await serveNodeHttp({ '/pub': relay.publisher({ bodyTimeout: 0 }) });
    try {
      const socket = await connect(server.port);
      let answer = '';
      socket.on('data', (c: Buffer) => (answer += c.toString()));
      socket.write('POST /pub?id=slow HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\na');
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(answer, '', 'no answer while the body is still coming');
      socket.write('bc');
      await waitFor('the answer', () => answer.startsWith('HTTP/1.1 202'));
      socket.destroy();
    } finally {
      await relay.close();
      await server.close();
    }
  });
});

/**
 * The timer of the server's side of the connection from `clientPort`, from /proc/net/tcp(6):
 * `tr` 2 is the keep-alive timer, `when` its seconds left.
 */
function serverSideTimer(serverPort: number, clientPort: number): { tr: number; when: number } | undefined {
  const hex = (n: number) => n.toString(16).toUpperCase().padStart(4, '0');
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileSync(file, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 6) continue;
      if (f[1]!.endsWith(`:${hex(serverPort)}`) && f[2]!.endsWith(`:${hex(clientPort)}`)) {
        const [tr, when] = f[5]!.split(':');
        return { tr: Number(tr), when: parseInt(when!, 16) / 100 };
      }
    }
  }
  return undefined;
}

const procNet = process.platform === 'linux' ? undefined : 'reads the kernel timers from /proc/net/tcp (Linux only)';

describe('TCP keep-alive on subscriber connections', { skip: procNet }, () => {
  const parkAndRead = async (options: Parameters<ReturnType<typeof createPushRelay>['subscriber']>[0]) => {
    const relay = createPushRelay();
    const server = await serveNodeHttp({ '/sub': relay.subscriber(options) });
    const socket = await connect(server.port);
    try {
      socket.write('GET /sub?id=idle HTTP/1.1\r\nHost: x\r\n\r\n');
      await waitFor('the long-poll is parked', async () => (await relay.channelInfo('idle'))?.subscribers === 1);
      return serverSideTimer(server.port, socket.localPort!);
    } finally {
      socket.destroy();
      await relay.close();
      await server.close();
    }
  };

  it('a parked long-poll gets the keep-alive timer, set to tcpKeepAlive (default 30 s)', async () => {
    const timer = await parkAndRead({});
    assert.ok(timer, 'the connection is in /proc/net/tcp');
    assert.equal(timer.tr, 2, 'keep-alive timer running');
    assert.ok(timer.when > 25 && timer.when <= 30, `${timer.when} s to the first probe`);
    const custom = await parkAndRead({ tcpKeepAlive: '5s' });
    assert.equal(custom?.tr, 2);
    assert.ok(custom.when > 3 && custom.when <= 5, `${custom.when} s to the first probe`);
  });

  it('tcpKeepAlive: 0 leaves the socket as the server set it (no timer)', async () => {
    const timer = await parkAndRead({ tcpKeepAlive: 0 });
    assert.equal(timer?.tr, 0);
  });
});
