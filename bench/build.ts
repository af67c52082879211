/**
 * Bundles the benchmark servers (and the load generator) with push-relay's source into plain JavaScript (esbuild, as tsup
 * builds dist/), so the servers run on bare `node` as an installed package would: no tsx loader and
 * none of its per-closure `keepNames` wrappers on the hot path. Source maps let bench/profile-top.ts
 * point back into src/.
 */
import { buildSync } from 'esbuild';
import { join } from 'node:path';

export interface Built {
  servers: Record<'express' | 'node-http' | 'empty-app', string>;
  /** The load generator, bundled too: a run is not affected by edits made while it runs. */
  loadGenerator: string;
}

/** `outdir`: profiled runs build apart, so that their source maps outlive later runs' builds. */
export function buildBench(repoRoot: string, outdir = join(repoRoot, 'bench/results/build')): Built {
  buildSync({
    absWorkingDir: repoRoot,
    entryPoints: {
      'express-relay': 'bench/servers/express-relay.ts',
      'node-http-relay': 'bench/servers/node-http-relay.ts',
      'empty-app': 'bench/servers/empty-app.ts',
      'load-generator': 'bench/load/main.ts',
    },
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
    servers: {
      express: join(outdir, 'express-relay.js'),
      'node-http': join(outdir, 'node-http-relay.js'),
      'empty-app': join(outdir, 'empty-app.js'),
    },
    loadGenerator: join(outdir, 'load-generator.js'),
  };
}
