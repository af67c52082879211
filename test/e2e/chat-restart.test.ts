/**
 * The chat example survives a restart of its server, on every transport, in Chromium: two pages in a
 * room, the server closed (relay.close()) and started again on the same port with a new process's
 * state (an empty store, a new cookie secret). Both pages reconnect by themselves, sign in again
 * with their nickname, and the conversation goes on: nothing lost, nothing shown twice. Also: an
 * unknown room says so once instead of retrying, and the page fits a 375 px wide phone screen.
 */
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { createChat, type Chat } from '../../examples/chat/app.js';
import { browserSkip, launchBrowser } from './browser.js';

/** The page's own globals, for code run in the page (the test's lib has no DOM). */
declare const document: { documentElement: { scrollWidth: number; clientWidth: number } };

const WAIT = 15_000;

describe('chat example: a server restart, in headless Chromium', { skip: browserSkip }, () => {
  let chat: Chat;
  let port = 0;
  let browser: Browser;
  const pageErrors: string[] = [];
  const base = () => `http://127.0.0.1:${port}`;

  async function startServer(): Promise<void> {
    chat = await createChat();
    await new Promise<void>((resolve) => chat.server.listen(port, '127.0.0.1', resolve));
    port = (chat.server.address() as AddressInfo).port;
  }
  async function stopServer(): Promise<void> {
    await chat.relay.close();
    chat.server.closeAllConnections();
    await new Promise<void>((resolve) => chat.server.close(() => resolve()));
  }

  before(async () => {
    await startServer();
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    if (chat) await stopServer();
  });

  async function open(context: BrowserContext, nick: string, room: string, transport: string): Promise<Page> {
    context.setDefaultTimeout(WAIT);
    const page = await context.newPage();
    page.on('pageerror', (err) => pageErrors.push(`${nick}: ${err.message}`));
    await page.goto(`${base()}/?room=${room}&transport=${transport}`);
    await page.fill('#nick', nick);
    await page.click('#join button');
    await page.locator('#status[data-status="live"]').waitFor();
    return page;
  }
  const say = async (page: Page, text: string) => {
    await page.fill('#text', text);
    await page.press('#text', 'Enter');
  };
  const sees = (page: Page, text: string) => page.locator('#messages li', { hasText: text }).first().waitFor();
  const lines = (page: Page) =>
    page.$$eval('#messages li:not(.notice)', (items) => items.map((li) => `${li.querySelector('.from')?.textContent}: ${li.lastChild?.textContent}`));
  /** Signed in on the new process, and subscribed again. */
  const backOnline = async (page: Page) => {
    await page.waitForFunction(async () => (await fetch('/session')).ok, undefined, { timeout: WAIT, polling: 200 });
    await page.locator('#status[data-status="live"]').waitFor();
  };

  // One room each: a new page starts from the oldest line its room still holds.
  for (const [transport, room] of [['eventsource', 'lobby'], ['longpoll', 'random'], ['websocket', 'dev']] as const) {
    test(`${transport}: both pages come back after a restart; nothing lost, nothing twice`, async () => {
      const [alice, bob] = [await browser.newContext(), await browser.newContext()];
      try {
        const a = await open(alice, 'alice', room, transport);
        const b = await open(bob, 'bob', room, transport);
        await say(a, `before the restart (${transport})`);
        await sees(b, `before the restart (${transport})`);
        await say(b, 'me too');
        await sees(a, 'me too');

        await stopServer();
        // The pages notice (an end notice, a 503, a close code) and retry against nothing for a moment.
        await Promise.all([a, b].map((p) => p.locator('#status:not([data-status="live"])').waitFor()));
        await startServer();
        await Promise.all([backOnline(a), backOnline(b)]);

        await say(a, `after the restart (${transport})`);
        await sees(b, `after the restart (${transport})`);
        await say(b, 'still here');
        await Promise.all([sees(a, 'still here'), sees(b, 'still here')]);
        const expected = [`alice: before the restart (${transport})`, 'bob: me too', `alice: after the restart (${transport})`, 'bob: still here'];
        assert.deepEqual(await lines(b), expected, 'bob: every line once, in order');
        assert.deepEqual(await lines(a), expected, 'alice: every line once, in order');
        assert.deepEqual(pageErrors, []);
      } finally {
        await Promise.all([alice.close(), bob.close()]);
      }
    });
  }

  test('an unknown room says so and does not retry', async () => {
    const context = await browser.newContext();
    try {
      context.setDefaultTimeout(WAIT);
      const page = await context.newPage();
      let subscribes = 0;
      page.on('request', (req) => req.url().includes('/events') && subscribes++);
      page.on('websocket', () => subscribes++);
      await page.goto(`${base()}/?room=nowhere&transport=websocket`);
      await page.fill('#nick', 'dora');
      await page.click('#join button');
      await page.locator('#status[data-status="closed"]', { hasText: 'there is no room "nowhere"' }).waitFor();
      await page.waitForTimeout(1500);
      assert.equal(subscribes, 0, 'no subscription attempt for a room the server refuses');
    } finally {
      await context.close();
    }
  });

  test('at 375 px wide: no horizontal scrolling, long words wrap', async () => {
    const context = await browser.newContext({ viewport: { width: 375, height: 700 } });
    try {
      const page = await open(context, 'erin', 'random', 'eventsource');
      const word = 'x'.repeat(300);
      await say(page, word);
      await sees(page, word);
      const { scrollWidth, clientWidth } = await page.evaluate(() => ({
        scrollWidth: document.documentElement.scrollWidth,
        clientWidth: document.documentElement.clientWidth,
      }));
      assert.ok(scrollWidth <= clientWidth, `page is ${scrollWidth} px wide in a ${clientWidth} px screen`);
    } finally {
      await context.close();
    }
  });
});
