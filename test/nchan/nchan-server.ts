/**
 * A real Nchan (Debian's nginx-light + libnginx-mod-nchan) for the compatibility tests, started in
 * the foreground on a free port with everything under a temporary prefix, and stopped by the test.
 * Outside CI a machine without it skips those tests with a message saying what to install; under CI
 * (.ci/run installs it) a missing Nchan fails them.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const MODULE = '/usr/lib/nginx/modules/ngx_nchan_module.so';
const missing = spawnSync('nginx', ['-v']).error ? 'nginx' : !existsSync(MODULE) ? MODULE : undefined;

/** The `skip` option of an Nchan test: a reason outside CI when Nchan is missing, else false. */
export const nchanSkip: string | false = missing && !process.env.CI ? `Nchan not installed (${missing} missing: apt-get install -y nginx-light libnginx-mod-nchan)` : false;

export interface Nchan {
  port: number;
  url(path: string): string;
  /** POST a message to channel `id`. */
  publish(id: string, data: string): Promise<void>;
  stop(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1', () => (s.destroy(), resolve(true)));
    s.on('error', () => resolve(false));
  });
}

/** `/pub` (publisher, 100 messages kept for an hour) and `/sub` (every transport), channel from `?id=`. */
function config(prefix: string, port: number): string {
  return `load_module ${MODULE};
worker_processes 1;
daemon off;
pid ${prefix}/nginx.pid;
error_log ${prefix}/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${prefix}/body;
  proxy_temp_path ${prefix}/proxy;
  fastcgi_temp_path ${prefix}/fastcgi;
  uwsgi_temp_path ${prefix}/uwsgi;
  scgi_temp_path ${prefix}/scgi;
  server {
    listen 127.0.0.1:${port};
    location = /pub {
      nchan_publisher;
      nchan_channel_id $arg_id;
      nchan_message_buffer_length 100;
      nchan_message_timeout 1h;
    }
    location = /sub {
      nchan_subscriber;
      nchan_channel_id $arg_id;
      nchan_subscriber_timeout 5s;
      nchan_access_control_allow_origin *;
    }
  }
}
`;
}

export async function startNchan(): Promise<Nchan> {
  assert.ok(!missing, `Nchan not installed (${missing} missing): .ci/run installs it (apt-get install -y nginx-light libnginx-mod-nchan)`);
  const prefix = mkdtempSync(join(tmpdir(), 'push-relay-nchan-'));
  for (const dir of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(prefix, dir));
  const port = await freePort();
  writeFileSync(join(prefix, 'nginx.conf'), config(prefix, port));
  const child: ChildProcess = spawn('nginx', ['-p', prefix, '-c', join(prefix, 'nginx.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const log = () => `${stderr}${existsSync(join(prefix, 'error.log')) ? readFileSync(join(prefix, 'error.log'), 'utf8') : ''}`;
  const deadline = Date.now() + 10_000;
  while (!(await answers(port))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`nginx did not start: ${log()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const url = (path: string) => `http://127.0.0.1:${port}${path}`;
  return {
    port,
    url,
    async publish(id, data) {
      const res = await fetch(url(`/pub?id=${encodeURIComponent(id)}`), { method: 'POST', body: data, headers: { 'Content-Type': 'text/plain' } });
      await res.text();
      assert.ok(res.status === 201 || res.status === 202, `Nchan publish answered ${res.status}`);
    },
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        // SIGQUIT: nginx's graceful stop; the master reaps its worker.
        child.kill('SIGQUIT');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(prefix, { recursive: true, force: true });
    },
  };
}
