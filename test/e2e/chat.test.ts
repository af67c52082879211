/**
 * The chat example (examples/chat) in a real browser: Debian's Chromium, driven by playwright-core
 * (no browser download). Two users in one room, each in their own browser context: a message sent
 * by one appears on the other's page over EventSource, long-poll and WebSocket, and a page that goes
 * away and comes back (or reloads) resumes from the last id it saw, without losing or repeating a
 * message sent meanwhile.
 */
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { createChat, type Chat } from '../../examples/chat/app.js';
import { browserSkip, launchBrowser } from './browser.js';

/** The page's own global, for code run in the page by page.evaluate (the test's lib has no DOM). */
declare const location: { host: string };

/** Every Playwright wait, in ms. */
const WAIT = 5000;

describe('chat example in headless Chromium', { skip: browserSkip }, () => {
  let chat: Chat;
  let base: string;
  let browser: Browser;
  let alice: BrowserContext;
  let bob: BrowserContext;
  const pageErrors: string[] = [];

  before(async () => {
    chat = await createChat();
    await new Promise<void>((resolve) => chat.server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(chat.server.address() as AddressInfo).port}`;
    browser = await launchBrowser();
    alice = await browser.newContext();
    bob = await browser.newContext();
    for (const context of [alice, bob]) context.setDefaultTimeout(WAIT);
  });

  after(async () => {
    await browser?.close();
    await chat?.relay.close();
    chat?.server.closeAllConnections();
    await new Promise<void>((resolve) => (chat ? chat.server.close(() => resolve()) : resolve()));
  });

  /** Opens the chat in `context`, signs in as `nick` if needed, and waits until it is subscribed. */
  async function open(context: BrowserContext, nick: string, room: string, transport: string): Promise<Page> {
    const page = await context.newPage();
    page.on('pageerror', (err) => pageErrors.push(`${nick}: ${err.message}`));
    await page.goto(`${base}/?room=${room}&transport=${transport}`);
    await signIn(page, nick);
    return page;
  }

  async function signIn(page: Page, nick: string): Promise<void> {
    const join = page.locator('#join');
    const sendForm = page.locator('#send');
    await Promise.race([join.waitFor({ state: 'visible' }), sendForm.waitFor({ state: 'visible' })]);
    if (await join.isVisible()) {
      await page.fill('#nick', nick);
      await page.click('#join button');
    }
    await page.locator('#status[data-status="live"]').waitFor();
  }

  async function say(page: Page, text: string): Promise<void> {
    await page.fill('#text', text);
    await page.press('#text', 'Enter');
  }

  async function sees(page: Page, text: string): Promise<void> {
    await page.locator('#messages li', { hasText: text }).first().waitFor();
  }

  /** The lines of a page, as "from: text". */
  async function lines(page: Page): Promise<string[]> {
    return page.$$eval('#messages li:not(.notice)', (items) =>
      items.map((li) => `${li.querySelector('.from')?.textContent}: ${li.lastChild?.textContent}`),
    );
  }

  const cases = [
    { transport: 'eventsource', room: 'lobby' },
    { transport: 'longpoll', room: 'random' },
    { transport: 'websocket', room: 'dev' },
  ];

  for (const { transport, room } of cases) {
    test(`${transport}: messages cross between two pages; a page that comes back resumes without loss or repeat`, async () => {
      const a = await open(alice, 'alice', room, transport);
      const b = await open(bob, 'bob', room, transport);

      await say(a, `hello from alice over ${transport}`);
      await sees(b, `hello from alice over ${transport}`);
      await say(b, 'hi alice');
      await sees(a, 'hi alice');

      // Bob leaves the page; alice talks meanwhile (her own page shows each line once it is stored).
      await b.goto('about:blank');
      for (const text of ['while bob was away 1', 'while bob was away 2']) {
        await say(a, text);
        await sees(a, text);
      }
      await b.goto(`${base}/?room=${room}&transport=${transport}`);
      await b.locator('#status[data-status="live"]').waitFor();
      await sees(b, 'while bob was away 2');

      // A plain reload: the page restores its lines and resumes from its last id.
      await b.reload();
      await b.locator('#status[data-status="live"]').waitFor();
      await say(a, 'after the reload');
      await sees(b, 'after the reload');

      const expected = [
        `alice: hello from alice over ${transport}`,
        'bob: hi alice',
        'alice: while bob was away 1',
        'alice: while bob was away 2',
        'alice: after the reload',
      ];
      assert.deepEqual(await lines(b), expected, 'bob got every line once, in order');
      await sees(a, 'after the reload');
      assert.deepEqual(await lines(a), expected, 'alice too');
      assert.deepEqual(pageErrors, []);
      await Promise.all([a.close(), b.close()]);
    });
  }

  test('a page of someone without a session, or for a room off the list, is refused', async () => {
    const stranger = await browser.newContext();
    try {
      const page = await stranger.newPage();
      await page.goto(`${base}/?room=lobby`);
      const status = await page.evaluate(async () => {
        const events = await fetch('/rooms/lobby/events');
        const post = await fetch('/rooms/lobby/messages', { method: 'POST', body: 'hi' });
        return [events.status, post.status];
      });
      assert.deepEqual(status, [403, 403]);
      await page.fill('#nick', 'carol');
      await page.click('#join button');
      await page.locator('#status[data-status="live"]').waitFor();
      const offList = await page.evaluate(async () => (await fetch('/rooms/secret/events')).status);
      assert.equal(offList, 403);
      const closed = await page.evaluate(
        () =>
          new Promise<number>((resolve) => {
            const socket = new WebSocket(`ws://${location.host}/rooms/secret/events`);
            socket.onclose = (event) => resolve(event.code);
          }),
      );
      assert.equal(closed, 1006, 'the upgrade was refused before any handshake');
    } finally {
      await stranger.close();
    }
  });
});
