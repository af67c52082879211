/**
 * The benchmark's bare `node:http` relay: the same two middlewares as express-relay.ts, routed by
 * path without a framework (as examples/plain-http.ts does).
 */
import { createServer } from 'node:http';
import { createPushRelay } from '../../src/index.js';
import { serveUntilSignalled } from './serve.js';

const relay = createPushRelay({ maxReservedMemory: '32mb' });
const publisher = relay.publisher({ messageTimeout: '2h', maxMessageBufferLength: 10 });
const subscriber = relay.subscriber({ concurrency: 'broadcast', defaultContentType: 'text/plain' });

const server = createServer((req, res) => {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  if (path === '/publish') publisher(req, res);
  else if (path === '/activity') subscriber(req, res);
  else {
    res.writeHead(404, { 'Content-Length': '0' });
    res.end();
  }
});

serveUntilSignalled(server, relay);
