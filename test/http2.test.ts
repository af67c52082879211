/**
 * HTTP/2 without TLS (h2c), through node:http2's compatibility API: long-poll and EventSource
 * subscribers, publishers (docs/deploy.md "HTTP/2").
 */
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createPushRelay, type PushRelay } from '../src/index.js';
import { waitFor, within } from './helpers/wait.js';

interface H2Answer {
  status: number;
  headers: http2.IncomingHttpHeaders;
  body: string;
}

describe('HTTP/2 (h2c)', () => {
  let relay: PushRelay;
  let server: http2.Http2Server;
  let session: http2.ClientHttp2Session;

  before(async () => {
    relay = createPushRelay();
    const handler = relay.handler({ '/pub': relay.publisher(), '/sub': relay.subscriber() });
    server = http2.createServer(handler);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    session = http2.connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  });
  after(async () => {
    session?.close();
    await relay?.close();
    await new Promise((r) => server.close(r));
  });

  /** One request on the shared session; `onData` sees the body as it comes. */
  function h2(path: string, options: { method?: string; headers?: Record<string, string>; body?: string; onData?: (text: string) => void } = {}): Promise<H2Answer> {
    return new Promise((resolve, reject) => {
      const stream = session.request({ ':method': options.method ?? 'GET', ':path': path, ...options.headers });
      let headers: http2.IncomingHttpHeaders = {};
      let body = '';
      stream.on('response', (h) => (headers = h));
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => {
        body += chunk;
        options.onData?.(body);
      });
      stream.on('end', () => resolve({ status: Number(headers[':status']), headers, body }));
      stream.on('error', reject);
      stream.end(options.body);
    });
  }

  it('a long-poll waits and gets the message; the publisher gets 201', async () => {
    const waiting = h2('/sub?id=lp');
    await waitFor('the long-poll to wait', async () => (await relay.channelInfo('lp'))?.subscribers === 1);
    const published = await h2('/pub?id=lp', { method: 'POST', body: 'over h2', headers: { 'content-type': 'text/plain' } });
    assert.equal(published.status, 201);
    const got = await within(waiting, 5000, 'long-poll over h2');
    assert.equal(got.status, 200);
    assert.equal(got.body, 'over h2');
    assert.equal(got.headers['content-type'], 'text/plain');
    assert.ok(got.headers['last-modified'] && got.headers.etag !== undefined, 'the cursor headers');
  });

  it('an EventSource stream gets every message, a gap included, then its end', async () => {
    // 11 messages in a buffer of 10: the oldest is gone, and a client from before it missed it.
    for (let i = 0; i < 10; i++) await relay.publish('es', `old ${i}`);
    await relay.publish('es', 'stored');
    let seen = '';
    const stream = h2('/sub?id=es', { headers: { accept: 'text/event-stream', 'last-event-id': '1:0' }, onData: (text) => (seen = text) });
    await waitFor('the stored message', () => seen.includes('data: stored'));
    assert.match(seen, /event: push-relay-missed/, 'the loss signal goes out in two frames at once');
    await relay.publish('es', 'live');
    await waitFor('the live message', () => seen.includes('data: live'));
    await relay.deleteChannel('es');
    const done = await within(stream, 5000, 'the stream to end');
    assert.equal(done.status, 200);
    assert.match(String(done.headers['content-type']), /^text\/event-stream/);
    assert.match(done.body, /event: push-relay-end\ndata: deleted\n\n$/);
  });
});
