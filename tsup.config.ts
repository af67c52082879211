import { defineConfig } from 'tsup';

export default defineConfig([
  {
    entry: { index: 'src/index.ts', redis: 'src/redis.ts' },
    format: ['esm', 'cjs'],
    dts: true,
    sourcemap: true,
    clean: false,
    target: 'node20',
    platform: 'node',
    splitting: false,
    // import.meta.url in the CommonJS build (createRequire of the optional redis peer).
    shims: true,
    // Keep every dependency (and the optional peers) external: users install them.
    skipNodeModulesBundle: true,
  },
  {
    // push-relay/client: for browsers and Node, no dependencies, nothing from the server side.
    entry: { client: 'src/client/index.ts' },
    format: ['esm', 'cjs'],
    dts: true,
    sourcemap: true,
    target: 'es2020',
    platform: 'neutral',
    splitting: false,
  },
]);
