/**
 * RedisStore through Redis Sentinel (a master, a replica, 3 sentinels the test starts): 3 app
 * processes under traffic (failover-traffic.ts), the master killed mid-run. The apps follow the new
 * master by themselves; every message the relay acknowledged reaches every subscriber once, in order.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it, test } from 'node:test';
import { Redis as IORedis } from 'ioredis';
import { createClient } from 'redis';
import { createPushRelay } from '../../src/index.js';
import { RedisStore } from '../../src/redis.js';
import { waitFor, within } from '../helpers/wait.js';
import { startApp } from './app-processes.js';
import { delivered, parkedThroughFailover, traffic } from './failover-traffic.js';
import { kill } from './redis-server.js';
import { sentinelSkipReason, startSentinels, type TestSentinels } from './redis-sentinel.js';
import { testPrefix } from './redis-env.js';

const skip = sentinelSkipReason('the Redis Sentinel tests');
if (skip) test('RedisStore through Redis Sentinel', { skip }, () => {});
else
  describe('RedisStore through Redis Sentinel', () => {
    let sentinels: TestSentinels;
    before(async () => {
      sentinels = await startSentinels(1000);
    });
    after(async () => {
      await sentinels?.stop();
    });

    it('the store finds the master through the sentinels and serves', async () => {
      const store = new RedisStore({ sentinel: sentinels.options, prefix: testPrefix('sentinel-direct') });
      const relay = createPushRelay({ store });
      try {
        await store.ready();
        const info = await relay.publish('direct', 'hello');
        assert.equal(info.messages, 1);
      } finally {
        await relay.close();
        await store.close();
      }
    });

    for (const client of ['node-redis', 'ioredis'] as const) {
      it(`the master killed mid-run (${client}): the sentinels promote the replica, the apps follow by themselves, nothing acknowledged is lost`, async () => {
        await sentinels.heal();
        const env = { REDIS_SENTINEL: JSON.stringify(sentinels.options), PREFIX: testPrefix('sentinel'), HEARTBEAT: '200', ...(client === 'ioredis' ? { IOREDIS: '1' } : {}) };
        const apps = await Promise.all([0, 1, 2].map(() => startApp(env)));
        try {
          const pids = apps.map((a) => a.child.pid);
          const run = traffic(apps, `sentinel-failover-${client}`, 60, 20);
          await waitFor('20 messages acknowledged', () => run.acknowledged.length >= 20, 20000);
          const masterPort = await sentinels.masterPort();
          const master = sentinels.nodes.find((n) => n.port === masterPort)!;
          await kill(master.child);
          await within(run.published, 45000, 'the publisher, through the failover');
          assert.notEqual(await sentinels.masterPort(), masterPort, 'the sentinels promoted the replica');
          await delivered(run, 'after the failover');
          assert.deepEqual(
            apps.map((a) => a.child.pid),
            pids,
            'no app process restarted',
          );
        } finally {
          await Promise.all(apps.map((a) => a.stop()));
        }
      });
    }

    it('subscribers parked before a failover get what is published the moment the new master answers', async () => {
      // After the test before it: the old master, started again, is the new master's replica.
      await sentinels.heal();
      const store = new RedisStore({ sentinel: sentinels.options, prefix: testPrefix('sentinel-parked'), heartbeatInterval: '200ms' });
      const ids = Array.from({ length: 20 }, (_, i) => `parked-${i}`);
      await parkedThroughFailover(store, ids, async () => {
        const masterPort = await sentinels.masterPort();
        await kill(sentinels.nodes.find((n) => n.port === masterPort)!.child);
      });
    });
    it('option replicas: a publish no replica confirmed answers 503, naming the option; confirmed ones are answered as usual', async () => {
      await sentinels.heal();
      const store = new RedisStore({ sentinel: sentinels.options, prefix: testPrefix('sentinel-replicas'), replicas: 1, replicaTimeout: '1s' });
      const relay = createPushRelay({ store });
      try {
        await store.ready();
        // A replica that has just synced may take a moment to confirm its first write.
        await waitFor('a first confirmed publish', () => relay.publish('confirmed', 'one').then(() => true, () => false), 15000);
        const masterPort = await sentinels.masterPort();
        const replica = sentinels.nodes.find((n) => n.port !== masterPort)!;
        replica.child.kill('SIGSTOP');
        try {
          await assert.rejects(relay.publish('confirmed', 'two'), (err: { status?: number; message?: string }) => err.status === 503 && /0 of the 1 replicas .*option "replicas"/.test(err.message ?? ''));
        } finally {
          replica.child.kill('SIGCONT');
        }
        const info = await waitFor('a confirmed publish once the replica runs again', () => relay.publish('confirmed', 'three').catch((): undefined => undefined), 15000);
        assert.ok(info.messages >= 3, 'the unconfirmed one is still stored on the master');
      } finally {
        await relay.close();
        await store.close();
      }
    });
    for (const client of ['node-redis', 'ioredis'] as const) {
      it(`a master that hangs past commandTimeout (${client}): 503, the store opens a new connection through the sentinels and serves again`, async () => {
        await sentinels.heal();
        const given =
          client === 'ioredis'
            ? { client: new IORedis({ sentinels: sentinels.options.sentinelRootNodes, name: sentinels.options.name, lazyConnect: true }) }
            : { sentinel: sentinels.options };
        const store = new RedisStore({ ...given, prefix: testPrefix('sentinel-hang'), commandTimeout: '300ms' });
        const relay = createPushRelay({ store });
        const raw = createClient({ url: `redis://127.0.0.1:${await sentinels.masterPort()}` });
        raw.on('error', () => {});
        try {
          await store.ready();
          await raw.connect();
          await relay.publish('hang', 'before');
          // Shorter than the sentinels' down-after-milliseconds: no failover, a hang.
          await raw.sendCommand(['CLIENT', 'PAUSE', '700', 'ALL']);
          const during = await relay.publish('hang', 'during').catch((err: unknown) => err as { status?: number; message?: string });
          assert.ok('status' in during && during.status === 503 && /no answer within 300 ms/.test(during.message ?? ''), `a 503 for the hang, got ${String((during as Error).message ?? JSON.stringify(during))}`);
          await waitFor('a publish after the hang', () => relay.publish('hang', 'after').then(() => true, () => false), 10000);
        } finally {
          raw.destroy();
          await relay.close();
          await store.close();
        }
      });
    }
  });
