/**
 * A Redis Sentinel setup of the test's own, on free ports: a master, a replica of it, and 3 sentinels
 * watching the master set "push-relay-test" (Debian's redis-sentinel, or `redis-server --sentinel`).
 * Without them the Sentinel tests are skipped with a message, except under CI, where that is an error.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from 'redis';
import { waitFor } from '../helpers/wait.js';
import { freePort, kill, redisServerSkipReason, startRedis } from './redis-server.js';
export { kill };

const hasSentinelBinary = spawnSync('redis-sentinel', ['--version']).status === 0;
export const MASTER_NAME = 'push-relay-test';

export function sentinelSkipReason(what: string): string | undefined {
  return redisServerSkipReason(what);
}

export interface TestSentinels {
  /** For RedisStore's `sentinel` option. */
  options: { name: string; sentinelRootNodes: Array<{ host: string; port: number }> };
  /** The two data nodes: the first starts as the master, the second as its replica. */
  nodes: Array<{ port: number; child: ChildProcess }>;
  /** The master's port as the sentinels see it now. */
  masterPort(): Promise<number>;
  /** Starts a killed node again, empty; the sentinels make it a replica of the master. */
  restart(node: { port: number; child: ChildProcess }): Promise<void>;
  /** Waits until the node that is not the master is its replica, in sync. */
  replicaInSync(timeout?: number): Promise<void>;
  /** Starts the killed node again (if one is) and waits until it is the master's replica, in sync. */
  heal(): Promise<void>;
  stop(): Promise<void>;
}

/** `downAfter` (ms): how long the master may be silent before the sentinels fail it over. */
export async function startSentinels(downAfter = 1000): Promise<TestSentinels> {
  const dir = mkdtempSync(join(tmpdir(), 'push-relay-sentinel-'));
  const children: ChildProcess[] = [];
  try {
    const [masterPort, replicaPort] = [await freePort(), await freePort()];
    // A full sync writes an RDB file in the replica's --dir: ours, not the working directory.
    const nodes = [{ port: masterPort, child: await startRedis(masterPort, ['--dir', dir]) }];
    children.push(nodes[0]!.child);
    nodes.push({ port: replicaPort, child: await startRedis(replicaPort, ['--dir', dir, '--replicaof', '127.0.0.1', String(masterPort)]) });
    children.push(nodes[1]!.child);
    await waitFor('the replica in sync', async () => /master_link_status:up/.test(await info(replicaPort, 'replication')), 10000);
    const ports: number[] = [];
    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      ports.push(port);
      const conf = join(dir, `sentinel-${port}.conf`);
      writeFileSync(
        conf,
        [
          `port ${port}`,
          'bind 127.0.0.1',
          `dir ${dir}`,
          `sentinel monitor ${MASTER_NAME} 127.0.0.1 ${masterPort} 2`,
          `sentinel down-after-milliseconds ${MASTER_NAME} ${downAfter}`,
          `sentinel failover-timeout ${MASTER_NAME} 5000`,
          `sentinel parallel-syncs ${MASTER_NAME} 1`,
          '',
        ].join('\n'),
      );
      const child = hasSentinelBinary ? spawn('redis-sentinel', [conf], { stdio: 'ignore' }) : spawn('redis-server', [conf, '--sentinel'], { stdio: 'ignore' });
      children.push(child);
    }
    // Every sentinel knows the replica and the two other sentinels.
    for (const port of ports) {
      await waitFor(
        `sentinel on ${port} to know the replica and its peers`,
        async () => {
          const replicas = await command(port, ['SENTINEL', 'REPLICAS', MASTER_NAME]);
          const sentinels = await command(port, ['SENTINEL', 'SENTINELS', MASTER_NAME]);
          return Array.isArray(replicas) && replicas.length === 1 && Array.isArray(sentinels) && sentinels.length === 2;
        },
        20000,
      );
    }
    const masterPortNow = async () => {
      const reply = (await command(ports[0]!, ['SENTINEL', 'GET-MASTER-ADDR-BY-NAME', MASTER_NAME])) as string[];
      return Number(reply[1]);
    };
    const sentinels: TestSentinels = {
      options: { name: MASTER_NAME, sentinelRootNodes: ports.map((port) => ({ host: '127.0.0.1', port })) },
      nodes,
      masterPort: masterPortNow,
      async restart(node) {
        node.child = await startRedis(node.port, ['--dir', dir]);
        children.push(node.child);
      },
      async replicaInSync(timeout = 30000) {
        await waitFor(
          'the other node a replica of the master, in sync',
          async () => {
            const master = await masterPortNow();
            const other = nodes.find((n) => n.port !== master)!;
            const replication = await info(other.port, 'replication');
            return replication.includes(`master_port:${master}`) && /master_link_status:up/.test(replication);
          },
          timeout,
        );
      },
      async heal() {
        for (const node of nodes) if (node.child.exitCode !== null || node.child.signalCode !== null) await sentinels.restart(node);
        await sentinels.replicaInSync();
      },
      async stop() {
        await Promise.all(children.map((c) => kill(c)));
        rmSync(dir, { recursive: true, force: true });
      },
    };
    return sentinels;
  } catch (err) {
    await Promise.all(children.map((c) => kill(c)));
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

async function command(port: number, args: string[]): Promise<unknown> {
  const client = createClient({ url: `redis://127.0.0.1:${port}`, socket: { reconnectStrategy: false, connectTimeout: 1000 } });
  client.on('error', () => {});
  try {
    await client.connect();
    return await client.sendCommand(args);
  } catch {
    return undefined;
  } finally {
    if (client.isOpen) client.destroy();
  }
}

async function info(port: number, section: string): Promise<string> {
  return String((await command(port, ['INFO', section])) ?? '');
}
