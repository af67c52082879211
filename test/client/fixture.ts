/**
 * What the client tests run against: a push-relay app on a real port (publisher, subscriber on every
 * transport, WebSocket upgrades, a page and the client bundled for browsers) that can be restarted
 * on the same port over the same store, and a TCP proxy that can cut every connection.
 */
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { build } from 'esbuild';
import { createPushRelay, MemoryStore, type ChannelStore, type PushRelay, type SubscriberOptions } from '../../src/index.js';

let bundle: Promise<string> | undefined;

/** src/client bundled for a page: `window.pushRelay` is the module. */
export function clientBundle(): Promise<string> {
  bundle ??= build({ entryPoints: ['src/client/index.ts'], bundle: true, write: false, format: 'iife', globalName: 'pushRelay', target: 'es2020' }).then((r) => r.outputFiles[0]!.text);
  return bundle;
}

export interface AppOptions {
  subscriber?: SubscriberOptions;
  /** false: WebSocket upgrades are refused (as by a proxy that does not pass them). */
  webSocket?: boolean;
  /** Extra static files: path -> [content type, body]. */
  files?: Record<string, [string, string | Buffer]>;
}

export interface RelayApp {
  readonly store: ChannelStore;
  relay: PushRelay;
  port: number;
  url(path: string): string;
  /** Publishes from another relay over the same store (as another process would): works while the app is down. */
  publish(channel: string, data: string): Promise<void>;
  /** Stops the app (relay closed, connections cut), as a process exiting would. */
  stop(): Promise<void>;
  /** Starts it again on the same port, over the same store. */
  start(): Promise<void>;
  close(): Promise<void>;
}

const PAGE = '<!doctype html><meta charset="utf-8"><title>client test</title><script src="/client.js"></script>';

export async function relayApp(options: AppOptions = {}): Promise<RelayApp> {
  const store = new MemoryStore();
  const publisher = createPushRelay({ store, messageBufferLength: 1000 });
  const code = await clientBundle();
  let server: http.Server | undefined;
  let port = 0;
  const app: RelayApp = {
    store,
    relay: undefined as unknown as PushRelay,
    get port() {
      return port;
    },
    url: (path) => `http://127.0.0.1:${port}${path}`,
    async publish(channel, data) {
      await publisher.publish(channel, data);
    },
    async start() {
      const relay = createPushRelay({ store, messageBufferLength: 1000 });
      app.relay = relay;
      const files: Record<string, [string, string | Buffer]> = { '/': ['text/html', PAGE], '/client.js': ['application/javascript', code], ...options.files };
      const handler = relay.handler({ '/pub': relay.publisher(), '/sub': relay.subscriber(options.subscriber) }, (req, res) => {
        const file = files[(req.url ?? '/').split('?')[0]!];
        if (file) res.writeHead(200, { 'Content-Type': file[0] }).end(file[1]);
        else res.writeHead(404).end();
      });
      const s = http.createServer(handler);
      if (options.webSocket !== false) relay.handleUpgrade(s, handler);
      else s.on('upgrade', (_req, socket) => socket.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n'));
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.listen(port, '127.0.0.1', () => resolve());
      });
      server = s;
      port = (s.address() as AddressInfo).port;
    },
    async stop() {
      const s = server;
      server = undefined;
      await app.relay.close();
      if (!s) return;
      s.closeAllConnections();
      await new Promise<void>((resolve) => s.close(() => resolve()));
    },
    async close() {
      await app.stop();
      await publisher.close();
      await store.close();
    },
  };
  await app.start();
  return app;
}

export interface Proxy {
  port: number;
  url(path: string): string;
  /** Cuts every connection and refuses new ones until restore(). */
  cut(): Promise<void>;
  restore(): Promise<void>;
  close(): Promise<void>;
}

/** A TCP proxy to 127.0.0.1:`target`. */
export async function tcpProxy(target: number): Promise<Proxy> {
  const sockets = new Set<net.Socket>();
  let server: net.Server | undefined;
  let port = 0;
  const listen = async () => {
    const s = net.createServer((client) => {
      const upstream = net.connect(target, '127.0.0.1');
      for (const [a, b] of [[client, upstream], [upstream, client]] as const) {
        sockets.add(a);
        a.on('close', () => sockets.delete(a));
        a.on('error', () => b.destroy());
        a.on('close', () => b.destroy());
        a.pipe(b);
      }
    });
    await new Promise<void>((resolve) => s.listen(port, '127.0.0.1', () => resolve()));
    port = (s.address() as AddressInfo).port;
    server = s;
  };
  const cut = async () => {
    const s = server;
    server = undefined;
    for (const socket of sockets) socket.resetAndDestroy();
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  };
  await listen();
  return { get port() { return port; }, url: (path) => `http://127.0.0.1:${port}${path}`, cut, restore: listen, close: cut };
}
