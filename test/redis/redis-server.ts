/**
 * redis-server processes of a test's own, on free ports (never the shared Redis): for tests that
 * kill, restart, flush or hang Redis. They need the redis-server binary: without it they are skipped
 * with a message, except under CI, where that is an error.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { createClient } from 'redis';
import { waitFor } from '../helpers/wait.js';

const hasRedisServer = spawnSync('redis-server', ['--version']).status === 0;
/** Why tests that start their own redis-server cannot run here, or undefined. Throws under CI. */
export function redisServerSkipReason(what: string): string | undefined {
  if (hasRedisServer) return undefined;
  const reason = `redis-server is not installed (apt-get install redis-server): ${what} skipped`;
  if (process.env.CI) throw new Error(`CI is set and ${reason}`);
  return reason;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** Our own redis-server on `port`, without persistence: a restart comes back empty. */
export async function startRedis(port: number, extra: string[] = []): Promise<ChildProcess> {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...extra], { stdio: 'ignore' });
  const probe = createClient({ url: `redis://127.0.0.1:${port}`, socket: { reconnectStrategy: false, connectTimeout: 500 } });
  probe.on('error', () => {});
  await waitFor(`redis-server on ${port}`, async () => {
    try {
      await probe.connect();
      return true;
    } catch {
      return false;
    }
  });
  probe.destroy();
  return child;
}

export function kill(child: ChildProcess, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill(signal);
  return exited;
}
