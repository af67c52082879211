/**
 * A browser's EventSource stops for good after any answer but a 200 event stream (HTML Living
 * Standard, "fail the connection"). Refusals a retry can cure must therefore reach it as a stream
 * that ends with a reconnection hint: here, in Chromium, a relay restarted under the page, and a store
 * that is down for a while. The page's EventSource reconnects by itself and gets what comes next.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { createPushRelay, MemoryStore, type PushRelay } from '../../src/index.js';
import { storeUnavailable } from '../../src/protocol/answers.js';
import { waitFor } from '../helpers/wait.js';
import { browserSkip, launchBrowser } from './browser.js';

declare const window: { got: string[]; ends: string[] };
declare class EventSource {
  constructor(url: string);
  readyState: number;
  onmessage: (e: { data: string }) => void;
  addEventListener(type: string, listener: (e: { data: string }) => void): void;
}

const PAGE = '<!doctype html><title>es</title>';

/** A node:http server on `port` (0: any) serving the page and the relay's /sub; counts /sub requests. */
async function serve(relay: PushRelay, port = 0) {
  let requests = 0;
  const sub = relay.subscriber();
  const server = http.createServer(
    relay.handler(
      {
        '/sub': (req, res) => {
          requests++;
          sub(req, res);
        },
      },
      (_req, res) => res.writeHead(200, { 'Content-Type': 'text/html' }).end(PAGE),
    ),
  );
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    server,
    port: (server.address() as AddressInfo).port,
    requests: () => requests,
    close: () => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve()))),
  };
}

async function openEventSource(page: Page, url: string): Promise<void> {
  await page.goto(url);
  await page.evaluate(() => {
    window.got = [];
    window.ends = [];
    const source = new EventSource('/sub?id=room');
    source.onmessage = (e) => window.got.push(e.data);
    source.addEventListener('push-relay-end', (e) => window.ends.push(e.data));
    (window as unknown as { source: EventSource }).source = source;
  });
}

const readyState = (page: Page) => page.evaluate(() => (window as unknown as { source: EventSource }).source.readyState);

describe('EventSource in Chromium across refusals a retry can cure', { skip: browserSkip }, () => {
  let browser: Browser;
  before(async () => {
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
  });

  it('a relay that closes and comes back: the page reconnects by itself and gets the next message', { timeout: 60_000 }, async () => {
    const first = createPushRelay();
    const second = createPushRelay();
    const a = await serve(first);
    let b: Awaited<ReturnType<typeof serve>> | undefined;
    const page = await browser.newPage();
    try {
      await openEventSource(page, `http://127.0.0.1:${a.port}/`);
      await waitFor('the page subscribed', async () => (await first.channelInfo('room'))?.subscribers === 1);
      await first.publish('room', 'before the restart');
      await page.waitForFunction(() => window.got.length === 1, undefined, { timeout: 5000 });

      await first.close();
      await page.waitForFunction(() => window.ends.includes('closing'), undefined, { timeout: 5000 });
      // The closed relay keeps its port a while (a draining process): the page comes back to it first.
      const before = a.requests();
      await waitFor('the page to retry the closing relay', () => a.requests() > before, 10_000);
      await page.waitForFunction(() => window.ends.length >= 2, undefined, { timeout: 5000 });
      await a.close();
      b = await serve(second, a.port);
      // The browser waits the hint (1-3 s), then reconnects with its Last-Event-ID.
      await waitFor('the page to come back', async () => (await second.channelInfo('room'))?.subscribers === 1, 10_000);
      await second.publish('room', 'after the restart');
      await page.waitForFunction(() => window.got.length === 2, undefined, { timeout: 5000 });
      assert.deepEqual(await page.evaluate(() => window.got), ['before the restart', 'after the restart']);
      assert.notEqual(await readyState(page), 2, 'the EventSource is not CLOSED');
    } finally {
      await page.close();
      await second.close();
      await a.close();
      await b?.close();
    }
  });

  it('a store that is down: the page keeps retrying, and gets messages once it is back', { timeout: 60_000 }, async () => {
    let down = true;
    class FlakyStore extends MemoryStore {
      override async join(...args: Parameters<MemoryStore['join']>) {
        if (down) throw storeUnavailable('connection refused (test)');
        return super.join(...args);
      }
    }
    const relay = createPushRelay({ store: new FlakyStore() });
    const server = await serve(relay);
    const page = await browser.newPage();
    try {
      await openEventSource(page, `http://127.0.0.1:${server.port}/`);
      await waitFor('a second request', () => server.requests() >= 2, 20_000).catch(() => {});
      assert.ok(server.requests() >= 2, `the page stopped after ${server.requests()} request(s)`);
      assert.ok((await page.evaluate(() => window.ends)).includes('unavailable'));
      assert.notEqual(await readyState(page), 2, 'the EventSource is not CLOSED');

      down = false;
      await waitFor('the page to subscribe once the store is back', async () => (await relay.channelInfo('room'))?.subscribers === 1, 10_000);
      await relay.publish('room', 'store is back');
      await page.waitForFunction(() => window.got.includes('store is back'), undefined, { timeout: 5000 });
    } finally {
      await page.close();
      await relay.close();
      await server.close();
    }
  });
});
