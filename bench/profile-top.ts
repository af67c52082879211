/**
 * Prints the top functions of a V8 `.cpuprofile` (from `node --cpu-prof`) by self time, with file:line.
 *
 *   npx tsx bench/profile-top.ts <file.cpuprofile> [count=25]
 *
 * Bundles with a linked source map (bench/build.ts) are mapped back to src/. Profiles of code run
 * through tsx carry positions in the transpiled JavaScript; for .ts files this
 * script transpiles them again with esbuild with the options tsx uses (minified whitespace, kept names) and maps positions back through the source
 * map, so lines point into the TypeScript source.
 */
import { transformSync } from 'esbuild';
import { readFileSync } from 'node:fs';
import { SourceMap } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  hitCount?: number;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

const [file, countArg] = process.argv.slice(2);
if (!file) {
  console.error('usage: tsx bench/profile-top.ts <file.cpuprofile> [count]');
  process.exit(2);
}
const count = Number(countArg ?? 25);
if (!Number.isInteger(count) || count <= 0) {
  console.error(`count must be a positive integer, got ${JSON.stringify(countArg)} (one profile file at a time)`);
  process.exit(2);
}
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;

// Self time per node from samples x time deltas (hitCount alone ignores uneven sampling intervals).
const selfUs = new Map<number, number>();
if (profile.samples && profile.timeDeltas) {
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]!;
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i + 1] ?? 0));
  }
} else {
  const interval = (profile.endTime - profile.startTime) / Math.max(1, profile.nodes.reduce((n, x) => n + (x.hitCount ?? 0), 0));
  for (const node of profile.nodes) selfUs.set(node.id, (node.hitCount ?? 0) * interval);
}
const totalUs = [...selfUs.values()].reduce((a, b) => a + b, 0);

const maps = new Map<string, SourceMap | null>();
function sourceMapOf(url: string): SourceMap | null {
  if (maps.has(url)) return maps.get(url)!;
  let map: SourceMap | null = null;
  if (url.startsWith('file://') && /\.(js|mjs)$/.test(url)) {
    // A bundle with a linked source map (bench/build.ts).
    try {
      map = new SourceMap(JSON.parse(readFileSync(`${fileURLToPath(url)}.map`, 'utf8')));
    } catch {
      map = null;
    }
  } else if (url.startsWith('file://') && /\.(ts|mts|cts)$/.test(url)) {
    try {
      const source = readFileSync(fileURLToPath(url), 'utf8');
      const out = transformSync(source, { loader: 'ts', format: 'esm', sourcemap: 'external', target: `node${process.versions.node}`, minifyWhitespace: true, keepNames: true });
      map = new SourceMap(JSON.parse(out.map));
    } catch {
      map = null;
    }
  }
  maps.set(url, map);
  return map;
}

function where(frame: ProfileNode['callFrame']): string {
  if (!frame.url) return '(native)';
  const map = sourceMapOf(frame.url);
  let line = frame.lineNumber + 1;
  let path = frame.url.startsWith('file://') ? relative(process.cwd(), fileURLToPath(frame.url)) : frame.url;
  if (map) {
    const entry = map.findEntry(frame.lineNumber, frame.columnNumber) as { originalLine?: number; originalSource?: string };
    if (typeof entry.originalLine === 'number') line = entry.originalLine + 1;
    if (entry.originalSource && /\.(js|mjs)$/.test(frame.url)) path = sourcePath(frame.url, entry.originalSource);
  }
  return `${path}:${line}`;
}

/** A bundle's source map names sources relative to the bundle. */
function sourcePath(bundleUrl: string, source: string): string {
  const resolved = source.startsWith('file://') ? fileURLToPath(source) : join(dirname(fileURLToPath(bundleUrl)), source);
  return relative(process.cwd(), resolved);
}

// The same function appears under many call paths: sum its nodes.
const byFunction = new Map<string, { name: string; where: string; us: number }>();
for (const node of profile.nodes) {
  const us = selfUs.get(node.id) ?? 0;
  if (us === 0) continue;
  const f = node.callFrame;
  const key = `${f.functionName}|${f.url}|${f.lineNumber}|${f.columnNumber}`;
  const entry = byFunction.get(key) ?? { name: f.functionName || '(anonymous)', where: where(f), us: 0 };
  entry.us += us;
  byFunction.set(key, entry);
}

/** Where self time goes by owner: an npm package, a file of ours, a Node internal module, or V8. */
function owner(url: string): string {
  if (!url) return '(native: V8, GC, syscalls, idle)';
  if (url.startsWith('node:')) return url.replace(/^node:(internal\/)?/, 'node:').split('/')[0]!.replace(/^node:_?http.*/, 'node:http');
  const path = url.startsWith('file://') ? relative(process.cwd(), fileURLToPath(url)) : url;
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(path);
  return pkg ? `npm ${pkg[1]}` : path;
}
const byOwner = new Map<string, number>();
for (const node of profile.nodes) {
  const us = selfUs.get(node.id) ?? 0;
  const f = node.callFrame;
  const mapped = f.url.startsWith('file://') ? pathToFileURL(where(f).replace(/:\d+$/, '')).href : f.url;
  const name = f.url ? owner(mapped) : f.functionName.startsWith('(') ? f.functionName : owner('');
  byOwner.set(name, (byOwner.get(name) ?? 0) + us);
}

const top = [...byFunction.values()].sort((a, b) => b.us - a.us).slice(0, count);
console.log(`${file}: ${(totalUs / 1000).toFixed(0)} ms sampled`);
console.log('self ms   self %  function                                  where');
for (const f of top) {
  console.log(`${(f.us / 1000).toFixed(1).padStart(7)}  ${((f.us / totalUs) * 100).toFixed(1).padStart(6)}%  ${f.name.slice(0, 40).padEnd(40)}  ${f.where}`);
}

console.log('\nself time by owner');
for (const [name, us] of [...byOwner].sort((a, b) => b[1] - a[1]).slice(0, 15)) {
  console.log(`${(us / 1000).toFixed(1).padStart(7)}  ${((us / totalUs) * 100).toFixed(1).padStart(6)}%  ${name}`);
}

// Total (inclusive) time: self time of a node and everything it called, counted once per function
// even under recursion. Shows what a layer costs as a whole (e.g. the Express router with its calls).
const nodesById = new Map(profile.nodes.map((n) => [n.id, n]));
const keyOf = (n: ProfileNode) => `${n.callFrame.functionName}|${n.callFrame.url}|${n.callFrame.lineNumber}|${n.callFrame.columnNumber}`;
const subtreeUs = new Map<number, number>();
function subtree(id: number): number {
  const node = nodesById.get(id)!;
  let us = selfUs.get(id) ?? 0;
  for (const child of node.children ?? []) us += subtree(child);
  subtreeUs.set(id, us);
  return us;
}
const root = profile.nodes[0]!;
subtree(root.id);
const totalByFunction = new Map<string, number>();
function walk(id: number, active: Set<string>): void {
  const node = nodesById.get(id)!;
  const key = keyOf(node);
  const fresh = !active.has(key);
  if (fresh) {
    totalByFunction.set(key, (totalByFunction.get(key) ?? 0) + subtreeUs.get(id)!);
    active.add(key);
  }
  for (const child of node.children ?? []) walk(child, active);
  if (fresh) active.delete(key);
}
walk(root.id, new Set());
const named = new Map(profile.nodes.map((n) => [keyOf(n), n.callFrame]));
const ours = [...totalByFunction]
  .filter(([key]) => {
    const url = named.get(key)!.url;
    return url.startsWith('file://') && named.get(key)!.functionName !== '';
  })
  .sort((a, b) => b[1] - a[1])
  .slice(0, count);
console.log('\ntotal (inclusive) time of application functions (src/, bench/, node_modules/)');
console.log('total ms  total %  function                                  where');
for (const [key, us] of ours) {
  const f = named.get(key)!;
  console.log(`${(us / 1000).toFixed(1).padStart(7)}  ${((us / totalUs) * 100).toFixed(1).padStart(6)}%  ${f.functionName.slice(0, 40).padEnd(40)}  ${where(f)}`);
}
