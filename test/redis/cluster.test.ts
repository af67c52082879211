/**
 * RedisStore on a Redis Cluster the test starts (6 nodes: 3 masters, 3 replicas): the protocol suite
 * (through the `cluster` option, a createCluster() client and an ioredis Cluster given as `client`), the
 * multi-process suite, and what a cluster adds: sharded wake-ups, listings and statistics across
 * the masters.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it, test } from 'node:test';
import { Cluster as IORedisCluster } from 'ioredis';
import { createCluster } from 'redis';
import { createPushRelay } from '../../src/index.js';
import { RedisStore } from '../../src/redis.js';
import { request } from '../helpers/http-client.js';
import { serveNodeHttp } from '../helpers/servers.js';
import { waitFor, within } from '../helpers/wait.js';
import { protocolSuite } from '../protocol-suite.js';
import { multiProcessSuite } from './multi-process-suite.js';
import { channelToMigrate, clusterSkipReason, startCluster, type TestCluster } from './redis-cluster.js';
import { testPrefix } from './redis-env.js';

const skip = clusterSkipReason('the Redis Cluster tests');
if (skip) test('RedisStore on a Redis Cluster', { skip }, () => {});
else {
  let cluster: TestCluster;
  before(async () => {
    cluster = await startCluster();
  });
  after(async () => {
    await cluster?.stop();
  });

  protocolSuite('redis-cluster', async () => {
    const store = new RedisStore({ cluster: { rootNodes: cluster.rootNodes }, prefix: testPrefix('cluster') });
    await store.ready();
    return { store, close: () => store.close() };
  });

  protocolSuite('redis-cluster-client', async () => {
    const given = createCluster({ rootNodes: cluster.rootNodes });
    const store = new RedisStore({ client: given, prefix: testPrefix('cluster-client') });
    await store.ready();
    return { store, close: () => store.close() };
  });

  const multiPrefix = testPrefix('cluster-multi');
  protocolSuite('redis-cluster-ioredis', async () => {
    const given = new IORedisCluster(cluster.rootNodes.map((n) => n.url), { lazyConnect: true });
    const store = new RedisStore({ client: given, prefix: testPrefix('cluster-ioredis') });
    await store.ready();
    return { store, close: () => store.close() };
  });

  multiProcessSuite('RedisStore across processes on a Redis Cluster', () => ({ REDIS_CLUSTER: cluster.rootNodes.map((n) => n.url).join(','), PREFIX: multiPrefix }));

  describe('what a cluster adds', () => {
    for (const client of ['node-redis', 'ioredis'] as const)
    it(`wake-ups go by sharded pub/sub (${client}): the channel is a shard channel of its own master only`, async () => {
      const prefix = testPrefix('sharded');
      const store = new RedisStore(
        client === 'ioredis' ? { client: new IORedisCluster(cluster.rootNodes.map((n) => n.url), { lazyConnect: true }), prefix } : { cluster: { rootNodes: cluster.rootNodes }, prefix },
      );
      const relay = createPushRelay({ store });
      const server = await serveNodeHttp({ '/pub': relay.publisher(), '/sub': relay.subscriber() });
      try {
        await store.ready();
        const parked = request(server.url('/sub?id=sharded'));
        const name = `${prefix}:{/sharded}:events`;
        const slot = Number(await cluster.cli(['CLUSTER', 'KEYSLOT', name]));
        const master = await cluster.masterOf(slot);
        const shardChannels = async (port: number) => (await cluster.cli(['-p', String(port), 'PUBSUB', 'SHARDCHANNELS'])).split('\n').filter(Boolean);
        await waitFor('the shard channel on its master', async () => (await shardChannels(master.port)).includes(name));
        for (const node of cluster.nodes) {
          if (node !== master) assert.ok(!(await shardChannels(node.port)).includes(name), `not on :${node.port}`);
          const plain = (await cluster.cli(['-p', String(node.port), 'PUBSUB', 'CHANNELS'])).split('\n');
          assert.ok(!plain.includes(name), `no plain subscription on :${node.port}`);
        }
        assert.equal((await request(server.url('/pub?id=sharded'), { method: 'POST', body: 'by shard' })).status, 201);
        assert.equal((await within(parked, 5000, 'subscriber')).text, 'by shard');
      } finally {
        await relay.close();
        await store.close();
        await server.close();
      }
    });

    it('a listing and the statistics summary cover the channels of every master', async () => {
      const store = new RedisStore({ cluster: { rootNodes: cluster.rootNodes }, prefix: testPrefix('listing') });
      const relay = createPushRelay({ store });
      try {
        await store.ready();
        const names = Array.from({ length: 60 }, (_, i) => `list-${i}`);
        for (const name of names) await relay.publish(name, `to ${name}`);
        const masters = new Set<number>();
        for (const n of names) masters.add((await cluster.masterOf(Number(await cluster.cli(['CLUSTER', 'KEYSLOT', `{/${n}}`])))).port);
        assert.equal(masters.size, 3, 'the channels are spread over the 3 masters');
        const listed: string[] = [];
        for await (const page of store.listChannels('/list-')) listed.push(...page.map((c) => c.channel));
        assert.deepEqual(listed.sort(), names.map((n) => `/${n}`).sort());
        const summary = await store.summary();
        assert.equal(summary.published, names.length);
        assert.equal(summary.workers.length, 1);
      } finally {
        await relay.close();
        await store.close();
      }
    });

    for (const client of ['node-redis', 'ioredis'] as const)
    it(`option replicas (${client}): WAIT goes to the channel's master, so a publish its stopped replica did not confirm answers 503`, async () => {
      const prefix = testPrefix('cluster-replicas');
      const given = client === 'ioredis' ? { client: new IORedisCluster(cluster.rootNodes.map((n) => n.url), { lazyConnect: true }) } : { cluster: { rootNodes: cluster.rootNodes } };
      const store = new RedisStore({ ...given, prefix, replicas: 1, replicaTimeout: '500ms' });
      const relay = createPushRelay({ store });
      try {
        await store.ready();
        const slot = Number(await cluster.cli(['CLUSTER', 'KEYSLOT', `${prefix}:{/confirmed}:meta`]));
        type Slots = Array<[number, number, ...Array<[string, number, string]>]>;
        const range = (JSON.parse(await cluster.cli(['--json', 'CLUSTER', 'SLOTS'])) as Slots).find(([from, to]) => from <= slot && slot <= to)!;
        const replica = cluster.nodes.find((n) => n.port === (range[3] as [string, number, string])[1])!;
        await waitFor('a first confirmed publish', () => relay.publish('confirmed', 'one').then(() => true, () => false), 15000);
        replica.child.kill('SIGSTOP');
        try {
          await assert.rejects(relay.publish('confirmed', 'two'), (err: { status?: number; message?: string }) => err.status === 503 && /0 of the 1 replicas/.test(err.message ?? ''));
        } finally {
          replica.child.kill('SIGCONT');
        }
        await waitFor('a confirmed publish once the replica runs again', () => relay.publish('confirmed', 'three').then(() => true, () => false), 15000);
      } finally {
        await relay.close();
        await store.close();
      }
    });

    it('maxChannels is refused on a cluster, naming why', () => {
      assert.throws(() => new RedisStore({ cluster: { rootNodes: cluster.rootNodes }, maxChannels: 10 }), /"maxChannels" cannot be used on a Redis Cluster/);
      assert.throws(() => new RedisStore({ cluster: { rootNodes: [] } }), /at least one root node/);
      assert.throws(() => new RedisStore({ cluster: { rootNodes: cluster.rootNodes }, url: 'redis://127.0.0.1:1' }), /"url" and "cluster" exclude each other/);
    });

    it('a connection reset on an ioredis Cluster with one startup node (a master paused past commandTimeout): the store serves every master again', { timeout: 60_000 }, async () => {
      const prefix = testPrefix('cluster-reset');
      // One channel on each master, and the master each is on.
      const channels: Array<{ id: string; port: number }> = [];
      for (let i = 0; channels.length < 3 && i < 1000; i++) {
        const port = (await cluster.masterOf(Number(await cluster.cli(['CLUSTER', 'KEYSLOT', `{/reset-${i}}`])))).port;
        if (!channels.some((c) => c.port === port)) channels.push({ id: `reset-${i}`, port });
      }
      const [paused, seed] = channels as [{ id: string; port: number }, { id: string; port: number }];
      // A single startup node (a master that is not paused): the reset Cluster's pool starts with it alone.
      const given = new IORedisCluster([`redis://127.0.0.1:${seed.port}`], { lazyConnect: true });
      const store = new RedisStore({ client: given, prefix, commandTimeout: '400ms', heartbeatInterval: '200ms' });
      const relay = createPushRelay({ store });
      const everyMaster = () => Promise.all(channels.map((c) => relay.publish(c.id, 'x'))).then(() => true, () => false);
      try {
        await store.ready();
        await waitFor('a publish on every master', everyMaster, 15000);
        // CLIENT PAUSE: the master answers nothing for 1.5 s, and the cluster bus runs on (no failover).
        await cluster.cli(['-p', String(paused.port), 'CLIENT', 'PAUSE', '1500', 'ALL']);
        await assert.rejects(relay.publish(paused.id, 'to the paused master'), (err: { status?: number; message?: string }) => err.status === 503 && /the connection is reset/.test(err.message ?? ''));
        await waitFor('a publish on every master after the reset', everyMaster, 15000);
      } finally {
        await relay.close();
        await store.close();
        given.disconnect();
      }
    });

    // Last: it moves slots between the masters.
    for (const client of ['node-redis', 'ioredis'] as const)
    it(`a slot migrated under a watched channel (${client}): the heartbeat finds its wake-ups gone and subscribes again, on the new master`, { timeout: 120_000 }, async () => {
      const prefix = testPrefix(`moved-${client}`);
      const make = () =>
        new RedisStore({
          ...(client === 'ioredis' ? { client: new IORedisCluster(cluster.rootNodes.map((n) => n.url), { lazyConnect: true }) } : { cluster: { rootNodes: cluster.rootNodes } }),
          prefix,
          heartbeatInterval: '200ms',
        });
      const store = make();
      const publisher = make();
      await Promise.all([store.ready(), publisher.ready()]);
      try {
        const migrating = await channelToMigrate(cluster, 'moved', 50);
        const channel = `/${migrating.channel}`;
        const wakeUps: string[] = [];
        const unwatch = await store.watch(channel, (_name, event) => wakeUps.push(event.type));
        const rules = { storeMessages: true, minMessages: 0, maxMessages: 10, messageTimeout: 0, channelTimeout: 0 };
        const heard = () => wakeUps.filter((t) => t === 'message').length;
        const published = await publisher.publish(channel, { data: Buffer.from('before'), contentType: undefined }, rules);
        await waitFor('the wake-up before the migration', () => heard() === 1);
        // A subscriber parked here, as a relay's long-poll: the heartbeat renews its channel.
        await store.next(channel, undefined);
        await store.nextOrJoin(channel, published.message.id, { subscriberId: 'parked', concurrency: 'broadcast', maxSubscribers: 0, create: true, channelTimeout: 0 });
        await migrating.reshard();
        const slot = Number(await cluster.cli(['CLUSTER', 'KEYSLOT', `{${channel}}`]));
        const master = await cluster.masterOf(slot);
        assert.notEqual(master.port, migrating.fromPort, "the channel's slot moved");
        // Publish until a wake-up comes again: the first ones after the move are found by the heartbeat.
        await waitFor(
          'wake-ups heard again after the migration',
          async () => {
            const before = heard();
            await publisher.publish(channel, { data: Buffer.from('after'), contentType: undefined }, rules);
            await new Promise((r) => setTimeout(r, 300));
            return heard() > before;
          },
          20000,
        );
        const name = `${prefix}:{${channel}}:events`;
        const shardChannels = (await cluster.cli(['-p', String(master.port), 'PUBSUB', 'SHARDCHANNELS'])).split('\n');
        assert.ok(shardChannels.includes(name), `subscribed on the new master :${master.port}`);
        await store.leave(channel, ['parked']);
        unwatch();
      } finally {
        await Promise.all([store.close(), publisher.close()]);
      }
    });
  });
}
