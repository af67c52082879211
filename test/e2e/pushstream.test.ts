/**
 * The Nginx Push Stream Module's browser client, pushstream.js (../shared/clients/pushstream.js, as
 * its authors ship it, loaded from there), against examples/push-stream.ts in Chromium: each of its
 * modes (eventsource, websocket, stream = forever-iframe, longpolling), with backtrack, resume after
 * a reconnect, the channel-deleted callback, and publishing from the client.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { foreverIframeApp } from '../../examples/forever-iframe.js';
import { pushStreamApp } from '../../examples/push-stream.js';
import type { PushRelay } from '../../src/index.js';
import { request } from '../helpers/http-client.js';
import { waitFor } from '../helpers/wait.js';
import { browserSkip, launchBrowser } from './browser.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const PUSHSTREAM_JS = process.env.PUSHSTREAM_JS ?? join(root, '..', 'shared', 'clients', 'pushstream.js');
const missing = !existsSync(PUSHSTREAM_JS);
const skip = browserSkip || (missing && !process.env.CI ? `pushstream.js not found at ${PUSHSTREAM_JS} (set PUSHSTREAM_JS)` : false);

const PAGE = '<!doctype html><meta charset="utf-8"><title>pushstream</title><body><script src="/pushstream.js"></script></body>';

interface Received {
  text: string;
  id: number;
  channel: string;
}
interface PushStreamClient {
  addChannel(name: string, options?: { backtrack?: number }): void;
  connect(): void;
  disconnect(): void;
  sendMessage(text: string): void;
  onmessage: (text: string, id: number, channel: string) => void;
  onchanneldeleted: (channel: string) => void;
  onstatuschange: (state: number) => void;
  wrapper: { type: string };
}
declare const window: {
  PushStream: new (settings: Record<string, unknown>) => PushStreamClient;
  ps: PushStreamClient;
  got: Received[];
  deleted: string[];
  states: number[];
  location: { hostname: string; port: string };
};

async function connect(page: Page, mode: string, channels: Array<[string, number?]>): Promise<void> {
  await page.evaluate(
    ([mode, channels, controlByArgument]) => {
      // pushstream.js names its iframe stream by its index among the page's PushStreams, and sends an
      // empty streamid for the first one (0 is falsy to its escapeText), which then never registers:
      // a first instance that the page does not use.
      if (!window.ps) window.ps = new window.PushStream({ host: window.location.hostname, port: window.location.port });
      window.got = [];
      window.deleted = [];
      window.states = [];
      const ps = new window.PushStream({ host: window.location.hostname, port: window.location.port, modes: mode, reconnectOnTimeoutInterval: 300, reconnectOnChannelUnavailableInterval: 300, messagesControlByArgument: controlByArgument, timeout: 30000 });
      ps.onmessage = (text, id, channel) => window.got.push({ text, id, channel });
      ps.onchanneldeleted = (channel) => window.deleted.push(channel);
      ps.onstatuschange = (state) => window.states.push(state);
      for (const [name, backtrack] of channels) ps.addChannel(name, backtrack ? { backtrack } : {});
      ps.connect();
      window.ps = ps;
    },
    // A stream or a WebSocket that reconnects can name its position only in query arguments (the
    // last message's time and tag): messagesControlByArgument. EventSource reconnects with
    // Last-Event-ID and long-polling sends the cursor headers, exact with several channels too.
    [mode, channels, mode === 'stream' || mode === 'websocket'] as const,
  );
  // PushStream.OPEN is 2.
  await waitFor(`${mode} to open`, () => page.evaluate(() => window.states.includes(2)), 15_000);
}

async function received(page: Page, n: number): Promise<Received[]> {
  let last: Received[] = [];
  await waitFor(`${n} messages`, async () => (last = await page.evaluate(() => window.got)).length >= n, 15_000).catch((err: Error) => {
    throw new Error(`${err.message}; page has ${JSON.stringify(last)}`);
  });
  return last;
}

describe('examples/forever-iframe.ts in Chromium', { skip: browserSkip }, () => {
  it('the page registers the stream frame and shows each message as it is published; pings are ignored', { timeout: 60_000 }, async () => {
    const { app, relay } = foreverIframeApp();
    const server = await new Promise<Server>((done) => {
      const s = app.listen(0, '127.0.0.1', () => done(s));
    });
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const browser = await launchBrowser();
    try {
      const page = await browser.newPage();
      // The frame never finishes loading (that is the point): wait for the page itself only.
      await page.goto(`${url}/`, { waitUntil: "domcontentloaded" });
      await page.waitForSelector('body[data-registered="yes"]', { timeout: 15_000 });
      await waitFor('the frame to be counted in', async () => (await relay.channelInfo('news'))?.subscribers === 1);
      await request(`${url}/pub?id=news`, { method: 'POST', body: encodeURIComponent("it's </script> & more").replace(/'/g, '%27') });
      await request(`${url}/pub?id=news`, { method: 'POST', body: 'second' });
      await page.waitForFunction("document.querySelectorAll('#messages li').length === 2", undefined, { timeout: 15_000 });
      const items = await page.$$eval('#messages li', (lis) => lis.map((li) => li.textContent));
      assert.deepEqual(items, ["news #1: it's </script> & more", 'news #2: second']);
    } finally {
      await browser.close();
      await relay.close();
      server.closeAllConnections();
      server.close();
    }
  });
});

describe('pushstream.js (the Push Stream Module client, unmodified) against examples/push-stream.ts, in Chromium', { skip }, () => {
  let browser: Browser;
  let relay: PushRelay;
  let server: Server;
  let base = '';
  let n = 0;
  const channel = () => `ps${++n}x${process.pid}`;
  const publish = (ch: string, text: string) => request(`${base}/pub?id=${ch}`, { method: 'POST', body: text });

  before(async () => {
    assert.ok(!missing, `pushstream.js not found at ${PUSHSTREAM_JS}: the tests load it from ../shared/clients (or PUSHSTREAM_JS)`);
    const made = pushStreamApp();
    relay = made.relay;
    const script = readFileSync(PUSHSTREAM_JS);
    made.app.get('/page.html', (_req, res) => res.type('html').send(PAGE));
    made.app.get('/pushstream.js', (_req, res) => res.type('application/javascript').send(script));
    server = await new Promise<Server>((done) => {
      const s = made.app.listen(0, '127.0.0.1', () => done(s));
    });
    await relay.handleUpgrade(server);
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await relay?.close();
    server?.closeAllConnections();
    server?.close();
  });

  for (const mode of ['eventsource', 'websocket', 'stream', 'longpolling']) {
    describe(mode, () => {
      let context: BrowserContext;
      before(async () => {
        context = await browser.newContext();
      });
      after(async () => {
        await context.close();
      });

      it('backtrack, then live messages on two channels, in order, with their ~id~', { timeout: 60_000 }, async () => {
        const [a, b] = [channel(), channel()];
        for (const text of ['old1', 'old2', 'old3']) await publish(a, text);
        const page = await context.newPage();
        await page.goto(`${base}/page.html`);
        await connect(page, mode, [[a, 2], [b]]);
        const backtracked = await received(page, 2);
        assert.deepEqual(
          backtracked.map((m) => [m.text, m.id, m.channel]),
          [
            ['old2', 2, a],
            ['old3', 3, a],
          ],
        );
        await publish(b, encodeURIComponent('hello b'));
        await publish(a, 'live');
        const all = await received(page, 4);
        // In order within each channel; across channels, messages a poll finds waiting come by id.
        assert.deepEqual(
          all
            .slice(2)
            .map((m) => [m.text, m.id, m.channel])
            .sort(),
          [
            ['hello b', 1, b],
            ['live', 4, a],
          ],
        );
        await page.close();
      });

      it('resumes after a reconnect without losing or repeating a message, and reports a deleted channel', { timeout: 60_000 }, async () => {
        const ch = channel();
        const page = await context.newPage();
        await page.goto(`${base}/page.html`);
        await connect(page, mode, [[ch]]);
        await publish(ch, 'first');
        await received(page, 1);
        // The first message of a later second has tag 0, which pushstream.js sends back as `tag=`.
        await new Promise((r) => setTimeout(r, 1005 - (Date.now() % 1000)));
        await publish(ch, 'tag-zero');
        await received(page, 2);
        // The server side goes away under the client (a relay restart, a proxy cutting idle streams);
        // what is published meanwhile, most likely in the same second, comes after (time, 0).
        await relay.disconnect({ channel: ch });
        await publish(ch, 'while-away');
        await publish(ch, 'after');
        const got = await received(page, 4);
        assert.deepEqual(
          got.map((m) => m.text),
          ['first', 'tag-zero', 'while-away', 'after'],
        );
        // A long-poll sees the deletion only while it waits (between two polls there is nobody to tell).
        await waitFor('the client to wait', async () => (await relay.store.info(`/${ch}`))?.subscribers === 1);
        await request(`${base}/pub?id=${ch}`, { method: 'DELETE' });
        await waitFor('the channel-deleted callback', () => page.evaluate(() => window.deleted.length > 0), 15_000);
        assert.deepEqual(await page.evaluate(() => window.deleted), [ch]);
        await page.close();
      });

      it('publishes from the client (WebSocket frames, else a POST to /pub)', { timeout: 60_000 }, async () => {
        const ch = channel();
        const page = await context.newPage();
        await page.goto(`${base}/page.html`);
        await connect(page, mode, [[ch]]);
        await page.evaluate(() => window.ps.sendMessage('from the page & co'));
        const [m] = await received(page, 1);
        assert.equal(m!.text, 'from the page & co');
        assert.equal(m!.channel, ch);
        await page.close();
      });
    });
  }
});
