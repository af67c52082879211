/**
 * Long-polling "transparent to the web client" (rev 2.23 §1.1): a page that loops on a plain
 * `fetch(url)` and leaves If-Modified-Since / If-None-Match to Chromium's HTTP cache, against an
 * endpoint with `browserCache: true`. Bursts (many messages in one second) and time-outs included,
 * every message arrives exactly once, in order.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import { relayApp, type RelayApp } from '../client/fixture.js';
import { waitFor } from '../helpers/wait.js';
import { browserSkip, launchBrowser } from './browser.js';

declare const window: { got: string[]; statuses: number[] };

// No header handling at all: what a page written from the protocol's promise would do.
const PAGE = `<!doctype html><meta charset="utf-8"><title>plain fetch</title><script>
window.got = []; window.statuses = [];
async function poll(id) {
  for (;;) {
    try {
      const res = await fetch('/sub?id=' + id);
      const text = await res.text();
      window.statuses.push(res.status);
      if (res.status === 200 && text !== '') window.got.push(text);
    } catch (e) {
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}
</script>`;

describe('a plain-fetch long-poll page with browserCache: true, in Chromium', { skip: browserSkip }, () => {
  let browser: Browser;
  let app: RelayApp;
  before(async () => {
    browser = await launchBrowser();
    app = await relayApp({ subscriber: { browserCache: true, subscriberTimeout: '1s' }, files: { '/plain.html': ['text/html', PAGE] } });
  });
  after(async () => {
    await browser?.close();
    await app?.close();
  });

  it('receives 50 messages, bursts and time-outs included, each exactly once and in order', { timeout: 90_000 }, async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(app.url('/plain.html'));
    const sent: string[] = [];
    const publish = async (count: number) => {
      for (let i = 0; i < count; i++) {
        const m = `m${sent.length}`;
        sent.push(m);
        await app.publish('plain', m);
      }
    };
    // Two messages stored before the page polls, then bursts (same second) between time-outs.
    await publish(2);
    await page.evaluate(() => void (globalThis as unknown as { poll(id: string): Promise<void> }).poll('plain'));
    const got = () => page.evaluate(() => window.got.slice());
    await waitFor('the stored messages', async () => (await got()).length === 2, 10_000);
    for (const burst of [10, 1, 12, 5, 20]) {
      await publish(burst);
      await waitFor(`${sent.length} messages`, async () => (await got()).length >= sent.length, 15_000);
      // Let at least one time-out pass with nothing new before the next burst.
      const before = (await page.evaluate(() => window.statuses.length)) as number;
      await waitFor('a time-out answer', async () => (await page.evaluate(() => window.statuses.length)) > before, 5_000);
    }
    assert.equal(sent.length, 50);
    assert.deepEqual(await got(), sent);
    const statuses = await page.evaluate(() => window.statuses.slice());
    // Every request was answered by the relay at its own pace: no cache-served loop.
    assert.ok(statuses.length < 200, `${statuses.length} requests for 50 messages`);
    await context.close();
  });
});
