/**
 * RedisStore through a Redis Cluster failover and a slot migration, on a cluster the test starts:
 * 3 app processes under traffic (failover-traffic.ts). Every message the relay acknowledged must
 * reach every subscriber once, in order, with no app restart.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it, test } from 'node:test';
import { RedisStore } from '../../src/redis.js';
import { waitFor, within } from '../helpers/wait.js';
import { startApp, type AppProcess } from './app-processes.js';
import { delivered, parkedThroughFailover, traffic } from './failover-traffic.js';
import { channelToMigrate, clusterSkipReason, startCluster, type TestCluster } from './redis-cluster.js';
import { kill } from './redis-server.js';
import { testPrefix } from './redis-env.js';

const skip = clusterSkipReason('the Redis Cluster failover tests');
if (skip) test('RedisStore through a Redis Cluster failover', { skip }, () => {});
else
  describe('RedisStore through a Redis Cluster failover and a slot migration', () => {
    let cluster: TestCluster;
    let apps: AppProcess[] = [];
    let env: Record<string, string>;
    before(async () => {
      cluster = await startCluster(1000);
      env = { REDIS_CLUSTER: cluster.rootNodes.map((n) => n.url).join(','), PREFIX: testPrefix('failover'), HEARTBEAT: '200' };
      apps = await Promise.all([0, 1, 2].map(() => startApp(env)));
    });
    after(async () => {
      await Promise.all(apps.map((a) => a.stop()));
      await cluster?.stop();
    });

    /** `count` channel names (`<name>-<n>`) served by one master that still has a replica, and that master's port. */
    const onMasterWithReplica = async (name: string, count: number) => {
      await cluster.settled(30000);
      type Slots = Array<[number, number, ...Array<[string, number, string]>]>;
      // CLUSTER SLOTS lists a replica only once it has loaded its first sync.
      const range = await waitFor('a master with a replica in CLUSTER SLOTS', async () => (JSON.parse(await cluster.cli(['--json', 'CLUSTER', 'SLOTS'])) as Slots).find((r) => r.length > 3), 20000);
      const [from, to, [, port]] = range as [number, number, [string, number, string]];
      const ids: string[] = [];
      for (let i = 0; ids.length < count; i++) {
        const slot = Number(await cluster.cli(['CLUSTER', 'KEYSLOT', `{/${name}-${i}}`]));
        if (slot >= from && slot <= to) ids.push(`${name}-${i}`);
      }
      return { ids, port };
    };

    for (const client of ['node-redis', 'ioredis'] as const) {
      it(`the channel's master killed mid-run (${client}): its replica takes over, the apps follow by themselves, nothing acknowledged is lost`, async () => {
        const { ids: [channel], port } = await onMasterWithReplica(`failover-${client}`, 1);
        const clientApps = client === 'ioredis' ? await Promise.all([0, 1, 2].map(() => startApp({ ...env, IOREDIS: '1' }))) : apps;
        try {
          const pids = clientApps.map((a) => a.child.pid);
          const slot = Number(await cluster.cli(['CLUSTER', 'KEYSLOT', `{/${channel}}`]));
          const run = traffic(clientApps, channel!, 60, 20);
          await waitFor('20 messages acknowledged', () => run.acknowledged.length >= 20, 20000);
          await kill(cluster.nodes.find((n) => n.port === port)!.child);
          await within(run.published, 40000, 'the publisher, through the failover');
          assert.notEqual((await cluster.masterOf(slot)).port, port, 'a replica took the slot over');
          await delivered(run, 'after the failover');
          assert.deepEqual(
            clientApps.map((a) => a.child.pid),
            pids,
            'no app process restarted',
          );
          for (const app of clientApps) assert.equal(app.child.exitCode, null);
        } finally {
          if (clientApps !== apps) await Promise.all(clientApps.map((a) => a.stop()));
        }
      });
    }

    it('a slot migrated to another master under traffic (redis-cli --cluster reshard): nothing is lost', async () => {
      const { channel, fromPort, reshard } = await channelToMigrate(cluster, 'resharded', 100);
      const slot = Number(await cluster.cli(['CLUSTER', 'KEYSLOT', `{/${channel}}`]));
      const run = traffic(apps, channel, 60, 20);
      await waitFor('20 messages acknowledged', () => run.acknowledged.length >= 20, 20000);
      await reshard();
      assert.notEqual((await cluster.masterOf(slot)).port, fromPort, "the channel's slot moved");
      await within(run.published, 40000, 'the publisher, through the migration');
      await delivered(run, 'after the migration');
    });
    it('subscribers parked before a failover get what is published the moment the new master answers', async () => {
      const { ids, port } = await onMasterWithReplica('parked', 20);
      const store = new RedisStore({ cluster: { rootNodes: cluster.rootNodes }, prefix: testPrefix('cluster-parked'), heartbeatInterval: '200ms' });
      await parkedThroughFailover(store, ids, () => kill(cluster.nodes.find((n) => n.port === port)!.child));
    });
  });
