/**
 * A Redis that hangs (DEBUG SLEEP) or a network that silently drops everything (a proxy that stops
 * forwarding): commandTimeout bounds every command, also one already sent, so a publish gets 503 in
 * about commandTimeout rather than when Redis answers; the store then resets its connection and
 * serves again once Redis does.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import net from 'node:net';
import { after, before, describe, it, test } from 'node:test';
import { Redis as IORedis } from 'ioredis';
import { createClient } from 'redis';
import { createPushRelay, type PushRelay } from '../../src/index.js';
import { RedisStore } from '../../src/redis.js';
import { request } from '../helpers/http-client.js';
import { serveNodeHttp, type TestServer } from '../helpers/servers.js';
import { waitFor } from '../helpers/wait.js';
import { freePort, kill, redisServerSkipReason, startRedis } from './redis-server.js';
import { REDIS_CLIENTS } from './redis-env.js';

/** A TCP proxy to `target` that can stop forwarding (both ways) without closing anything, or lose Redis' replies. */
async function blackholeProxy(target: number) {
  let holding = false;
  let losingReplies = false;
  const held: Array<() => void> = [];
  const sockets = new Set<net.Socket>();
  const pipe = (from: net.Socket, to: net.Socket, replies = false) =>
    from.on('data', (chunk: Buffer) => {
      if (replies && losingReplies) return;
      if (holding) held.push(() => to.write(chunk));
      else to.write(chunk);
    });
  const server = net.createServer((client) => {
    const upstream = net.connect(target, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    pipe(client, upstream);
    pipe(upstream, client, true);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    hold: () => (holding = true),
    /** Redis' replies are lost from now on, until cut(). */
    loseReplies: () => (losingReplies = true),
    /** Closes every connection (those made afterwards are forwarded as usual). */
    cut: () => {
      losingReplies = false;
      for (const s of sockets) s.destroy();
      sockets.clear();
    },
    release: () => {
      holding = false;
      for (const f of held.splice(0)) f();
    },
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((r) => server.close(r));
    },
  };
}

const skip = redisServerSkipReason('Redis hang tests');
if (skip) test('RedisStore with a hung Redis', { skip }, () => {});
else
  for (const client of REDIS_CLIENTS) {
    describe(`RedisStore with a hung Redis (${client})`, () => {
      let port: number;
      let redis: ChildProcess;
      const cleanup: Array<() => Promise<unknown>> = [];

      before(async () => {
        port = await freePort();
        redis = await startRedis(port, ['--enable-debug-command', 'yes']);
      });
      after(async () => {
        for (const f of cleanup.reverse()) await f();
        await kill(redis);
      });

      async function relayOn(redisPort: number, prefix: string): Promise<{ relay: PushRelay; store: RedisStore; server: TestServer }> {
        const url = `redis://127.0.0.1:${redisPort}`;
        // ioredis: a given client, which the store duplicates (and resets by ioredis' disconnect() and connect()).
        const given = client === 'ioredis' ? { client: new IORedis(url, { lazyConnect: true }) } : { url };
        const store = new RedisStore({ ...given, prefix, commandTimeout: '400ms', heartbeatInterval: '200ms' });
        await store.ready();
        const relay = createPushRelay({ store });
        const server = await serveNodeHttp({ '/pub': relay.publisher(), '/sub': relay.subscriber() });
        cleanup.push(() => relay.close(), () => store.close(), () => server.close());
        return { relay, store, server };
      }

      const timed = async <T>(f: () => Promise<T>) => {
        const started = Date.now();
        const value = await f();
        return { value, ms: Date.now() - started };
      };

      it('DEBUG SLEEP 3: a publish gets 503 after commandTimeout, not after 3 s; then the relay serves again', async () => {
        const { relay, server } = await relayOn(port, 'hang-sleep');
        assert.equal((await request(server.url('/pub?id=h'), { method: 'POST', body: 'before' })).status, 202);
        const raw = createClient({ url: `redis://127.0.0.1:${port}` });
        raw.on('error', () => {});
        await raw.connect();
        const sleeping = raw.sendCommand(['DEBUG', 'SLEEP', '3']).catch(() => {});
        await new Promise((r) => setTimeout(r, 50));
        const hung = await timed(() => request(server.url('/pub?id=h'), { method: 'POST', body: 'during' }));
        assert.equal(hung.value.status, 503);
        assert.match(hung.value.text, /no answer within 400 ms/);
        assert.ok(hung.ms < 1500, `503 after ${hung.ms} ms`);
        // Requests behind it are refused at once too, rather than queued behind a hung connection.
        const next = await timed(() => request(server.url('/pub?id=h'), { method: 'POST', body: 'during 2' }));
        assert.equal(next.value.status, 503);
        assert.ok(next.ms < 1500, `503 after ${next.ms} ms`);
        await sleeping;
        raw.destroy();
        await waitFor('the relay to serve again', async () => (await request(server.url('/pub?id=h'), { method: 'POST', body: 'after' })).status === 202, 10_000);
        const info = await relay.channelInfo('h');
        // "before" and "after" for sure; a publish that timed out may have run once Redis woke up, never twice.
        assert.ok(info!.messages >= 2 && info!.messages <= 4, `${info!.messages} messages`);
      });

      it('a network that drops everything for a while: 503 after commandTimeout; back once it forwards again', async () => {
        const proxy = await blackholeProxy(port);
        cleanup.push(() => proxy.close());
        const { relay, server } = await relayOn(proxy.port, 'hang-net');
        assert.equal((await request(server.url('/pub?id=n'), { method: 'POST', body: 'before' })).status, 202);
        proxy.hold();
        const hung = await timed(() => request(server.url('/pub?id=n'), { method: 'POST', body: 'during' }));
        assert.equal(hung.value.status, 503);
        assert.ok(hung.ms < 1500, `503 after ${hung.ms} ms`);
        await new Promise((r) => setTimeout(r, 1000));
        proxy.release();
        await waitFor('the relay to serve again', async () => (await request(server.url('/pub?id=n'), { method: 'POST', body: 'after' })).status === 202, 10_000);
        assert.ok((await relay.channelInfo('n'))!.messages >= 2);
      });

      it('a connection lost with a publish unanswered (Redis ran it): 503, and it is not sent again on the next connection', async () => {
        const proxy = await blackholeProxy(port);
        cleanup.push(() => proxy.close());
        const { relay, server } = await relayOn(proxy.port, 'hang-resend');
        assert.equal((await request(server.url('/pub?id=r'), { method: 'POST', body: 'before' })).status, 202);
        proxy.loseReplies();
        const lost = request(server.url('/pub?id=r'), { method: 'POST', body: 'during' });
        // Redis runs the publish; its reply is lost, then the connection closes well within commandTimeout.
        const direct = createClient({ url: `redis://127.0.0.1:${port}` });
        await direct.connect();
        cleanup.push(() => direct.quit());
        const stored = async () => {
          const [key] = await direct.keys('hang-resend:*r}:messages');
          return key ? direct.xLen(key) : 0;
        };
        await waitFor('the publish stored in Redis', async () => (await stored()) === 2);
        proxy.cut();
        assert.equal((await lost).status, 503);
        await waitFor('the relay to serve again', async () => (await request(server.url('/pub?id=r2'), { method: 'POST', body: 'after' })).status === 202, 10_000);
        assert.equal((await relay.channelInfo('r'))!.messages, 2, 'stored once, not once more by a client that sent it again');
      });

      it('Redis hung, then killed with commands unread (ECONNRESET): the reset falls between reconnection attempts; back once Redis is', async () => {
        const own = await freePort();
        let killed: ChildProcess = await startRedis(own);
        cleanup.push(() => kill(killed));
        const { relay, server } = await relayOn(own, 'hang-killed');
        assert.equal((await request(server.url('/pub?id=k'), { method: 'POST', body: 'before' })).status, 202);
        killed.kill('SIGSTOP');
        // Sent to the hung Redis: answered 503 after commandTimeout, while the client is reconnecting.
        const hung = request(server.url('/pub?id=k'), { method: 'POST', body: 'during' });
        await new Promise((r) => setTimeout(r, 150));
        await kill(killed);
        assert.equal((await hung).status, 503);
        // Redis stays away past the reset, so that a connection attempt fails after it.
        await new Promise((r) => setTimeout(r, 1000));
        killed = await startRedis(own);
        await waitFor('the relay to serve again', async () => (await request(server.url('/pub?id=k'), { method: 'POST', body: 'after' })).status === 202, 10_000);
        assert.equal((await relay.channelInfo('k'))?.messages, 1, 'Redis came back empty');
      });
    });
  }
