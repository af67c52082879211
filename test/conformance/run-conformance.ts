/**
 * Runs the shared black-box conformance suite against the library:
 *   npm run conformance [-- --store memory|redis] [-- any run.mjs argument]
 * The suite is looked up in $CONFORMANCE_DIR, else ../shared/conformance beside the repository.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChannelStore } from '../../src/index.js';
import { RedisStore } from '../../src/redis.js';
import { createClient } from 'redis';
import { createProfileApp } from './profile-server.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const suite = resolve(process.env.CONFORMANCE_DIR ?? join(root, '../shared/conformance'));
if (!existsSync(join(suite, 'run.mjs'))) {
  console.error(
    `npm run conformance needs the black-box protocol conformance suite (a folder with run.mjs and profiles.json), ` +
      `which is not part of this repository. It was looked for at ${suite}. Set CONFORMANCE_DIR to the suite's folder ` +
      `(CONFORMANCE_DIR=/path/to/conformance npm run conformance). The rest of the checks (npm test) do not need it.`,
  );
  process.exit(2);
}

const args = process.argv.slice(2);
const storeAt = args.indexOf('--store');
const storeKind = storeAt >= 0 ? args.splice(storeAt, 2)[1] : 'memory';

let store: ChannelStore | undefined;
let closeStore = async () => {};
if (storeKind === 'redis') {
  const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  const prefix = `conformance-${process.pid}`;
  const redis = new RedisStore({ url, prefix });
  store = redis;
  closeStore = async () => {
    await redis.close();
    // Channels that keep their newest message never expire: remove this run's keys.
    const client = createClient({ url });
    client.on('error', () => {});
    await client.connect();
    for await (const keys of client.scanIterator({ MATCH: `${prefix}:*`, COUNT: 500 })) if (keys.length > 0) await client.del(keys);
    client.destroy();
  };
} else if (storeKind !== 'memory') {
  console.error(`unknown --store ${storeKind} (memory or redis)`);
  process.exit(2);
}

const { app, relay } = createProfileApp(join(suite, 'profiles.json'), store);
const server = app.listen(0, '127.0.0.1');
await new Promise((r) => server.once('listening', r));
const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
console.log(`conformance: ${storeKind} store at ${base}`);

const child = spawn(process.execPath, [join(suite, 'run.mjs'), '--base', base, ...args], { stdio: 'inherit' });
const code: number = await new Promise((r) => child.on('exit', (c) => r(c ?? 1)));
await relay.close();
await closeStore();
server.closeAllConnections();
server.close();
process.exit(code);
