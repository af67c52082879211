/**
 * Nchan's own browser client, NchanSubscriber (npm `nchan`, unmodified), against push-relay in
 * Chromium on each of its transports: delivery in order, resume from a given id, and a page reload
 * with `reconnect: 'session'` (on long-poll it then sends its id as a request `Etag` header).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { after, before, describe, it } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { relayApp, type RelayApp } from '../client/fixture.js';
import { waitFor } from '../helpers/wait.js';
import { browserSkip, launchBrowser } from './browser.js';

const NCHAN_SUBSCRIBER = readFileSync(createRequire(import.meta.url).resolve('nchan/NchanSubscriber.js'));
const PAGE = '<!doctype html><meta charset="utf-8"><title>nchan</title><script src="/NchanSubscriber.js"></script>';

interface NchanPage {
  got: string[];
  ids: string[];
  sub: { start(): void; stop(): void; lastMessageId: string };
}
declare const window: NchanPage & {
  NchanSubscriber: new (url: string, options: Record<string, unknown>) => NchanPage['sub'] & { on(event: string, listener: (...args: never[]) => void): void };
};

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => `m${from + i}`);

async function start(page: Page, url: string, options: Record<string, unknown>): Promise<void> {
  await page.evaluate(
    ([url, options]) => {
      window.got = [];
      window.ids = [];
      const sub = new window.NchanSubscriber(url, options);
      sub.on('message', (message: string, meta: { id: string }) => {
        window.got.push(message);
        window.ids.push(meta.id);
      });
      sub.start();
      window.sub = sub;
    },
    [url, options] as const,
  );
}

async function received(page: Page, n: number): Promise<{ got: string[]; ids: string[] }> {
  let last: { got: string[]; ids: string[] } = { got: [], ids: [] };
  await waitFor(`${n} messages`, async () => (last = await page.evaluate(() => ({ got: window.got, ids: window.ids }))).got.length >= n, 15_000).catch((err: Error) => {
    throw new Error(`${err.message}; page has ${JSON.stringify(last)}`);
  });
  return last;
}

describe('NchanSubscriber (npm nchan) against push-relay, in Chromium', { skip: browserSkip }, () => {
  let browser: Browser;
  let app: RelayApp;
  let n = 0;
  const channel = () => `n${++n}`;
  before(async () => {
    browser = await launchBrowser();
    app = await relayApp({ files: { '/nchan.html': ['text/html', PAGE], '/NchanSubscriber.js': ['application/javascript', NCHAN_SUBSCRIBER] } });
  });
  after(async () => {
    await browser?.close();
    await app?.close();
  });

  for (const transport of ['websocket', 'eventsource', 'longpoll']) {
    describe(transport, () => {
      let context: BrowserContext;
      before(async () => {
        context = await browser.newContext();
      });
      after(async () => {
        await context.close();
      });

      it('delivers stored and live messages in order, with time:tag ids', { timeout: 60_000 }, async () => {
        const id = channel();
        const page = await context.newPage();
        await page.goto(app.url('/nchan.html'));
        for (const m of range(0, 5)) await app.publish(id, m);
        await start(page, app.url(`/sub?id=${id}`), { subscriber: transport });
        await received(page, 5);
        for (const m of range(5, 20)) await app.publish(id, m);
        const s = await received(page, 20);
        assert.deepEqual(s.got, range(0, 20));
        for (const i of s.ids) assert.match(i, /^\d+:\d+$/);
        await page.close();
      });

      it('resumes after the id it is given, nothing again', { timeout: 60_000 }, async () => {
        const id = channel();
        const page = await context.newPage();
        await page.goto(app.url('/nchan.html'));
        for (const m of range(0, 6)) await app.publish(id, m);
        await start(page, app.url(`/sub?id=${id}`), { subscriber: transport });
        const first = await received(page, 6);
        await page.evaluate(() => window.sub.stop());
        await start(page, app.url(`/sub?id=${id}`), { subscriber: transport, id: first.ids[2] });
        await app.publish(id, 'm6');
        const s = await received(page, 4);
        assert.deepEqual(s.got, ['m3', 'm4', 'm5', 'm6']);
        await page.close();
      });

      it("a reload with reconnect: 'session' resumes where the page was", { timeout: 60_000 }, async () => {
        const id = channel();
        const page = await context.newPage();
        await page.goto(app.url('/nchan.html'));
        const url = app.url(`/sub?id=${id}`);
        await start(page, url, { subscriber: transport, reconnect: 'session' });
        for (const m of range(0, 5)) await app.publish(id, m);
        await received(page, 5);
        await page.reload();
        for (const m of range(5, 8)) await app.publish(id, m);
        await start(page, url, { subscriber: transport, reconnect: 'session' });
        for (const m of range(8, 10)) await app.publish(id, m);
        const s = await received(page, 5);
        assert.deepEqual(s.got, range(5, 10));
        await page.close();
      });
    });
  }
});
