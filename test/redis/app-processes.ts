/** Spawns fixture app processes (`node --import tsx`) and stops them. */
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../..');

export interface AppProcess {
  child: ChildProcess;
  port: number;
  url(path: string): string;
  /** SIGTERM (graceful) or SIGKILL (a crash); resolves once it exited. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

export function startApp(env: Record<string, string>, fixture = 'relay-app.ts', timeout = 20000): Promise<AppProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(here, 'fixtures', fixture)], {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return new Promise((resolvePort, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`app process did not start within ${timeout} ms: ${stderr}`));
    }, timeout);
    let out = '';
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /listening (\d+)/.exec(out);
      if (!m) return;
      clearTimeout(timer);
      const port = Number(m[1]);
      resolvePort({
        child,
        port,
        url: (path) => `http://127.0.0.1:${port}${path}`,
        stop: async (signal = 'SIGTERM') => {
          if (child.exitCode === null && child.signalCode === null) child.kill(signal);
          await exited;
        },
      });
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`app process exited (${code}) before listening: ${stderr}`));
    });
  });
}
