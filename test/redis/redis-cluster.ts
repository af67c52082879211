/**
 * A Redis Cluster of the test's own: 6 redis-server processes (3 masters, 3 replicas) on free ports,
 * joined by `redis-cli --cluster create`. Without redis-server or redis-cli the cluster tests are
 * skipped with a message, except under CI, where that is an error.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from 'redis';
import { waitFor } from '../helpers/wait.js';
import { freePort, kill, redisServerSkipReason } from './redis-server.js';

const hasRedisCli = spawnSync('redis-cli', ['--version']).status === 0;

/** Why the cluster tests cannot run here, or undefined. Throws under CI. */
export function clusterSkipReason(what: string): string | undefined {
  const noServer = redisServerSkipReason(what);
  if (noServer) return noServer;
  if (hasRedisCli) return undefined;
  const reason = `redis-cli is not installed (apt-get install redis-tools): ${what} skipped`;
  if (process.env.CI) throw new Error(`CI is set and ${reason}`);
  return reason;
}

export interface ClusterNode {
  port: number;
  child: ChildProcess;
}

export interface TestCluster {
  nodes: ClusterNode[];
  /** `{ url }` of every node, for RedisStore's `cluster.rootNodes` or createCluster(). */
  rootNodes: Array<{ url: string }>;
  /** The master serving `slot` now (asks a live node). */
  masterOf(slot: number): Promise<ClusterNode>;
  /** Runs redis-cli against a live node of the cluster; returns stdout. */
  cli(args: string[], timeout?: number): Promise<string>;
  /** Waits until every live node reports cluster_state:ok and agrees on the slots. */
  settled(timeout?: number): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts the cluster. `nodeTimeout` (ms) is cluster-node-timeout: how long a master may be silent
 * before its replica takes over (small, so failover tests end quickly).
 */
export async function startCluster(nodeTimeout = 1000): Promise<TestCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'push-relay-cluster-'));
  const ports: number[] = [];
  while (ports.length < 6) {
    const port = await freePort();
    // The cluster bus listens on port + 10000: both must be free, and distinct from the others'.
    if (port < 55535 && !ports.includes(port) && !ports.some((p) => Math.abs(p - port) === 10000)) ports.push(port);
  }
  const nodes: ClusterNode[] = [];
  const startNode = async (port: number): Promise<ClusterNode> => {
    const child = spawn(
      'redis-server',
      [
        '--port', String(port),
        '--bind', '127.0.0.1',
        '--cluster-enabled', 'yes',
        '--cluster-config-file', join(dir, `nodes-${port}.conf`),
        '--cluster-node-timeout', String(nodeTimeout),
        '--save', '',
        '--appendonly', 'no',
        '--dir', dir,
      ],
      { stdio: 'ignore' },
    );
    await waitFor(`cluster node on ${port}`, () => ping(port), 10000);
    return { port, child };
  };
  try {
    nodes.push(...(await Promise.all(ports.map(startNode))));
    await run('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '1', '--cluster-yes'], 30000);
  } catch (err) {
    await Promise.all(nodes.map((n) => kill(n.child)));
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const live = () => nodes.filter((n) => n.child.exitCode === null && n.child.signalCode === null);
  const cluster: TestCluster = {
    nodes,
    rootNodes: ports.map((p) => ({ url: `redis://127.0.0.1:${p}` })),
    cli: (args, timeout = 30000) => run('redis-cli', ['-p', String(live()[0]!.port), ...args], timeout),
    async masterOf(slot) {
      const slots = JSON.parse(await run('redis-cli', ['-p', String(live()[0]!.port), '--json', 'CLUSTER', 'SLOTS'], 5000)) as Array<[number, number, [string, number, string]]>;
      const range = slots.find(([from, to]) => from <= slot && slot <= to);
      if (!range) throw new Error(`no master serves slot ${slot}`);
      return nodes.find((n) => n.port === range[2][1])!;
    },
    async settled(timeout = 20000) {
      await waitFor(
        'the cluster to settle (cluster_state:ok on every live node, every slot served)',
        async () => {
          for (const node of live()) {
            const info = await run('redis-cli', ['-p', String(node.port), 'CLUSTER', 'INFO'], 5000);
            if (!/cluster_state:ok/.test(info) || !/cluster_slots_ok:16384/.test(info)) return false;
            const replication = await run('redis-cli', ['-p', String(node.port), 'INFO', 'replication'], 5000);
            if (/role:slave/.test(replication) && !/master_link_status:up/.test(replication)) return false;
          }
          const check = await run('redis-cli', ['--cluster', 'check', `127.0.0.1:${live()[0]!.port}`], 10000).catch(() => '');
          // Every master with a replica, once there are enough live nodes for that.
          const withReplica = check.match(/slots\) master\n\s+1 additional replica/g)?.length ?? 0;
          return /All 16384 slots covered/.test(check) && !/\[ERR\]/.test(check) && (live().length < 6 || withReplica === 3);
        },
        timeout,
      );
    },
    async stop() {
      await Promise.all(nodes.map((n) => kill(n.child)));
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await cluster.settled();
  return cluster;
}

async function ping(port: number): Promise<boolean> {
  const probe = createClient({ url: `redis://127.0.0.1:${port}`, socket: { reconnectStrategy: false, connectTimeout: 500 } });
  probe.on('error', () => {});
  try {
    await probe.connect();
    return true;
  } catch {
    return false;
  } finally {
    if (probe.isOpen) probe.destroy();
  }
}

function run(command: string, args: string[], timeout: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeout);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`${command} ${args.join(' ')} failed (${signal ?? code}): ${err || out}`));
    });
  });
}

/**
 * A channel named `<name>-<n>` in the first `slots` slots of the master holding the lowest slots,
 * and `reshard()`, which moves those slots to another master (`redis-cli --cluster reshard` moves
 * the first slots of its source). `channel` is the id; its store key is `/<id>`.
 */
export async function channelToMigrate(cluster: TestCluster, name: string, slots: number): Promise<{ channel: string; fromPort: number; reshard: () => Promise<string> }> {
  await cluster.settled(30000);
  type Slots = Array<[number, number, [string, number, string]]>;
  const ranges = JSON.parse(await cluster.cli(['--json', 'CLUSTER', 'SLOTS'])) as Slots;
  const [first, , [, fromPort, fromId]] = ranges.reduce((a, b) => (a[0] < b[0] ? a : b));
  const toId = ranges.find(([, , [, port]]) => port !== fromPort)![2][2];
  let channel = '';
  for (let i = 0; !channel; i++) {
    const slot = Number(await cluster.cli(['CLUSTER', 'KEYSLOT', `{/${name}-${i}}`]));
    if (slot >= first && slot < first + slots) channel = `${name}-${i}`;
  }
  const reshard = () => cluster.cli(['--cluster', 'reshard', `127.0.0.1:${fromPort}`, '--cluster-from', fromId, '--cluster-to', toId, '--cluster-slots', String(slots), '--cluster-yes'], 60000);
  return { channel, fromPort, reshard };
}
