/**
 * No framework: the middlewares on a bare `http.createServer`, routing two paths by hand.
 *
 * Without `next`, an unexpected error (a throwing resolver or hook, a failing store) is answered with a
 * plain 500 by the middleware itself; protocol answers (400, 403, 404, 405, 409, 410, 413, 507) are
 * the same as under Express.
 *
 * Run: PORT=8080 npx tsx examples/plain-http.ts
 *   curl -i 'localhost:8080/activity?id=a'           (waits)
 *   curl -i -d hello 'localhost:8080/publish?id=a'    (201: the waiting request got it)
 */
import { createServer } from 'node:http';
import { createPushRelay } from '../src/index.js';

// The default resolver reads the `id` query argument from req.url: no framework needed.
const relay = createPushRelay({ messageTimeout: '2h' });
const publisher = relay.publisher();
const subscriber = relay.subscriber({ subscriberTimeout: '60s' });

const server = createServer((req, res) => {
  const path = new URL(req.url ?? '/', 'http://localhost').pathname;
  if (path === '/publish') {
    publisher(req, res);
  } else if (path === '/activity') {
    subscriber(req, res);
  } else {
    res.writeHead(404, { 'Content-Type': 'text/plain' });
    res.end('not found: use /publish?id=<channel> or /activity?id=<channel>\n');
  }
});

const port = Number(process.env.PORT ?? 8080);
server.listen(port, () => {
  console.log(`plain-http example on http://localhost:${port}: /publish?id=<channel>, /activity?id=<channel>`);
});

const shutdown = () => void relay.close().then(() => server.close(() => process.exit(0)));
process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);
