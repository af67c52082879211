/**
 * push-relay/client in Chromium, on every transport: 100 messages in order; the app restarted under
 * the page; the network cut by a TCP proxy and restored; a reload with `persist`; two tabs sharing
 * one connection, the leader tab closed; WebSocket upgrades refused. Zero lost, zero twice in all.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import type { SubscribeOptions, subscribe } from '../../src/client/index.js';
import { relayApp, tcpProxy, type RelayApp } from '../client/fixture.js';
import { waitFor } from '../helpers/wait.js';
import { browserSkip, launchBrowser } from './browser.js';

type TransportName = 'websocket' | 'eventsource' | 'long-poll';
const TRANSPORTS: TransportName[] = ['websocket', 'eventsource', 'long-poll'];

interface PageState {
  got: string[];
  transports: string[];
  states: string[];
}
declare const window: PageState & { pushRelay: { subscribe: typeof subscribe }; sub: { close(): void } };

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => `m${from + i}`);

/** Opens `origin`'s page and subscribes there to `path`; the page records what it receives. */
async function subscribeIn(page: Page, origin: string, path: string, options: SubscribeOptions, navigate = true): Promise<void> {
  if (navigate) await page.goto(`${origin}/`);
  await page.evaluate(
    ([path, options]) => {
      window.got = [];
      window.transports = [];
      window.states = [];
      window.sub = window.pushRelay
        .subscribe(path, { backoff: { initial: 100, max: 1000 }, ...options })
        .on('message', (data, meta) => {
          window.got.push(String(data));
          window.transports.push(meta.transport);
        })
        .on('status', (s) => window.states.push(`${s.state}:${s.transport}`));
    },
    [path, options] as const,
  );
}

const state = (page: Page): Promise<PageState> => page.evaluate(() => ({ got: window.got, transports: window.transports, states: window.states }));

async function received(page: Page, n: number, timeout = 15_000): Promise<PageState> {
  let last: PageState | undefined;
  await waitFor(`${n} messages in the page`, async () => (last = await state(page)).got.length >= n, timeout).catch((err: Error) => {
    throw new Error(`${err.message}; page has ${JSON.stringify(last)}`);
  });
  return last!;
}

describe('push-relay/client in Chromium', { skip: browserSkip }, () => {
  let browser: Browser;
  let context: BrowserContext;
  let app: RelayApp;
  let n = 0;
  const channel = () => `b${++n}`;
  before(async () => {
    browser = await launchBrowser();
    app = await relayApp();
  });
  after(async () => {
    await browser?.close();
    await app?.close();
  });

  for (const transport of TRANSPORTS) {
    describe(transport, () => {
      before(async () => {
        context = await browser.newContext();
      });
      after(async () => {
        await context.close();
      });

      it('100 messages in order, once', { timeout: 60_000 }, async () => {
        const id = channel();
        const page = await context.newPage();
        for (const m of range(0, 40)) await app.publish(id, m);
        await subscribeIn(page, app.url(''), `/sub?id=${id}`, { transports: [transport] });
        await received(page, 40);
        for (const m of range(40, 100)) await app.publish(id, m);
        const s = await received(page, 100);
        assert.deepEqual(s.got, range(0, 100));
        assert.ok(s.transports.every((t) => t === transport));
        await page.close();
      });

      it('the app restarted mid-stream: nothing lost, nothing twice', { timeout: 60_000 }, async () => {
        const id = channel();
        const page = await context.newPage();
        await subscribeIn(page, app.url(''), `/sub?id=${id}`, { transports: [transport] });
        for (const m of range(0, 10)) await app.publish(id, m);
        await received(page, 10);
        await app.stop();
        for (const m of range(10, 15)) await app.publish(id, m);
        await app.start();
        for (const m of range(15, 25)) await app.publish(id, m);
        const s = await received(page, 25);
        assert.deepEqual(s.got, range(0, 25));
        assert.ok(s.states.includes(`reconnecting:${transport}`), s.states.join());
        await page.close();
      });

      it('the network cut and restored: nothing lost, nothing twice', { timeout: 60_000 }, async () => {
        const id = channel();
        const proxy = await tcpProxy(app.port);
        const page = await context.newPage();
        try {
          await subscribeIn(page, proxy.url(''), `/sub?id=${id}`, { transports: [transport] });
          for (const m of range(0, 10)) await app.publish(id, m);
          await received(page, 10);
          await proxy.cut();
          for (const m of range(10, 20)) await app.publish(id, m);
          await waitFor('the page to notice the cut', async () => (await state(page)).states.at(-1) === `reconnecting:${transport}`);
          await proxy.restore();
          for (const m of range(20, 30)) await app.publish(id, m);
          const s = await received(page, 30);
          assert.deepEqual(s.got, range(0, 30));
        } finally {
          await page.close();
          await proxy.close();
        }
      });

      it("a reload with persist: 'session' resumes where the page was", { timeout: 60_000 }, async () => {
        const id = channel();
        const page = await context.newPage();
        const options: SubscribeOptions = { transports: [transport], persist: 'session' };
        await subscribeIn(page, app.url(''), `/sub?id=${id}`, options);
        for (const m of range(0, 10)) await app.publish(id, m);
        await received(page, 10);
        await page.reload();
        for (const m of range(10, 15)) await app.publish(id, m);
        await subscribeIn(page, app.url(''), `/sub?id=${id}`, options, false);
        for (const m of range(15, 20)) await app.publish(id, m);
        const s = await received(page, 10);
        assert.deepEqual(s.got, range(10, 20), 'the reloaded page gets what came after, nothing again');
        await page.close();
      });

      it('two tabs share one connection; the leader tab closes and the other takes over without a gap', { timeout: 60_000 }, async () => {
        const id = channel();
        const options: SubscribeOptions = { transports: [transport], shareAcrossTabs: true };
        const [a, b] = [await context.newPage(), await context.newPage()];
        await subscribeIn(a, app.url(''), `/sub?id=${id}`, options);
        await waitFor('tab A connected', async () => (await state(a)).states.includes(`open:${transport}`));
        await subscribeIn(b, app.url(''), `/sub?id=${id}`, options);
        for (const m of range(0, 10)) await app.publish(id, m);
        await received(a, 10);
        await received(b, 10);
        assert.equal((await app.relay.channelInfo(id))?.subscribers, 1, 'one connection for both tabs');
        await a.close();
        for (const m of range(10, 20)) await app.publish(id, m);
        const s = await received(b, 20);
        assert.deepEqual(s.got, range(0, 20));
        await waitFor('one connection, from tab B', async () => (await app.relay.channelInfo(id))?.subscribers === 1);
        await b.close();
      });
    });
  }

  it('a tab that joins late gets what the leading tab already received, then every new message', { timeout: 60_000 }, async () => {
    const ctx = await browser.newContext();
    try {
      const id = channel();
      const options: SubscribeOptions = { transports: ['websocket'], shareAcrossTabs: true };
      const a = await ctx.newPage();
      await subscribeIn(a, app.url(''), `/sub?id=${id}`, options);
      for (const m of range(0, 5)) await app.publish(id, m);
      await received(a, 5);
      const b = await ctx.newPage();
      await subscribeIn(b, app.url(''), `/sub?id=${id}`, options);
      await received(b, 5);
      for (const m of range(5, 8)) await app.publish(id, m);
      assert.deepEqual((await received(b, 8)).got, range(0, 8));
      await waitFor('tab B knows the connection is open', async () => (await state(b)).states.includes('open:websocket'));
      assert.equal((await app.relay.channelInfo(id))?.subscribers, 1);
    } finally {
      await ctx.close();
    }
  });

  it("a follower tab reloaded with persist gets what was published during its reload", { timeout: 60_000 }, async () => {
    const ctx = await browser.newContext();
    try {
      const id = channel();
      const options: SubscribeOptions = { transports: ['eventsource'], shareAcrossTabs: true, persist: 'session' };
      const a = await ctx.newPage();
      await subscribeIn(a, app.url(''), `/sub?id=${id}`, options);
      await waitFor('tab A connected', async () => (await state(a)).states.includes('open:eventsource'));
      const b = await ctx.newPage();
      await subscribeIn(b, app.url(''), `/sub?id=${id}`, options);
      for (const m of range(0, 5)) await app.publish(id, m);
      await received(b, 5);
      await b.reload();
      for (const m of range(5, 10)) await app.publish(id, m);
      await received(a, 10);
      await subscribeIn(b, app.url(''), `/sub?id=${id}`, options, false);
      for (const m of range(10, 12)) await app.publish(id, m);
      assert.deepEqual((await received(b, 7)).got, range(5, 12));
    } finally {
      await ctx.close();
    }
  });

  it('WebSocket upgrades refused: falls back to EventSource and loses nothing', { timeout: 60_000 }, async () => {
    const noWs = await relayApp({ webSocket: false });
    const ctx = await browser.newContext();
    try {
      const id = channel();
      const page = await ctx.newPage();
      for (const m of range(0, 10)) await noWs.publish(id, m);
      await subscribeIn(page, noWs.url(''), `/sub?id=${id}`, {});
      await received(page, 10);
      for (const m of range(10, 20)) await noWs.publish(id, m);
      const s = await received(page, 20);
      assert.deepEqual(s.got, range(0, 20));
      assert.deepEqual([...new Set(s.transports)], ['eventsource']);
    } finally {
      await ctx.close();
      await noWs.close();
    }
  });
});
