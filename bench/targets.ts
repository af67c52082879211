/**
 * The servers under test, each started in its own process pinned to CPU 0: Nchan (nginx, 1 worker,
 * the push module's legacy directives), push-relay under Express 5 and under bare node:http, and the
 * Node alternatives to push-relay (bench/servers/alt-*.ts), each on the scenarios it can serve.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ServerName } from './build.js';

export type TargetName =
  | 'nchan'
  | 'express'
  | 'node-http'
  | 'express-redis'
  | 'express-redis-1'
  | 'node-http-redis'
  | 'node-http-redis-1'
  | 'nchan-redis'
  | 'express-minimal'
  | 'node-http-minimal'
  | 'alt-express'
  | 'better-sse'
  | 'sse-channel'
  | 'express-longpoll';

export interface RunningServer {
  /** The processes that hold the connections (nginx: the worker). */
  pids: number[];
  /** Where subscribers connect, round-robin; publishers use the first. */
  ports: number[];
  /** Helper processes whose CPU is the server side's too (a local redis-server). */
  auxPids?: number[];
  /** What went wrong in the server meanwhile (it exited, it wrote to stderr), if anything. */
  trouble(): string | undefined;
  stop(): Promise<void>;
}

export interface Target {
  name: TargetName;
  label: string;
  publishPath: string;
  subscribePath: string;
  eventSourcePath: string;
  /** Where WebSocket subscribers connect (default: subscribePath). */
  webSocketPath?: string;
  /** Why it cannot run here, or undefined. */
  unavailable(): Promise<string | undefined>;
  /** Scenarios it runs (default: all). */
  scenarios?: readonly string[];
  /** Only run when asked for (--redis, --baseline or --targets). */
  optIn?: 'redis' | 'baseline';
  start(port: number, options: StartOptions): Promise<RunningServer>;
}

export interface StartOptions {
  repoRoot: string;
  /** Bundled server scripts (bench/build.ts). */
  builtServers: Record<ServerName, string>;
  serverCpu: number;
  nofile: number;
  /** Write V8 CPU profiles of the server into this directory (Node servers only; one per thread). */
  cpuProfileDir?: string;
}

export const NCHAN_MODULE = '/usr/lib/nginx/modules/ngx_nchan_module.so';

/**
 * Scheduling priority of the benchmark's processes: other work on a shared machine (test suites)
 * otherwise takes CPU time from the pinned server or load generator mid-measurement. Negative
 * values need root; 0 leaves priorities alone.
 */
export const benchNice = { value: process.getuid?.() === 0 ? -10 : 0 };

/** Runs `argv` pinned to one CPU with a raised open-files limit (the listen side holds 10,000+ sockets). */
export function pinned(cpu: number, nofile: number, argv: string[], cwd: string, env: NodeJS.ProcessEnv = {}): ChildProcess {
  const nice = benchNice.value !== 0 ? ['nice', '-n', String(benchNice.value)] : [];
  return spawn('taskset', ['-c', String(cpu), ...nice, 'bash', '-c', `ulimit -n ${nofile} && exec "$@"`, 'bash', ...argv], {
    cwd,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** The highest open-files limit this shell may set. */
export function maxNofile(): number {
  const hard = spawnSync('bash', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).stdout.trim();
  return hard === 'unlimited' ? 65536 : Math.min(65536, Number(hard) || 1024);
}

function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((r) => child.once('exit', () => r()));
}

async function stopChild(child: ChildProcess): Promise<void> {
  child.kill('SIGTERM');
  const killed = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited(child);
  clearTimeout(killed);
}

interface NodeServer {
  child: ChildProcess;
  trouble(): string | undefined;
}

async function startNode(script: string, port: number, options: StartOptions, label: string, env: NodeJS.ProcessEnv = {}, args: string[] = []): Promise<NodeServer> {
  const flags = options.cpuProfileDir ? ['--cpu-prof', '--cpu-prof-dir', options.cpuProfileDir] : [];
  const child = pinned(options.serverCpu, options.nofile, [process.execPath, ...flags, script, String(port), ...args], options.repoRoot, env);
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('listening')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`${label} exited (${code}) before listening: ${stderr}`)));
  });
  return {
    child,
    trouble() {
      const exited = child.exitCode !== null || child.signalCode !== null;
      if (!exited && !stderr) return undefined;
      return `${label}${exited ? ` exited (${child.exitCode ?? child.signalCode})` : ''}${stderr ? `, stderr: ${stderr.trim().split('\n').slice(-3).join(' / ')}` : ''}`;
    },
  };
}

interface NodeTargetOptions {
  /** Scenarios it runs (default: all). */
  scenarios?: readonly string[];
  optIn?: Target['optIn'];
  /** Arguments after the port. */
  args?: string[];
}

/** One Node process serving /publish and /activity: push-relay, a minimal app or an alternative. */
function nodeTarget(name: TargetName, label: string, server: ServerName, options: NodeTargetOptions = {}): Target {
  return {
    name,
    label,
    publishPath: '/publish',
    subscribePath: '/activity',
    eventSourcePath: '/activity',
    ...(options.scenarios ? { scenarios: options.scenarios } : {}),
    ...(options.optIn ? { optIn: options.optIn } : {}),
    unavailable: () => Promise.resolve(undefined),
    async start(port, start) {
      const child = await startNode(start.builtServers[server], port, start, label, {}, options.args);
      return { pids: [child.child.pid!], ports: [port], trouble: child.trouble, stop: () => stopChild(child.child) };
    },
  };
}

/**
 * The floor without push-relay (bench/servers/minimal-app.ts): the least work its host framework can
 * do for each scenario, so that push-relay's own cost is the difference.
 */
const minimalApp = (name: TargetName, label: string, framework: 'express' | 'node-http') =>
  nodeTarget(name, label, 'minimal-app', { optIn: 'baseline', args: [framework] });

/**
 * push-relay on a RedisStore (REDIS_URL): `processes` app processes (all on the server CPU) sharing
 * channels through Redis, whose CPU counts as the server side's too (auxPids).
 */
function redisTarget(name: TargetName, label: string, server: ServerName, processes: number): Target {
  return {
    name,
    label,
    publishPath: '/publish',
    subscribePath: '/activity',
    eventSourcePath: '/activity',
    scenarios: ['fanout', 'channels', 'latency', 'publish', 'memory'],
    optIn: 'redis',
    unavailable: redisUnavailable,
    async start(port, options) {
      const prefix = `push-relay-bench-${process.pid}-${Date.now().toString(36)}`;
      const env = { BENCH_REDIS_PREFIX: prefix };
      const ports = [port];
      while (ports.length < processes) ports.push(await freePort());
      const children: NodeServer[] = [];
      try {
        for (const p of ports) children.push(await startNode(options.builtServers[server], p, options, label, env));
      } catch (err) {
        await Promise.all(children.map((c) => stopChild(c.child)));
        throw err;
      }
      return {
        pids: children.map((c) => c.child.pid!),
        ports,
        auxPids: redisPids(),
        trouble: () => children.map((c) => c.trouble()).filter(Boolean).join('; ') || undefined,
        async stop() {
          await Promise.all(children.map((c) => stopChild(c.child)));
          await deleteRedisKeys(prefix);
        },
      };
    },
  };
}

async function redisUnavailable(): Promise<string | undefined> {
  const url = new URL(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
  const up = await portOpen(Number(url.port || 6379), url.hostname);
  return up ? undefined : `no Redis at ${url.host} (set REDIS_URL)`;
}

/** The local redis-server processes (their CPU is the server side's). */
function redisPids(): number[] {
  return spawnSync('pgrep', ['-x', 'redis-server'], { encoding: 'utf8' }).stdout.trim().split(/\s+/).filter(Boolean).map(Number);
}

/** Leaves Redis as it was: every key the run wrote starts with its prefix. */
async function deleteRedisKeys(prefix: string): Promise<void> {
  const { createClient } = await import('redis');
  const client = createClient({ url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' });
  await client.connect();
  try {
    for await (const keys of client.scanIterator({ MATCH: `${prefix}*`, COUNT: 1000 })) {
      if (keys.length > 0) await client.unlink(keys);
    }
  } finally {
    await client.quit();
  }
}

/**
 * The nginx config equivalent to bench/servers/*: examples/basic.ts's settings with the push module's
 * directives, plus an EventSource location (Nchan serves EventSource on its own location).
 */
export function nchanConfig(prefix: string, port: number, nofile: number, redisUrl?: string): string {
  // Nchan's Redis mode: every location keeps its channels in Redis (nchan_redis_url, nchan_use_redis).
  const redis = redisUrl ? `\n  nchan_redis_url "${redisUrl}";\n  nchan_use_redis on;` : '';
  return `load_module ${NCHAN_MODULE};
worker_processes 1;
worker_rlimit_nofile ${nofile};
daemon off;
pid ${prefix}/nginx.pid;
error_log ${prefix}/error.log warn;
events {
  worker_connections ${nofile - 64};
}
http {
  access_log off;
  client_body_temp_path ${prefix}/body;
  proxy_temp_path ${prefix}/proxy;
  fastcgi_temp_path ${prefix}/fastcgi;
  uwsgi_temp_path ${prefix}/uwsgi;
  scgi_temp_path ${prefix}/scgi;
  keepalive_requests 1000000;
  keepalive_timeout 75s;
  push_max_reserved_memory 32M;${redis}
  server {
    listen 127.0.0.1:${port} backlog=4096;
    location = /pub {
      set $push_channel_id $arg_id;
      push_publisher;
      push_message_timeout 2h;
      push_max_message_buffer_length 10;
    }
    location = /sub {
      set $push_channel_id $arg_id;
      push_subscriber long-poll;
      push_subscriber_concurrency broadcast;
      default_type text/plain;
    }
    location = /ev {
      nchan_channel_id $arg_id;
      nchan_subscriber eventsource;
    }
    location = /ws {
      nchan_channel_id $arg_id;
      nchan_subscriber websocket;
    }
  }
}
`;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

function portOpen(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ port, host }, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

function nchanTarget(name: TargetName, label: string, redis: boolean): Target {
  return {
    name,
    label,
    ...(redis ? { scenarios: ['fanout', 'channels', 'latency', 'publish', 'memory'], optIn: 'redis' as const } : {}),
    publishPath: '/pub',
    subscribePath: '/sub',
    eventSourcePath: '/ev',
    webSocketPath: '/ws',
    async unavailable() {
      if (spawnSync('nginx', ['-v']).error) return 'nginx is not installed (apt-get install nginx-light libnginx-mod-nchan)';
      if (!existsSync(NCHAN_MODULE)) return `the nchan module is not installed (${NCHAN_MODULE}; apt-get install libnginx-mod-nchan)`;
      return redis ? redisUnavailable() : undefined;
    },
    async start(port, options) {
      const prefix = mkdtempSync(join(tmpdir(), 'push-relay-bench-nchan-'));
      for (const dir of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(prefix, dir));
      const redisUrl = redis ? (process.env.REDIS_URL ?? 'redis://127.0.0.1:6379') : undefined;
      writeFileSync(join(prefix, 'nginx.conf'), nchanConfig(prefix, port, options.nofile, redisUrl));
      const child = pinned(options.serverCpu, options.nofile, ['nginx', '-p', prefix, '-c', join(prefix, 'nginx.conf')], prefix);
      let stderr = '';
      child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      const deadline = Date.now() + 10_000;
      let worker: number | undefined;
      while (Date.now() < deadline) {
        if (child.exitCode !== null) throw new Error(`nginx exited (${child.exitCode}): ${stderr}${safeRead(join(prefix, 'error.log'))}`);
        const children = safeRead(`/proc/${child.pid}/task/${child.pid}/children`).trim().split(/\s+/).filter(Boolean);
        if (children.length > 0 && (await portOpen(port))) {
          worker = Number(children[0]);
          break;
        }
        await new Promise((r) => setTimeout(r, 50));
      }
      if (worker === undefined) {
        child.kill('SIGKILL');
        throw new Error(`nginx did not start: ${stderr}${safeRead(join(prefix, 'error.log'))}`);
      }
      return {
        pids: [worker],
        ports: [port],
        ...(redis ? { auxPids: redisPids() } : {}),
        trouble: () => (child.exitCode !== null ? `nginx exited (${child.exitCode}): ${safeRead(join(prefix, 'error.log')).slice(-500)}` : undefined),
        async stop() {
          await stopChild(child);
          rmSync(prefix, { recursive: true, force: true });
        },
      };
    },
};
}

const nchan = nchanTarget('nchan', 'Nchan (nginx, 1 worker)', false);

function safeRead(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

export const TARGETS: Target[] = [
  nchan,
  nodeTarget('express', 'Express 5 push-relay', 'express'),
  nodeTarget('node-http', 'push-relay on relay.handler (node:http, in front of Express 5)', 'node-http'),
  // --redis: RedisStore with 1 and 2 app processes, beside Nchan's Redis mode on the same Redis.
  nchanTarget('nchan-redis', 'Nchan, Redis mode (nchan_redis_url)', true),
  redisTarget('node-http-redis-1', 'relay.handler, RedisStore, 1 process', 'node-http', 1),
  redisTarget('node-http-redis', 'relay.handler, RedisStore, 2 processes', 'node-http', 2),
  redisTarget('express-redis-1', 'Express 5 push-relay, RedisStore, 1 process', 'express', 1),
  redisTarget('express-redis', 'Express 5 push-relay, RedisStore, 2 processes', 'express', 2),
  minimalApp('express-minimal', 'minimal Express 5 app (no push-relay)', 'express'),
  minimalApp('node-http-minimal', 'minimal node:http server (no push-relay)', 'node-http'),
  // Node alternatives, run by default. Scenarios left out are those an alternative cannot serve:
  // (e) left out: the push module's protocol has no EventSource, and this is that protocol only.
  nodeTarget('alt-express', 'straightforward Express 5 (no library)', 'alt-straightforward-express', {
    scenarios: ['fanout', 'channels', 'latency', 'publish', 'memory'],
  }),
  // EventSource only. (d) left out: better-sse keeps no messages, so a publish to a channel without
  // sessions is dropped and (d) would time Express alone (see --baseline's minimal Express app).
  nodeTarget('better-sse', 'better-sse 0.16.1 (Express 5)', 'alt-better-sse', { scenarios: ['eventsource'] }),
  // EventSource only; keeps the newest 10 messages per channel (its history), so (d) is a real publish.
  nodeTarget('sse-channel', 'sse-channel 4.0.2 (Express 5)', 'alt-sse-channel', { scenarios: ['eventsource', 'publish'] }),
  // Only where every subscriber is parked before each publish. (a) and (b) left out: it keeps no
  // messages and reads no cursor, so a publish that overtakes a re-subscribe is lost and the
  // lockstep round never completes (tried: in (a) the second publish overtook all 1,000
  // re-subscribes and the run stalled), leaving a figure that says when the first loss came, not
  // throughput. (d) left out: a publish nobody waits for is dropped (Express alone). (e): no EventSource.
  nodeTarget('express-longpoll', 'express-longpoll 1.0.3 (Express 5)', 'alt-express-longpoll', { scenarios: ['latency', 'memory'] }),
];
