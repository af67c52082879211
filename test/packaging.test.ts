/**
 * The package as users get it: the tarball `npm pack` makes, installed from the npm registry into
 * projects of their own, next to nothing but what such a project has.
 *
 * - a clean project (only typescript and @types/node besides push-relay): CommonJS and ES module
 *   consumers resolve through the `exports` map, a strict TypeScript consumer type-checks against the
 *   published declarations alone (they must not need @types/express or @types/http-errors), and
 *   `push-relay/redis` without the optional `redis` package says what to install;
 * - an Express project (express, @types/express, redis): a typed Express consumer, the Redis entry
 *   point, and README's quick start run verbatim.
 *
 * Builds first when dist/ is missing or older than src/.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { request } from './helpers/http-client.js';
import { waitFor } from './helpers/wait.js';

const run = promisify(execFile);
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  main: string;
  module: string;
  types: string;
  exports: Record<string, string | Record<string, Record<string, string>>>;
};
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

/** The version this repository installed of `name` (so that the projects install what CI tested with). */
const installed = (name: string) => (JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;

/** Files named by package.json's entry fields and `exports` map, without the leading `./`. */
function entryFiles(): string[] {
  const files = new Set([pkg.main, pkg.module, pkg.types]);
  for (const target of Object.values(pkg.exports)) {
    if (typeof target === 'string') files.add(target);
    else for (const conditions of Object.values(target)) for (const file of Object.values(conditions)) files.add(file);
  }
  return [...files].map((f) => f.replace(/^\.\//, '')).sort();
}

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) newest = Math.max(newest, statSync(join(entry.parentPath, entry.name)).mtimeMs);
  }
  return newest;
}

function distIsCurrent(): boolean {
  const built = entryFiles().filter((f) => f.startsWith('dist/'));
  if (built.some((f) => !existsSync(join(root, f)))) return false;
  const oldestBuilt = Math.min(...built.map((f) => statSync(join(root, f)).mtimeMs));
  return oldestBuilt >= Math.max(newestMtime(join(root, 'src')), statSync(join(root, 'tsup.config.ts')).mtimeMs);
}

let scratch: string;
/** node_modules/push-relay is the installed tarball; only typescript and @types/node beside it. */
let clean: string;
/** Also express, @types/express, redis, ws and @types/ws. */
let withExpress: string;

async function project(name: string, dependencies: Record<string, string>): Promise<string> {
  const dir = join(scratch, name);
  cpSync(join(root, 'test/fixtures/consumers'), dir, { recursive: true });
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: `consumer-${name}`, private: true, dependencies }, null, 2));
  await run(npm, ['install', '--no-audit', '--no-fund', '--ignore-scripts', '--prefer-offline'], { cwd: dir, timeout: 180_000 });
  return dir;
}

before(async () => {
  if (!distIsCurrent()) await run(npm, ['run', 'build'], { cwd: root, timeout: 120_000 });
  scratch = mkdtempSync(join(tmpdir(), 'push-relay-consumer-'));
  // --ignore-scripts: dist/ is current, and prepack would rebuild (first wiping) it under other tests' feet.
  const { stdout } = await run(npm, ['pack', '--ignore-scripts', '--json', '--pack-destination', scratch], { cwd: root, timeout: 60_000 });
  const tarball = join(scratch, (JSON.parse(stdout) as Array<{ filename: string }>)[0]!.filename);
  const base = { 'push-relay': `file:${tarball}`, typescript: installed('typescript'), '@types/node': installed('@types/node') };
  [clean, withExpress] = await Promise.all([
    project('clean', base),
    project('express', {
      ...base,
      express: installed('express'),
      '@types/express': installed('@types/express'),
      redis: installed('redis'),
      ws: installed('ws'),
      '@types/ws': installed('@types/ws'),
    }),
  ]);
});

after(() => {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

test('npm pack ships the built entry points, the docs and no sources or tests', async () => {
  const { stdout } = await run(npm, ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, timeout: 60_000 });
  const [report] = JSON.parse(stdout) as Array<{ name: string; files: Array<{ path: string }> }>;
  assert.equal(report?.name, 'push-relay');
  const shipped = new Set(report.files.map((f) => f.path));
  for (const file of [...entryFiles(), 'package.json', 'README.md', 'CHANGELOG.md', 'LICENSE']) assert.ok(shipped.has(file), `${file} is not in the package`);
  const unwanted = [...shipped].filter((f) => /^(src|test|examples|bench|\.ci|node_modules)\//.test(f) || /\.test\.[cm]?[jt]s$/.test(f) || /(^|\/)tsconfig/.test(f));
  assert.deepEqual(unwanted, [], 'sources, tests or tooling would be published');
});

for (const [format, file, entry] of [
  ['a CommonJS', 'cjs/consumer.cjs', 'dist/index.cjs'],
  ['an ES module', 'esm/consumer.mjs', 'dist/index.js'],
] as const) {
  test(`${format} consumer resolves the installed package through "exports" and serves a long-poll round trip`, async () => {
    const { stdout } = await run(process.execPath, [join(clean, file)], { cwd: clean, timeout: 30_000 });
    const result = JSON.parse(stdout) as { resolved: string; published: number; status: number; contentType: string; body: string };
    const resolvedPath = result.resolved.startsWith('file:') ? fileURLToPath(result.resolved) : result.resolved;
    assert.equal(relative(join(clean, 'node_modules/push-relay'), resolvedPath).split(sep).join('/'), entry);
    assert.deepEqual(
      { published: result.published, status: result.status, contentType: result.contentType, body: result.body },
      { published: 1, status: 200, contentType: 'text/plain', body: `hello from ${file.slice(0, 3)}` },
    );
  });
}

/** Runs tsc of `dir`'s own typescript on `dir/<config>`; the declaration files it read from the package. */
async function typeCheck(dir: string, config: string): Promise<string[]> {
  const tsc = join(dir, 'node_modules/typescript/bin/tsc');
  const { ok, output } = await run(process.execPath, [tsc, '-p', join(dir, config), '--listFiles'], { cwd: dir, timeout: 90_000 }).then(
    (r) => ({ ok: true, output: r.stdout }),
    (err: { stdout?: string; message: string }) => ({ ok: false, output: err.stdout || err.message }),
  );
  assert.ok(ok, `the TypeScript consumer ${config} does not type-check:\n${output}`);
  const pkgDir = join(dir, 'node_modules/push-relay');
  return output
    .split('\n')
    .map((f) => f.trim())
    .filter((f) => f.startsWith(pkgDir + sep))
    .map((f) => relative(pkgDir, f).split(sep).join('/'));
}

test('a strict TypeScript consumer with only @types/node type-checks against the published declarations (import and require)', async () => {
  const declarations = await typeCheck(clean, 'ts');
  assert.ok(declarations.includes('dist/index.d.ts'), `import condition: ${declarations.join(', ')}`);
  assert.ok(declarations.includes('dist/index.d.cts'), `require condition: ${declarations.join(', ')}`);
  assert.ok(!existsSync(join(clean, 'node_modules/@types/http-errors')), 'the clean project must not have @types/http-errors');
});

test('a typed Express consumer: hooks see its own request type, options take undefined under exactOptionalPropertyTypes, the client takes ws\'s WebSocket', async () => {
  const declarations = await typeCheck(withExpress, 'express-ts');
  assert.ok(declarations.includes('dist/index.d.ts'), declarations.join(', '));
});

test('push-relay/redis without the optional redis package: a RedisStore says what to install', async () => {
  for (const kind of ['import', 'require'] as const) {
    const { stdout } = await run(process.execPath, [join(clean, 'missing-redis.mjs'), kind], { cwd: clean, timeout: 30_000 });
    assert.match((JSON.parse(stdout) as { error: string }).error, /optional peer dependency "redis".*npm install redis/, kind);
  }
});

test('push-relay/redis resolves for require() and import', async () => {
  const script = (kind: 'require' | 'import') =>
    kind === 'require' ? `console.log(typeof require('push-relay/redis').RedisStore)` : `import('push-relay/redis').then((m) => console.log(typeof m.RedisStore))`;
  for (const kind of ['require', 'import'] as const) {
    const { stdout } = await run(process.execPath, ['-e', script(kind)], { cwd: withExpress, timeout: 30_000 });
    assert.equal(stdout.trim(), 'function', `${kind}('push-relay/redis').RedisStore`);
  }
});

test('push-relay/client resolves for require() and import, with its types, and stays under 6 KB minified and gzipped', async () => {
  const script = (kind: 'require' | 'import') =>
    kind === 'require' ? `console.log(typeof require('push-relay/client').subscribe)` : `import('push-relay/client').then((m) => console.log(typeof m.subscribe))`;
  for (const kind of ['require', 'import'] as const) {
    const { stdout } = await run(process.execPath, ['-e', script(kind)], { cwd: clean, timeout: 30_000 });
    assert.equal(stdout.trim(), 'function', `${kind}('push-relay/client').subscribe`);
  }
  // The browser bundle is what it weighs to a page: dist/client.js, minified, gzipped.
  const { transform } = await import('esbuild');
  const { gzipSync } = await import('node:zlib');
  const minified = await transform(readFileSync(join(root, 'dist/client.js'), 'utf8'), { minify: true, format: 'esm', target: 'es2020' });
  const size = gzipSync(minified.code, { level: 9 }).length;
  assert.ok(size < 6 * 1024, `push-relay/client is ${size} bytes minified + gzipped`);
  const declarations = readFileSync(join(root, 'dist/client.d.ts'), 'utf8');
  assert.match(declarations, /declare function subscribe\(/);
});

test('a protocol error thrown by the push-relay/redis bundle is answered by the main bundle, not passed to next(err)', async () => {
  for (const kind of ['import', 'require'] as const) {
    const { stdout } = await run(process.execPath, [join(withExpress, 'redis-entry.mjs'), kind], { cwd: withExpress, timeout: 30_000 });
    assert.deepEqual(JSON.parse(stdout), { status: 503, retryAfter: '1', body: 'push-relay: the Redis store is closed\n' }, kind);
  }
});

/** A port nothing listens on now. */
function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolvePort(port));
    });
  });
}

test("README's quick start runs verbatim as server.mjs in a project that installed push-relay and express", async () => {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Quick start'));
  const install = /```sh\n(npm install [^\n]+)\n```/.exec(section)?.[1];
  assert.equal(install, 'npm install push-relay express', 'the quick start installs what it imports');
  const code = /```js\n([\s\S]*?)```/.exec(section)?.[1];
  assert.ok(code?.includes('createPushRelay'), 'the quick start has a js block');
  writeFileSync(join(withExpress, 'server.mjs'), code!);
  const port = await freePort();
  const child = spawn(process.execPath, ['server.mjs'], { cwd: withExpress, env: { ...process.env, PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  try {
    await waitFor('the quick start to listen', () => output.includes(`http://localhost:${port}`) || child.exitCode !== null, 20_000);
    assert.equal(child.exitCode, null, `the quick start exited: ${output}`);
    const base = `http://127.0.0.1:${port}`;
    // The walk-through under it: a subscriber waits, a publish answers it.
    const waiting = request(`${base}/activity?id=a`);
    await waitFor('the subscriber to wait', async () => (await request(`${base}/publish?id=a`, { headers: { Accept: 'application/json' } })).text.includes('"subscribers": 1'));
    const published = await request(`${base}/publish?id=a`, { method: 'POST', body: 'hello' });
    assert.equal(published.status, 201);
    const got = await waiting;
    assert.equal(got.status, 200);
    assert.equal(got.text, 'hello');
  } finally {
    child.kill('SIGKILL');
  }
});
