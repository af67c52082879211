/**
 * RedisStore through a Redis Cluster failover and a slot migration, on a cluster the test starts:
 * 3 app processes under traffic (failover-traffic.ts). Every message the relay acknowledged must
 * reach every subscriber once, in order, with no app restart.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it, test } from 'node:test';
import { createPushRelay } from '../../src/index.js';
import { RedisStore } from '../../src/redis.js';
import { request } from '../helpers/http-client.js';
import { serveNodeHttp } from '../helpers/servers.js';
import { waitFor, within } from '../helpers/wait.js';
import { startApp, type AppProcess } from './app-processes.js';
import { delivered, traffic } from './failover-traffic.js';
import { clusterSkipReason, startCluster, type TestCluster } from './redis-cluster.js';
import { kill } from './redis-server.js';
import { testPrefix } from './redis-env.js';

const skip = clusterSkipReason('the Redis Cluster failover tests');
if (skip) test('RedisStore through a Redis Cluster failover', { skip }, () => {});
else
  describe('RedisStore through a Redis Cluster failover and a slot migration', () => {
    let cluster: TestCluster;
    let apps: AppProcess[] = [];
    before(async () => {
      cluster = await startCluster(1000);
      const env = { REDIS_CLUSTER: cluster.rootNodes.map((n) => n.url).join(','), PREFIX: testPrefix('failover'), HEARTBEAT: '200' };
      apps = await Promise.all([0, 1, 2].map(() => startApp(env)));
    });
    after(async () => {
      await Promise.all(apps.map((a) => a.stop()));
      await cluster?.stop();
    });

    it("the channel's master killed mid-run: its replica takes over, the apps follow by themselves, nothing acknowledged is lost", async () => {
      const channel = 'failover';
      const pids = apps.map((a) => a.child.pid);
      const slot = Number(await cluster.cli(['CLUSTER', 'KEYSLOT', `{/${channel}}`]));
      const master = await cluster.masterOf(slot);
      const run = traffic(apps, channel, 60, 20);
      await waitFor('20 messages acknowledged', () => run.acknowledged.length >= 20, 20000);
      await kill(master.child);
      await within(run.published, 40000, 'the publisher, through the failover');
      const promoted = await cluster.masterOf(slot);
      assert.notEqual(promoted.port, master.port, 'a replica took the slot over');
      await delivered(run, 'after the failover');
      assert.deepEqual(
        apps.map((a) => a.child.pid),
        pids,
        'no app process restarted',
      );
      for (const app of apps) assert.equal(app.child.exitCode, null);
    });

    it('a slot migrated to another master under traffic (redis-cli --cluster reshard): nothing is lost', async () => {
      await cluster.settled(30000);
      type Slots = Array<[number, number, [string, number, string]]>;
      const ranges = JSON.parse(await cluster.cli(['--json', 'CLUSTER', 'SLOTS'])) as Slots;
      // reshard moves the first slots of the source: a channel in the first 100 of a master's.
      const [first, , [, fromPort, fromId]] = ranges.reduce((a, b) => (a[0] < b[0] ? a : b));
      const toId = ranges.find(([, , [, port]]) => port !== fromPort)![2][2];
      let channel = '';
      for (let i = 0; !channel; i++) {
        const slot = Number(await cluster.cli(['CLUSTER', 'KEYSLOT', `{/resharded-${i}}`]));
        if (slot >= first && slot < first + 100) channel = `resharded-${i}`;
      }
      const slot = Number(await cluster.cli(['CLUSTER', 'KEYSLOT', `{/${channel}}`]));
      const run = traffic(apps, channel, 60, 20);
      await waitFor('20 messages acknowledged', () => run.acknowledged.length >= 20, 20000);
      await cluster.cli(['--cluster', 'reshard', `127.0.0.1:${fromPort}`, '--cluster-from', fromId, '--cluster-to', toId, '--cluster-slots', '100', '--cluster-yes'], 60000);
      assert.notEqual((await cluster.masterOf(slot)).port, fromPort, "the channel's slot moved");
      await within(run.published, 40000, 'the publisher, through the migration');
      await delivered(run, 'after the migration');
    });
    it('subscribers parked before a failover get what is published the moment the new master answers', async () => {
      await cluster.settled(30000);
      type Slots = Array<[number, number, ...Array<[string, number, string]>]>;
      // A master that still has a replica, and 20 channels it serves.
      const [from, to, [, port]] = (JSON.parse(await cluster.cli(['--json', 'CLUSTER', 'SLOTS'])) as Slots).find((range) => range.length > 3)! as [number, number, [string, number, string]];
      const ids: string[] = [];
      for (let i = 0; ids.length < 20; i++) {
        const slot = Number(await cluster.cli(['CLUSTER', 'KEYSLOT', `{/parked-${i}}`]));
        if (slot >= from && slot <= to) ids.push(`parked-${i}`);
      }
      const store = new RedisStore({ cluster: { rootNodes: cluster.rootNodes }, prefix: testPrefix('cluster-parked'), heartbeatInterval: '200ms' });
      const relay = createPushRelay({ store });
      const server = await serveNodeHttp({ '/sub': relay.subscriber({ subscriberTimeout: '60s' }) });
      try {
        await store.ready();
        const parked = ids.map((id) => request(server.url(`/sub?id=${id}`)));
        await waitFor('20 parked', async () => (await Promise.all(ids.map((id) => relay.channelInfo(id)))).every((c) => c?.subscribers === 1), 10000);
        await kill(cluster.nodes.find((n) => n.port === port)!.child);
        for (const id of ids) {
          await waitFor(`a publish to ${id} after the failover`, () => relay.publish(id, `after ${id}`).then(() => true, () => false), 30000);
        }
        const answers = await within(Promise.all(parked), 10000, 'the parked subscribers');
        assert.deepEqual(answers.map((a) => a.text), ids.map((id) => `after ${id}`));
      } finally {
        await relay.close();
        await store.close();
        await server.close();
      }
    });
  });
