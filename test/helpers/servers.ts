/**
 * Test servers on 127.0.0.1, port 0: plain node:http, Express 5, Express 4 and Connect, each mounting
 * a publisher and a subscriber (or any routes) the way a user would.
 */
import connect from 'connect';
import express from 'express';
import express4 from 'express4';
import http, { type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Middleware } from '../../src/index.js';

export interface TestServer {
  server: Server;
  port: number;
  /** `http://127.0.0.1:port` + path. */
  url(path: string): string;
  /** Errors the app's error handler received (via `next(err)`). */
  errors: unknown[];
  close(): Promise<void>;
}

export type Routes = Record<string, Middleware>;
export type Framework = 'node:http' | 'express5' | 'express4' | 'connect';
export const FRAMEWORKS: readonly Framework[] = ['node:http', 'express5', 'express4', 'connect'];

/** Starts `handler` on a fresh server. */
export async function listen(handler: (req: IncomingMessage, res: ServerResponse) => void, errors: unknown[] = []): Promise<TestServer> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    port,
    errors,
    url: (path) => `http://127.0.0.1:${port}${path}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Plain node:http: the middlewares are called without `next`. */
export function serveNodeHttp(routes: Routes): Promise<TestServer> {
  return listen((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    const mw = routes[path];
    if (mw) mw(req, res);
    else {
      res.writeHead(404, { 'Content-Type': 'text/plain' });
      res.end('no route\n');
    }
  });
}

/** The app's error handler: records the error and answers 500 with a recognisable body. */
function recordError(errors: unknown[]) {
  return (err: unknown, _req: IncomingMessage, res: ServerResponse, _next: (err?: unknown) => void) => {
    errors.push(err);
    res.statusCode = 500;
    res.setHeader('Content-Type', 'text/plain');
    res.end(`app error handler: ${err instanceof Error ? err.message : String(err)}`);
  };
}

/** Express 5 with `app.all(path, mw)` per route; `before` middlewares run first (e.g. body parsers). */
export function serveExpress5(routes: Routes, before: Middleware[] = []): Promise<TestServer> {
  const app = express();
  const errors: unknown[] = [];
  for (const [path, mw] of Object.entries(routes)) app.all(path, ...(before as express.RequestHandler[]), mw as express.RequestHandler);
  app.use(recordError(errors) as express.ErrorRequestHandler);
  return listen(app, errors);
}

export function serveExpress4(routes: Routes, before: Middleware[] = []): Promise<TestServer> {
  const app = express4();
  const errors: unknown[] = [];
  for (const [path, mw] of Object.entries(routes)) app.all(path, ...(before as express.RequestHandler[]), mw as express.RequestHandler);
  app.use(recordError(errors) as express.ErrorRequestHandler);
  return listen(app as unknown as (req: IncomingMessage, res: ServerResponse) => void, errors);
}

export function serveConnect(routes: Routes): Promise<TestServer> {
  const app = connect();
  const errors: unknown[] = [];
  for (const [path, mw] of Object.entries(routes)) {
    // connect matches prefixes: keep the route exact.
    app.use(path, ((req: IncomingMessage & { originalUrl?: string }, res: ServerResponse, next: (err?: unknown) => void) => {
      const exact = (req.originalUrl ?? req.url ?? '').split('?')[0] === path;
      if (exact) mw(req, res, next);
      else next();
    }) as connect.NextHandleFunction);
  }
  app.use(recordError(errors) as connect.ErrorHandleFunction);
  return listen(app, errors);
}

export function serve(framework: Framework, routes: Routes): Promise<TestServer> {
  switch (framework) {
    case 'node:http':
      return serveNodeHttp(routes);
    case 'express5':
      return serveExpress5(routes);
    case 'express4':
      return serveExpress4(routes);
    case 'connect':
      return serveConnect(routes);
  }
}
