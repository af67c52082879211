/**
 * One Redis Cluster master that hangs (SIGSTOP: its connections stay open, nothing answers) is one
 * shard's trouble: its channels get 503 after commandTimeout, and the other shards serve on, with
 * node-redis and with ioredis. The cluster's node time-out is long here, so that no failover starts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it, test } from 'node:test';
import { Cluster as IORedisCluster } from 'ioredis';
import { DEFAULT_BUFFER_RULES } from '../../src/index.js';
import { RedisStore } from '../../src/redis.js';
import { IORedisClusterAdapter } from '../../src/store/redis/ioredis-cluster-adapter.js';
import { waitFor } from '../helpers/wait.js';
import { clusterSkipReason, startCluster, type TestCluster } from './redis-cluster.js';
import { testPrefix } from './redis-env.js';

const body = (text: string) => ({ data: Buffer.from(text), contentType: undefined });

const skip = clusterSkipReason('the Redis Cluster hang tests');
if (skip) test('RedisStore with a hung Redis Cluster master', { skip }, () => {});
else
  describe('RedisStore with a hung Redis Cluster master', () => {
    let cluster: TestCluster;
    before(async () => {
      cluster = await startCluster(10_000);
    });
    after(async () => {
      await cluster?.stop();
    });

    /** A channel served by `master`'s shard, or by another one. */
    async function channelOn(prefix: string, name: string, wanted: (port: number) => boolean): Promise<{ channel: string; port: number }> {
      for (let i = 0; ; i++) {
        const channel = `/${name}-${i}`;
        const slot = Number(await cluster.cli(['CLUSTER', 'KEYSLOT', `{${channel}}`]));
        const { port } = await cluster.masterOf(slot);
        if (wanted(port)) return { channel, port };
      }
    }

    for (const client of ['node-redis', 'ioredis'] as const) {
      it(`${client}: the hung master's channels get 503, the other shards' channels are served meanwhile`, async () => {
        await cluster.settled(30_000);
        const prefix = testPrefix(`hang-${client}`);
        const store = new RedisStore({
          ...(client === 'ioredis' ? { client: new IORedisCluster(cluster.rootNodes.map((n) => n.url), { lazyConnect: true }) } : { cluster: { rootNodes: cluster.rootNodes } }),
          prefix,
          commandTimeout: '300ms',
        });
        const rules = DEFAULT_BUFFER_RULES;
        try {
          await store.ready();
          const hung = await channelOn(prefix, 'hung', () => true);
          const other = await channelOn(prefix, 'other', (port) => port !== hung.port);
          await store.publish(hung.channel, body('before'), rules);
          await store.publish(other.channel, body('before'), rules);
          const node = cluster.nodes.find((n) => n.port === hung.port)!;
          node.child.kill('SIGSTOP');
          try {
            await assert.rejects(store.publish(hung.channel, body('during'), rules), (err: { status?: number }) => err.status === 503);
            // The other shard serves on, after the time-out as before it.
            for (let i = 0; i < 5; i++) {
              const { info } = await store.publish(other.channel, body(`other ${i}`), rules);
              assert.ok(info.messages >= 1);
            }
          } finally {
            node.child.kill('SIGCONT');
          }
          await waitFor('the hung shard served again', () => store.publish(hung.channel, body('after'), rules).then(() => true, () => false), 15_000);
        } finally {
          await store.close();
        }
      });
    }

    it('ioredis: a hang whose slot refreshes keep finding the master silent ends with a recovery, not one per refresh', async () => {
      await cluster.settled(30_000);
      const io = new IORedisCluster(cluster.rootNodes.map((n) => n.url), { lazyConnect: true, slotsRefreshInterval: 200 });
      const adapter = new IORedisClusterAdapter(io as never);
      adapter.on('error', () => {});
      await adapter.connect();
      let recoveries = 0;
      adapter.on('ready', () => recoveries++);
      const port = Number(io.nodes('master')[0]!.options.port);
      const node = cluster.nodes.find((n) => n.port === port)!;
      node.child.kill('SIGSTOP');
      try {
        adapter.stalled();
        // About 15 slot refreshes while the master is silent.
        await new Promise((resolve) => setTimeout(resolve, 3000));
      } finally {
        node.child.kill('SIGCONT');
      }
      await waitFor('the recovery', () => recoveries > 0, 10_000);
      // Any other check under way would end within its PING bound (1 s) and a refresh (200 ms).
      await new Promise((resolve) => setTimeout(resolve, 1500));
      adapter.destroy();
      // Slot refreshes that failed on the silent node are reported late (ioredis' 'node error'), each
      // asking for one more recovery: a few (1 to 3 seen), not one per refresh (13 before).
      assert.ok(recoveries <= 4, `${recoveries} recoveries`);
    });
  });
