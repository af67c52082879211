/**
 * "Client gone while parked: removed at once (no leak)": parks 10,000 long-poll subscribers on one
 * channel over raw sockets, drops them all, and waits until the channel counts 0 and is gone.
 *
 * 10,000 clients and 10,000 server sockets need 20,000 descriptors: the clients run in a child process
 * so each side needs ~10,000. The count is bounded by the soft RLIMIT_NOFILE, reported as a diagnostic.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { after, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createPushRelay } from '../../src/index.js';
import { serveNodeHttp } from '../helpers/servers.js';
import { waitFor } from '../helpers/wait.js';

const WANTED = 10_000;

/** Soft limit on open files of this process (Linux), or undefined when unknown. */
function openFileLimit(): number | undefined {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const soft = line?.split(/\s{2,}/)[1];
    return soft === undefined || soft === 'unlimited' ? undefined : Number(soft);
  } catch {
    return undefined;
  }
}

const relay = createPushRelay();
after(() => relay.close());

it(`parks up to ${WANTED} long-poll subscribers, drops them all, and leaves none behind`, { timeout: 180_000 }, async (t) => {
  const limit = openFileLimit();
  // Keep headroom for the runner, the loader and the server's own descriptors.
  const count = limit === undefined ? WANTED : Math.min(WANTED, limit - 500);
  t.diagnostic(`open file limit ${limit ?? 'unknown'}; parking ${count} subscribers`);
  assert.ok(count >= 1000, `the open file limit (${limit}) is too low for this test`);

  const server = await serveNodeHttp({ '/sub': relay.subscriber() });
  t.after(() => server.close());
  const crowd = spawn(process.execPath, [fileURLToPath(new URL('../helpers/socket-crowd.mjs', import.meta.url)), String(server.port), '/sub?id=crowd', String(count)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  t.after(() => crowd.kill('SIGKILL'));
  let output = '';
  crowd.stdout.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => crowd.once('exit', resolve));

  await waitFor('the crowd to connect', () => output.includes('parked') || crowd.exitCode !== null, 120_000);
  assert.match(output, new RegExp(`parked ${count}\\b`));
  const started = Date.now();
  await waitFor(`${count} parked subscribers`, async () => (await relay.channelInfo('crowd'))?.subscribers === count, 120_000);
  t.diagnostic(`all parked ${Date.now() - started} ms after the last request was written`);

  const dropped = Date.now();
  crowd.stdin.write('destroy\n');
  assert.equal(await exited, 0);
  await waitFor('every subscriber counted out and the unused channel gone', async () => (await relay.channelInfo('crowd')) === undefined, 60_000);
  t.diagnostic(`all ${count} removed ${Date.now() - dropped} ms after the drop`);
  const connections = await new Promise<number>((resolve, reject) => server.server.getConnections((err, n) => (err ? reject(err) : resolve(n))));
  assert.equal(connections, 0, 'no server socket left open');
  // The relay still serves the channel afterwards.
  assert.equal((await relay.publish('crowd', 'after')).subscribers, 0);
});
