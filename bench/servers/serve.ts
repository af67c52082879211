/** What both benchmark relays share: listen on the port bench/run.ts chose, stop cleanly on SIGTERM. */
import type { Server } from 'node:http';
import type { PushRelay } from '../../src/index.js';

export function serveUntilSignalled(server: Server, relay: PushRelay): void {
  const port = Number(process.argv[2] ?? process.env.PORT ?? 8080);
  // WebSocket subscribers (scenario g) on the subscriber route, as docs/transports.md mounts them.
  void relay.handleUpgrade(server).catch((err: unknown) => process.stderr.write(`no WebSocket: ${String(err)}\n`));
  // Idle keep-alive connections stay open as long as nginx keeps them (keepalive_timeout 75s).
  server.keepAliveTimeout = 75_000;
  server.listen({ port, host: '127.0.0.1', backlog: 4096 }, () => {
    process.stdout.write(`listening ${port}\n`);
  });
  const stop = () => {
    // Exiting from the signal handler lets --cpu-prof write its profile.
    void relay.close().finally(() => process.exit(0));
    server.closeAllConnections();
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}
