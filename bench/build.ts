/**
 * Bundles the benchmark servers (and the load generator) with push-relay's source into plain JavaScript (esbuild, as tsup
 * builds dist/), so the servers run on bare `node` as an installed package would: no tsx loader and
 * none of its per-closure `keepNames` wrappers on the hot path. Source maps let bench/profile-top.ts
 * point back into src/.
 */
import { buildSync } from 'esbuild';
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { basename, join } from 'node:path';

/** Each bundled server: its name in `Built.servers` and its entry point. */
const SERVERS = {
  express: 'bench/servers/express-relay.ts',
  'node-http': 'bench/servers/node-http-relay.ts',
  'minimal-app': 'bench/servers/minimal-app.ts',
  // Node alternatives to push-relay (bench/servers/alt-*.ts).
  'alt-straightforward-express': 'bench/servers/alt-straightforward-express.ts',
  'alt-better-sse': 'bench/servers/alt-better-sse.ts',
  'alt-sse-channel': 'bench/servers/alt-sse-channel.ts',
  'alt-express-longpoll': 'bench/servers/alt-express-longpoll.ts',
} as const;
export type ServerName = keyof typeof SERVERS;
/** A server's bundle is named after its entry point: bench/servers/express-relay.ts -> express-relay.js. */
const bundleName = (entry: string) => basename(entry, '.ts');

export interface Built {
  servers: Record<ServerName, string>;
  /** The load generator (bench/load/loadgen.c), compiled: a run is not affected by edits made while it runs. */
  loadGenerator: string;
}

/** `outdir`: profiled runs build apart, so that their source maps outlive later runs' builds. */
export function buildBench(repoRoot: string, outdir = join(repoRoot, 'bench/results/build')): Built {
  buildSync({
    absWorkingDir: repoRoot,
    entryPoints: Object.fromEntries(Object.values(SERVERS).map((entry) => [bundleName(entry), entry])),
    outdir,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: `node${process.versions.node.split('.')[0]}`,
    // Dependencies (express, raw-body, ...) load from node_modules as they would for a user.
    packages: 'external',
    sourcemap: 'linked',
    logLevel: 'error',
  });
  return {
    servers: Object.fromEntries(Object.entries(SERVERS).map(([name, entry]) => [name, join(outdir, `${bundleName(entry)}.js`)])) as Record<ServerName, string>,
    loadGenerator: compileLoadGenerator(repoRoot, outdir),
  };
}

/** Builds bench/load/loadgen.c with the machine's C compiler (`$CC`, else cc, else gcc). */
function compileLoadGenerator(repoRoot: string, outdir: string): string {
  mkdirSync(outdir, { recursive: true });
  const out = join(outdir, 'loadgen');
  const compilers = process.env.CC ? [process.env.CC] : ['cc', 'gcc'];
  for (const cc of compilers) {
    const r = spawnSync(cc, ['-O2', '-Wall', '-Wextra', '-std=gnu11', '-o', out, join(repoRoot, 'bench/load/loadgen.c')], { encoding: 'utf8' });
    if (r.error) continue; // not installed: try the next one
    if (r.status !== 0) throw new Error(`${cc} could not build bench/load/loadgen.c:\n${r.stderr}`);
    return out;
  }
  throw new Error(`the load generator is C and needs a compiler: none of ${compilers.join(', ')} was found (apt-get install gcc, or set CC)`);
}
