/**
 * The package as users get it: what `npm pack` ships, and consumers that resolve `push-relay` through
 * the `exports` map from a project of their own (CommonJS, ES modules, TypeScript against dist/*.d.ts).
 * Builds first when dist/ is missing or older than src/.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  main: string;
  module: string;
  types: string;
  exports: Record<string, string | Record<string, Record<string, string>>>;
};
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
// The Redis entry point ships once its source exists (it is built by the same tsup run).
const hasRedisEntry = existsSync(join(root, 'src/redis.ts'));

/** Files named by package.json's entry fields and `exports` map, without the leading `./`. */
function entryFiles(): string[] {
  const files = new Set([pkg.main, pkg.module, pkg.types]);
  for (const [subpath, target] of Object.entries(pkg.exports)) {
    if (subpath === './redis' && !hasRedisEntry) continue;
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
  return oldestBuilt >= newestMtime(join(root, 'src'));
}

/** A scratch project whose node_modules/push-relay is a symlink to this repository. */
let project: string;

before(async () => {
  if (!distIsCurrent()) await run(npm, ['run', 'build'], { cwd: root, timeout: 120_000 });
  project = mkdtempSync(join(tmpdir(), 'push-relay-consumer-'));
  cpSync(join(root, 'test/fixtures/consumers'), project, { recursive: true });
  mkdirSync(join(project, 'node_modules'));
  symlinkSync(root, join(project, 'node_modules/push-relay'), 'dir');
  // The TypeScript consumer's `types: ["node"]` looks in its own node_modules/@types.
  symlinkSync(join(root, 'node_modules/@types'), join(project, 'node_modules/@types'), 'dir');
});

after(() => {
  if (project) rmSync(project, { recursive: true, force: true });
});

test('npm pack ships the built entry points, the docs and no sources or tests', async () => {
  // --ignore-scripts: prepack would rebuild (and first wipe) dist/ under the other checks' feet.
  const { stdout } = await run(npm, ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, timeout: 60_000 });
  const [report] = JSON.parse(stdout) as Array<{ name: string; files: Array<{ path: string }> }>;
  assert.equal(report?.name, 'push-relay');
  const shipped = new Set(report.files.map((f) => f.path));
  for (const file of [...entryFiles(), 'package.json', 'README.md']) assert.ok(shipped.has(file), `${file} is not in the package`);
  const unwanted = [...shipped].filter((f) => /^(src|test|examples|bench|\.ci|node_modules)\//.test(f) || /\.test\.[cm]?[jt]s$/.test(f) || /(^|\/)tsconfig/.test(f));
  assert.deepEqual(unwanted, [], 'sources, tests or tooling would be published');
});

for (const [format, file, entry] of [
  ['a CommonJS', 'cjs/consumer.cjs', 'dist/index.cjs'],
  ['an ES module', 'esm/consumer.mjs', 'dist/index.js'],
] as const) {
  test(`${format} consumer resolves the package through "exports" and serves a long-poll round trip`, async () => {
    const { stdout } = await run(process.execPath, [join(project, file)], { cwd: project, timeout: 30_000 });
    const result = JSON.parse(stdout) as { resolved: string; published: number; status: number; contentType: string; body: string };
    // Resolved inside the symlinked package, to the build of its own format (not to src/).
    const resolvedPath = result.resolved.startsWith('file:') ? fileURLToPath(result.resolved) : result.resolved;
    assert.equal(relative(root, resolvedPath).split(sep).join('/'), entry);
    assert.deepEqual(
      { published: result.published, status: result.status, contentType: result.contentType, body: result.body },
      { published: 1, status: 200, contentType: 'text/plain', body: `hello from ${file.slice(0, 3)}` },
    );
  });
}

if (hasRedisEntry) {
  test('push-relay/redis resolves for require() and import', async () => {
    const script = (kind: 'require' | 'import') =>
      kind === 'require'
        ? `console.log(typeof require('push-relay/redis').RedisStore)`
        : `import('push-relay/redis').then((m) => console.log(typeof m.RedisStore))`;
    for (const kind of ['require', 'import'] as const) {
      const { stdout } = await run(process.execPath, ['-e', script(kind)], { cwd: project, timeout: 30_000 });
      assert.equal(stdout.trim(), 'function', `${kind}('push-relay/redis').RedisStore`);
    }
  });

  test('a protocol error thrown by the push-relay/redis bundle is answered by the main bundle, not passed to next(err)', async () => {
    for (const kind of ['import', 'require'] as const) {
      const { stdout } = await run(process.execPath, [join(project, 'redis-entry.mjs'), kind], { cwd: project, timeout: 30_000 });
      assert.deepEqual(JSON.parse(stdout), { status: 503, retryAfter: '1', body: 'push-relay: the Redis store is closed\n' }, kind);
    }
  });
}

test('a TypeScript consumer type-checks against dist/*.d.ts (import and require conditions)', async () => {
  const tsc = join(root, 'node_modules/typescript/bin/tsc');
  // --listFiles: the files it checked, to prove which declarations the package resolved to.
  const { ok, output } = await run(process.execPath, [tsc, '-p', join(project, 'ts'), '--listFiles'], { cwd: project, timeout: 60_000 }).then(
    (r) => ({ ok: true, output: r.stdout }),
    (err: { stdout?: string; message: string }) => ({ ok: false, output: err.stdout || err.message }),
  );
  assert.ok(ok, `the TypeScript consumer does not type-check:\n${output}`);
  // Through the symlink, tsc sees the package at its real path: this repository.
  const declarations = output
    .split('\n')
    .map((f) => f.trim())
    .filter((f) => f.startsWith(root + '/'))
    .map((f) => relative(root, f).split(sep).join('/'));
  assert.ok(declarations.includes('dist/index.d.ts'), `import condition: ${declarations.join(', ')}`);
  assert.ok(declarations.includes('dist/index.d.cts'), `require condition: ${declarations.join(', ')}`);
  assert.deepEqual(declarations.filter((f) => f.startsWith('src/')), [], 'the consumer must see the published declarations, not the sources');
});
