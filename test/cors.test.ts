/** allowOrigin: CORS headers on every answer, OPTIONS preflights, and nothing of it when unset. */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, it } from 'node:test';
import express from 'express';
import { WebSocket } from 'ws';
import { createPushRelay, type PushRelay } from '../src/index.js';

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function request(port: number, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, headers, agent: false, timeout: 5000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: text }));
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer within 5 s`)));
    req.on('error', reject);
    req.end(body);
  });
}

async function listen(server: http.Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

const relays: PushRelay[] = [];
const servers: http.Server[] = [];
after(async () => {
  for (const relay of relays) await relay.close();
  for (const server of servers) server.close();
});

/** Express 5 with app.all (app.get would let Express answer OPTIONS itself), or bare node:http. */
async function start(kind: 'express' | 'node:http', allowOrigin?: string): Promise<number> {
  const relay = createPushRelay(allowOrigin ? { allowOrigin } : {});
  relays.push(relay);
  const publisher = relay.publisher();
  const subscriber = relay.subscriber({ subscriberTimeout: 200 });
  let server: http.Server;
  if (kind === 'express') {
    const app = express();
    app.all('/publish', publisher);
    app.all('/activity', subscriber);
    server = http.createServer(app);
  } else {
    server = http.createServer(relay.handler({ '/publish': publisher, '/activity': subscriber }));
  }
  servers.push(server);
  return listen(server);
}

for (const kind of ['express', 'node:http'] as const) {
  describe(`allowOrigin (${kind})`, () => {
    it("'*': preflight 200, and every answer lets the page read the cursor", async () => {
      const port = await start(kind, '*');
      const preflight = await request(port, 'OPTIONS', '/activity?id=c', {
        Origin: 'https://elsewhere.example',
        'Access-Control-Request-Method': 'GET',
        'Access-Control-Request-Headers': 'if-modified-since, if-none-match',
      });
      assert.equal(preflight.status, 200);
      assert.equal(preflight.headers['allow'], 'GET');
      assert.equal(preflight.headers['access-control-allow-origin'], '*');
      assert.equal(preflight.headers['access-control-allow-methods'], 'GET');
      assert.equal(preflight.headers['access-control-allow-headers'], 'if-modified-since, if-none-match');
      assert.equal(preflight.headers['access-control-allow-credentials'], undefined, 'no credentials with *');

      const published = await request(port, 'POST', '/publish?id=c', { Origin: 'https://elsewhere.example' }, 'hi');
      assert.equal(published.status, 202);
      assert.equal(published.headers['access-control-allow-origin'], '*');

      const message = await request(port, 'GET', '/activity?id=c', { Origin: 'https://elsewhere.example' });
      assert.equal(message.status, 200);
      assert.equal(message.body, 'hi');
      assert.equal(message.headers['access-control-allow-origin'], '*');
      assert.match(String(message.headers['access-control-expose-headers']), /Last-Modified/);
      assert.match(String(message.headers['access-control-expose-headers']), /Etag/);
      assert.equal(message.headers['vary'], 'If-None-Match, If-Modified-Since', 'the message keeps its own Vary');

      const timedOut = await request(port, 'GET', '/activity?id=c', {
        'If-Modified-Since': String(message.headers['last-modified']),
        'If-None-Match': String(message.headers['etag']),
      });
      assert.equal(timedOut.status, 304);
      assert.equal(timedOut.headers['access-control-allow-origin'], '*');

      const publisherPreflight = await request(port, 'OPTIONS', '/publish?id=c', { Origin: 'https://elsewhere.example', 'Access-Control-Request-Method': 'POST' });
      assert.equal(publisherPreflight.status, 200);
      assert.equal(publisherPreflight.headers['access-control-allow-methods'], 'GET, POST, PUT, DELETE');
    });

    it('one origin: named, with credentials', async () => {
      const port = await start(kind, 'https://app.example.com');
      await request(port, 'POST', '/publish?id=d', {}, 'x');
      const message = await request(port, 'GET', '/activity?id=d', { Origin: 'https://app.example.com' });
      assert.equal(message.status, 200);
      assert.equal(message.headers['access-control-allow-origin'], 'https://app.example.com');
      assert.equal(message.headers['access-control-allow-credentials'], 'true');
    });

    it('unset: OPTIONS is a method like any other (405) and no CORS header is sent', async () => {
      const port = await start(kind);
      const preflight = await request(port, 'OPTIONS', '/activity?id=e', { Origin: 'https://elsewhere.example', 'Access-Control-Request-Method': 'GET' });
      assert.equal(preflight.status, 405);
      assert.equal(preflight.headers['allow'], 'GET');
      await request(port, 'POST', '/publish?id=e', {}, 'x');
      const message = await request(port, 'GET', '/activity?id=e', { Origin: 'https://elsewhere.example' });
      assert.equal(message.status, 200);
      assert.equal(message.headers['access-control-allow-origin'], undefined);
    });
  });
}

describe('allowOrigin validation', () => {
  it('names the option for anything but * or one origin', () => {
    for (const bad of ['https://app.example.com/path', 'app.example.com', 'https://a.example, https://b.example', '', 42]) {
      assert.throws(() => createPushRelay({ allowOrigin: bad as string }), (err: unknown) => err instanceof TypeError && /"allowOrigin"/.test(err.message));
    }
    assert.doesNotThrow(() => createPushRelay({ allowOrigin: 'http://localhost:3000' }).close());
  });
});

describe('allowOrigin and WebSocket upgrades', () => {
  // Browsers apply no CORS to WebSockets: the relay itself must refuse pages of other origins.
  async function serveWs(allowOrigin: string) {
    const relay = createPushRelay({ allowOrigin });
    const server = http.createServer(relay.handler({ '/sub': relay.subscriber() }));
    await relay.handleUpgrade(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    return {
      relay,
      url: `ws://127.0.0.1:${port}/sub?id=ws`,
      close: async () => {
        await relay.close();
        server.closeAllConnections();
        await new Promise((r) => server.close(r));
      },
    };
  }

  /** The HTTP status of a refused upgrade, or 101 when the socket opened. */
  function upgradeStatus(url: string, origin?: string): Promise<number> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(url, origin ? { origin } : {});
      socket.once('open', () => {
        socket.terminate();
        resolve(101);
      });
      socket.once('unexpected-response', (_req, res) => {
        resolve(res.statusCode ?? 0);
        res.resume();
      });
      socket.once('error', (err) => reject(err));
    });
  }

  it('one origin: another origin gets 403 before any handshake; that origin and non-browser clients connect', async () => {
    const s = await serveWs('https://app.example.com');
    try {
      assert.equal(await upgradeStatus(s.url, 'https://evil.example.net'), 403);
      assert.equal(await s.relay.channelInfo('ws'), undefined, 'the refused one was never counted in');
      assert.equal(await upgradeStatus(s.url, 'https://app.example.com'), 101);
      assert.equal(await upgradeStatus(s.url, 'HTTPS://APP.EXAMPLE.COM'), 101, 'origins compare case-insensitively');
      assert.equal(await upgradeStatus(s.url), 101, 'no Origin header: not a page');
    } finally {
      await s.close();
    }
  });

  it("'*': any origin connects", async () => {
    const s = await serveWs('*');
    try {
      assert.equal(await upgradeStatus(s.url, 'https://anywhere.example'), 101);
    } finally {
      await s.close();
    }
  });
});
