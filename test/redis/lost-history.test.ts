/**
 * Redis losing a channel (FLUSHALL, or a restart with no persistence) never makes the relay give an
 * id twice: the channel's next history starts at the microsecond of its second, after every id of
 * the lost one. A subscriber whose position belongs to the lost history gets every message of the
 * new one, with the loss signal, never silence; nothing acknowledged is skipped.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { after, before, describe, it, test } from 'node:test';
import { createClient, RESP_TYPES } from 'redis';
import { createPushRelay, type PushRelay } from '../../src/index.js';
import { RedisStore } from '../../src/redis.js';
import { channelKeys, keyList } from '../../src/store/redis/keys.js';
import { cursorOf, request } from '../helpers/http-client.js';
import { serveNodeHttp, type TestServer } from '../helpers/servers.js';
import { waitFor, within } from '../helpers/wait.js';
import { parseSse, RawStream } from '../transports/stream-client.js';
import { freePort, kill, redisServerSkipReason, startRedis } from './redis-server.js';

const skip = redisServerSkipReason('lost-history tests');
if (skip) test('RedisStore after Redis lost a channel', { skip }, () => {});
else
  describe('RedisStore after Redis lost a channel', () => {
    let port: number;
    let redis: ChildProcess;
    let store: RedisStore;
    let relay: PushRelay;
    let server: TestServer;
    let counter = 0;
    const channel = () => `lost-${++counter}`;
    const post = (id: string, body: string) => request(server.url(`/pub?id=${id}`), { method: 'POST', body });

    before(async () => {
      port = await freePort();
      redis = await startRedis(port);
      store = new RedisStore({ url: `redis://127.0.0.1:${port}`, prefix: 'lost', commandTimeout: 1000, heartbeatInterval: 200 });
      await store.ready();
      relay = createPushRelay({ store });
      server = await serveNodeHttp({ '/pub': relay.publisher(), '/sub': relay.subscriber() });
    });
    after(async () => {
      await relay.close();
      await store.close();
      await server.close();
      await kill(redis);
    });

    async function flushAll(): Promise<void> {
      const raw = createClient({ url: `redis://127.0.0.1:${port}`, socket: { reconnectStrategy: false } });
      raw.on('error', () => {});
      await raw.connect();
      await raw.flushAll();
      raw.destroy();
    }

    it('FLUSHALL between publishes: no id twice; an open EventSource gets every acknowledged message, in order, with the loss signal', async () => {
      const id = channel();
      const stream = new RawStream(server.port, `/sub?id=${id}`, { Accept: 'text/event-stream' });
      try {
        await waitFor('the stream to wait', async () => (await relay.channelInfo(id))?.subscribers === 1);
        const acknowledged: string[] = [];
        for (const body of ['a', 'b', 'c']) if ([201, 202].includes((await post(id, body)).status)) acknowledged.push(body);
        await flushAll();
        for (const body of ['d', 'e', 'f', 'g']) if ([201, 202].includes((await post(id, body)).status)) acknowledged.push(body);
        assert.deepEqual(acknowledged, ['a', 'b', 'c', 'd', 'e', 'f', 'g'], 'every publish acknowledged');
        const events = await stream.until('7 messages', () => {
          const all = parseSse(stream.body.toString());
          return all.filter((e) => e.event === 'message').length >= 7 && all;
        });
        const messages = events.filter((e) => e.event === 'message');
        assert.deepEqual(messages.map((e) => e.data), acknowledged, 'every acknowledged message, once, in order');
        assert.equal(new Set(messages.map((e) => e.id)).size, 7, 'no id given twice');
        const gap = events.findIndex((e) => e.event === 'push-relay-missed');
        assert.equal(events[gap + 1]?.data, 'd', 'the loss signal comes right before the first message of the new history');
      } finally {
        stream.socket.destroy();
      }
    });

    it('a failover to a replica that had not got the newest message: a subscriber that had not got it is told so, one that had goes on', async () => {
      // The state such a replica is promoted with: the channel's keys as they were before the last publish.
      const id = channel();
      const raw = createClient({ url: `redis://127.0.0.1:${port}`, socket: { reconnectStrategy: false } });
      raw.on('error', () => {});
      await raw.connect();
      const binary = raw.withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer });
      try {
        assert.equal((await post(id, 'm1')).status, 202);
        const first = await request(server.url(`/sub?id=${id}`));
        assert.equal(first.text, 'm1');
        const keys = keyList(channelKeys('lost', `/${id}`));
        const before = await Promise.all(keys.map(async (key) => ({ key, dump: await binary.dump(key), ttl: await raw.pTTL(key) })));
        assert.equal((await post(id, 'm2')).status, 202);
        const second = await request(server.url(`/sub?id=${id}`), { headers: cursorOf(first) });
        assert.equal(second.text, 'm2');
        for (const { key, dump, ttl } of before) {
          if (dump === null) await raw.del(key);
          else await raw.restore(key, ttl > 0 ? ttl : 0, dump, { REPLACE: true });
        }
        // The store sees its connections drop and come back, as when it follows a new master.
        await raw.sendCommand(['CLIENT', 'KILL', 'TYPE', 'normal']);
        await raw.sendCommand(['CLIENT', 'KILL', 'TYPE', 'pubsub']);
        await waitFor('a publish after the switch', async () => (await post(id, 'm3')).status === 202, 10000);
        const behind = await request(server.url(`/sub?id=${id}`), { headers: cursorOf(first) });
        assert.equal(behind.text, 'm3');
        assert.ok(behind.headers['x-push-relay-missed'], 'the loss signal for the subscriber that had not got m2');
        const ahead = await request(server.url(`/sub?id=${id}`), { headers: cursorOf(second) });
        assert.equal(ahead.text, 'm3');
        assert.equal(ahead.headers['x-push-relay-missed'], undefined, 'no loss signal for the one that had');
      } finally {
        raw.destroy();
      }
    });

    it('the set of waiting subscribers evicted while two processes hold one each: the next heartbeats count both in again, and publishes answer 201 again', async () => {
      const id = channel();
      const raw = createClient({ url: `redis://127.0.0.1:${port}`, socket: { reconnectStrategy: false } });
      raw.on('error', () => {});
      await raw.connect();
      // A second process on the same Redis, its heartbeat out of step with the first one's.
      const otherStore = new RedisStore({ url: `redis://127.0.0.1:${port}`, prefix: 'lost', commandTimeout: 1000, heartbeatInterval: 170 });
      const otherRelay = createPushRelay({ store: otherStore });
      const otherServer = await serveNodeHttp({ '/sub': otherRelay.subscriber() });
      try {
        assert.equal((await post(id, 'm1')).status, 202);
        const first = await request(server.url(`/sub?id=${id}`));
        const waiting = [request(server.url(`/sub?id=${id}`), { headers: cursorOf(first) }), request(otherServer.url(`/sub?id=${id}`), { headers: cursorOf(first) })];
        await waitFor('both subscribers counted', async () => (await relay.channelInfo(id))?.subscribers === 2);
        // What an evicting maxmemory-policy does to a key nobody read for a while.
        assert.equal(await raw.del(channelKeys('lost', `/${id}`).subscribers), 1);
        assert.equal((await relay.channelInfo(id))?.subscribers, 0, 'Redis counts nobody now');
        // heartbeatInterval is 200 ms and 170 ms here: each process counts its own in again.
        await waitFor('both counted in again', async () => (await relay.channelInfo(id))?.subscribers === 2, 3000);
        assert.equal((await post(id, 'm2')).status, 201);
        for (const res of await within(Promise.all(waiting), 5000, 'the waiting subscribers')) assert.equal(res.text, 'm2');
      } finally {
        raw.destroy();
        await otherRelay.close();
        await otherStore.close();
        await otherServer.close();
      }
    });

    it('a client that comes back with a cursor of the lost history gets the new history from its start, with the loss signal', async () => {
      const id = channel();
      await post(id, 'old 1');
      const old2 = await post(id, 'old 2');
      assert.equal(old2.status, 202);
      const first = await request(server.url(`/sub?id=${id}`));
      const last = await request(server.url(`/sub?id=${id}`), { headers: cursorOf(first) });
      assert.equal(last.text, 'old 2');
      await flushAll();
      await post(id, 'new 1');
      await post(id, 'new 2');
      const back = await request(server.url(`/sub?id=${id}`), { headers: cursorOf(last) });
      assert.equal(back.status, 200);
      assert.equal(back.text, 'new 1', 'not skipped');
      assert.equal(back.headers['x-push-relay-missed'], '1');
      const next = await request(server.url(`/sub?id=${id}`), { headers: cursorOf(back) });
      assert.equal(next.text, 'new 2');
    });

    it('Redis killed and restarted at once (no persistence): every acknowledged message reaches every subscriber', async () => {
      const id = channel();
      const streams = Array.from({ length: 9 }, () => new RawStream(server.port, `/sub?id=${id}`, { Accept: 'text/event-stream' }));
      try {
        await waitFor('9 streams waiting', async () => (await relay.channelInfo(id))?.subscribers === 9);
        const acknowledged: string[] = [];
        const publish = async (body: string) => {
          if ([201, 202].includes((await post(id, body)).status)) acknowledged.push(body);
        };
        for (const body of ['1', '2', '3']) await publish(body);
        const beforeKill = acknowledged.length;
        await kill(redis);
        redis = await startRedis(port);
        // Publishes right after the restart, while the store reconnects: refused (503) or delivered, never lost.
        for (let i = 4; i <= 12; i++) {
          await publish(String(i));
          await new Promise((r) => setTimeout(r, 5));
        }
        await waitFor('the store to serve again', async () => (await relay.channelInfo(id).catch(() => undefined))?.subscribers === 9, 10_000);
        await publish('last');
        assert.ok(acknowledged.includes('last'));
        for (const [i, s] of streams.entries()) {
          const events = await within(
            s.until(`stream ${i}: every acknowledged message`, () => {
              const all = parseSse(s.body.toString());
              return all.some((e) => e.event === 'message' && e.data === 'last') && all;
            }),
            10_000,
            `stream ${i}`,
          );
          const got = events.filter((e) => e.event === 'message').map((e) => e.data);
          // Acknowledged after the restart: every one, once, in order.
          const after = acknowledged.slice(beforeKill);
          assert.deepEqual(got.slice(got.length - after.length), after, `stream ${i} got every message acknowledged after the restart once, in order`);
          // Acknowledged right before the kill: a wake-up still in Redis' output buffer dies with it, and the
          // message with Redis (docs/scaling.md): then the stream's next message carries the loss signal.
          const before = got.slice(0, got.length - after.length);
          assert.deepEqual(before, acknowledged.slice(0, before.length), `stream ${i}: the messages from before the kill, in order`);
          if (before.length < beforeKill) assert.ok(events.some((e) => e.event === 'push-relay-missed'), `stream ${i} lost ${acknowledged.slice(before.length, beforeKill).join()} without the loss signal`);
        }
      } finally {
        for (const s of streams) s.socket.destroy();
      }
    });
  });
