/**
 * Redis going away and coming back, on a redis-server of our own (never the shared one): publishers
 * get 503 with a clear body (not a hang, not a crash), parked subscribers stay parked, delivery resumes
 * without restarting the app; a wake-up lost while pub/sub was cut is still delivered; OOM is 507.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { after, before, describe, it, test } from 'node:test';
import { Redis as IORedis } from 'ioredis';
import { createClient } from 'redis';
import { createPushRelay, type PushRelay } from '../../src/index.js';
import { RedisStore } from '../../src/redis.js';
import { channelKeys, keyList } from '../../src/store/redis/keys.js';
import { SCRIPTS } from '../../src/store/redis/scripts.js';
import { request, type HttpResponse } from '../helpers/http-client.js';
import { serveNodeHttp, type TestServer } from '../helpers/servers.js';
import { waitFor, within } from '../helpers/wait.js';
import { REDIS_CLIENTS } from './redis-env.js';
import { freePort, kill, redisServerSkipReason, startRedis } from './redis-server.js';

const skip = redisServerSkipReason('Redis fault tests');

const settledWithin = async <T>(p: Promise<T>, ms: number): Promise<{ value: T } | undefined> =>
  Promise.race([p.then((value) => ({ value })), new Promise<undefined>((r) => setTimeout(() => r(undefined), ms))]);

if (skip) test('RedisStore faults', { skip }, () => {});
else
  for (const client of REDIS_CLIENTS)
  describe(`RedisStore faults (${client})`, () => {
    let port: number;
    let redis: ChildProcess;
    let store: RedisStore;
    let relay: PushRelay;
    let server: TestServer;
    let raw: ReturnType<typeof createClient>;
    let counter = 0;
    const channel = () => `fault-${++counter}`;
    const post = (id: string, body: string) => request(server.url(`/pub?id=${id}`), { method: 'POST', body });
    const sub = (id: string) => request(server.url(`/sub?id=${id}`));
    const waiting = (id: string, n: number) => waitFor(`${n} waiting on ${id}`, async () => (await relay.channelInfo(id))?.subscribers === n);

    before(async () => {
      port = await freePort();
      redis = await startRedis(port);
      const url = `redis://127.0.0.1:${port}`;
      const given = client === 'ioredis' ? { client: new IORedis(url, { lazyConnect: true }) } : { url };
      store = new RedisStore({ ...given, prefix: 'faults', commandTimeout: 1000, heartbeatInterval: 200 });
      await store.ready();
      relay = createPushRelay({ store });
      server = await serveNodeHttp({ '/pub': relay.publisher(), '/sub': relay.subscriber({ subscriberTimeout: '30s' }) });
      raw = createClient({ url: `redis://127.0.0.1:${port}` });
      raw.on('error', () => {});
      await raw.connect();
    });
    after(async () => {
      await relay.close();
      await store.close();
      await server.close();
      if (raw.isOpen) raw.destroy();
      await kill(redis);
    });

    it('Redis killed: 503 with a clear body; parked subscribers stay parked; after a restart, delivery resumes in the same app', async () => {
      const id = channel();
      assert.equal((await post(id, 'before')).status, 202);
      const parked = sub(id);
      const first = await within(parked, 5000, 'first read');
      assert.equal(first.text, 'before');
      const waiter = request(server.url(`/sub?id=${id}`), {
        headers: { 'If-Modified-Since': first.headers['last-modified']!, 'If-None-Match': first.headers.etag! },
      });
      await waiting(id, 1);

      raw.destroy();
      await kill(redis);
      try {
        await outageAndBack(id, waiter);
      } finally {
        // Bounded: a connect to a Redis that is not there never settles.
        raw = createClient({ url: `redis://127.0.0.1:${port}`, socket: { reconnectStrategy: false, connectTimeout: 2000 } });
        raw.on('error', () => {});
        await raw.connect();
      }
    });

    async function outageAndBack(id: string, waiter: Promise<HttpResponse>): Promise<void> {
      const down: HttpResponse = await within(
        waitFor('a 503', async () => {
          const res = await post(id, 'while down');
          return res.status === 503 && res;
        }),
        5000,
        'POST while Redis is down',
      );
      assert.match(down.text, /^push-relay: Redis is unavailable: /);
      assert.equal(down.headers['retry-after'], '1');
      const info = await within(request(server.url(`/pub?id=${id}`)), 3000, 'GET info while Redis is down');
      assert.equal(info.status, 503);
      assert.equal(await settledWithin(waiter, 100), undefined, 'the parked subscriber is still parked');

      redis = await startRedis(port);
      // Back, empty: the store reconnects by itself, counts its parked subscriber in again, re-reads.
      // ioredis backs off between attempts (up to 2 s each): on a loaded machine a reconnect took over 10 s once.
      await waitFor('the store to serve again', async () => (await relay.channelInfo(id).catch(() => undefined))?.subscribers === 1, 20000);
      const published = await post(id, 'after');
      assert.equal(published.status, 201, 'the parked subscriber is counted again');
      const got = await within(waiter, 5000, 'parked subscriber after the restart');
      assert.equal(got.status, 200);
      assert.equal(got.text, 'after');
    }

    it('a wake-up lost while pub/sub was cut is delivered once it reconnects (re-read from the cursor)', async () => {
      const id = channel();
      const waiter = sub(id);
      await waiting(id, 1);
      const keys = channelKeys('faults', `/${id}`); // the store key of a channel without a group
      // Cut the pub/sub connection and publish in one transaction: that wake-up reaches nobody.
      const [, numsub, published] = (await raw
        .multi()
        .addCommand(['CLIENT', 'KILL', 'TYPE', 'pubsub'])
        .addCommand(['PUBSUB', 'NUMSUB', keys.events])
        .addCommand(['EVAL', SCRIPTS.publish.source, String(keyList(keys).length), ...keyList(keys), '0', '0', keys.events, 'lost wake-up', '0', '', '0', '', '1', '1', '10', '0', '0', '', '0', '0', ''])
        .exec()) as [unknown, [string, number], unknown[]];
      assert.equal(Number(numsub[1]), 0, 'nobody heard the wake-up');
      assert.ok(Array.isArray(published));
      const got = await within(waiter, 5000, 'subscriber after the pub/sub reconnect');
      assert.equal(got.status, 200);
      assert.equal(got.text, 'lost wake-up');
    });

    it('after Redis lost a channel, ids continue after the newest one a process saw: a parked cursor never skips a reused id', async () => {
      const id = channel();
      const keys = channelKeys('faults', `/${id}`);
      assert.equal((await post(id, 'one')).status, 202);
      // Redis' clock as it will be an hour later, for this channel: a reused id would sort before the cursor.
      const ahead = Math.floor(Date.now() / 1000) + 3600;
      await raw.hSet(keys.meta, 'last', `${ahead}-0`);
      assert.equal((await post(id, 'two')).status, 202);
      const one = await sub(id);
      const two = await request(server.url(`/sub?id=${id}`), {
        headers: { 'If-Modified-Since': one.headers['last-modified']!, 'If-None-Match': one.headers.etag! },
      });
      assert.equal(two.text, 'two');
      const waiter = request(server.url(`/sub?id=${id}`), {
        headers: { 'If-Modified-Since': two.headers['last-modified']!, 'If-None-Match': two.headers.etag! },
      });
      await waiting(id, 1);
      // Redis loses the channel (as a restart without persistence would) and the connections drop.
      await raw.multi().del(keyList(keys)).addCommand(['CLIENT', 'KILL', 'TYPE', 'pubsub']).exec();
      await waitFor('the channel recreated by the recovery', async () => (await relay.channelInfo(id))?.subscribers === 1);
      const three = await post(id, 'three');
      assert.equal(three.status, 201);
      const got = await within(waiter, 5000, 'parked subscriber');
      assert.equal(got.text, 'three');
      assert.equal(got.headers['last-modified'], two.headers['last-modified'], 'the same second as the cursor...');
      assert.ok(Number(got.headers.etag) > Number(two.headers.etag), '...with a later tag');
    });

    it('Redis not there at start-up: 503 (no hang), then served once it starts; close() never hangs', async () => {
      const laterPort = await freePort();
      const early = new RedisStore({ url: `redis://127.0.0.1:${laterPort}`, prefix: 'faults-late', commandTimeout: 300 });
      const lateRelay = createPushRelay({ store: early });
      const lateServer = await serveNodeHttp({ '/pub': lateRelay.publisher() });
      let later: ChildProcess | undefined;
      try {
        const res = await within(request(lateServer.url('/pub?id=x'), { method: 'POST', body: 'early' }), 3000, 'POST before Redis exists');
        assert.equal(res.status, 503);
        // Refused at once once the first attempt failed; before that, after commandTimeout at most.
        assert.match(res.text, /^push-relay: Redis is unavailable: (connect ECONNREFUSED|not connected within 300ms)/);
        later = await startRedis(laterPort);
        await within(early.ready(), 5000, 'connecting once Redis is there');
        assert.equal((await request(lateServer.url('/pub?id=x'), { method: 'POST', body: 'late' })).status, 202);
      } finally {
        await lateRelay.close();
        await lateServer.close();
        if (later) await kill(later);
        await within(early.close(), 2000, 'close() with Redis gone');
      }
      const never = new RedisStore({ url: `redis://127.0.0.1:${await freePort()}`, prefix: 'faults-never', commandTimeout: 300 });
      await within(never.close(), 2000, 'close() before ever connecting');
    });

    it('Redis out of memory: 507 for publishers, stored messages still served, and fine again once there is room', async () => {
      const id = channel();
      assert.equal((await post(id, 'stored')).status, 202);
      await raw.configSet('maxmemory', '1');
      try {
        const full = await post(id, 'no room');
        assert.equal(full.status, 507);
        assert.match(full.text, /^push-relay: Redis is out of memory/);
        const read = await sub(id);
        assert.equal(read.status, 200);
        assert.equal(read.text, 'stored');
      } finally {
        await raw.configSet('maxmemory', '0');
      }
      assert.equal((await post(id, 'room again')).status, 202);
    });
  });
