/**
 * push-relay/client against a real Nchan (same protocol, its own wire details: `ws+meta.nchan`
 * frames, 408 time-outs, close 1001 "410 Gone", `:410:` stream comments), on every transport, in
 * Node and in Chromium: delivery in order, resume from an id, the network cut and restored, a
 * deleted channel ending the subscription.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import type { Browser } from 'playwright-core';
import { subscribe, type End, type SubscribeOptions, type TransportName } from '../../src/client/index.js';
import { relayApp, tcpProxy, type RelayApp } from '../client/fixture.js';
import { browserSkip, launchBrowser } from '../e2e/browser.js';
import { waitFor } from '../helpers/wait.js';
import { nchanSkip, startNchan, type Nchan } from './nchan-server.js';

const TRANSPORTS: TransportName[] = ['websocket', 'eventsource', 'long-poll'];
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => `m${from + i}`);
const WS = WebSocket as unknown as SubscribeOptions['WebSocket'];

describe('push-relay/client against real Nchan', { skip: nchanSkip }, () => {
  let nchan: Nchan;
  let n = 0;
  const channel = () => `pr${process.pid}-${++n}`;
  before(async () => {
    nchan = await startNchan();
  });
  after(async () => {
    await nchan?.stop();
  });

  for (const transport of TRANSPORTS) {
    describe(`${transport} (Node)`, () => {
      it('delivers stored and live messages in order, then resumes after a given id', { timeout: 60_000 }, async () => {
        const id = channel();
        for (const m of range(0, 5)) await nchan.publish(id, m);
        const got: string[] = [];
        const ids: string[] = [];
        const sub = subscribe(nchan.url(`/sub?id=${id}`), { transports: [transport], WebSocket: WS }).on('message', (d, meta) => {
          got.push(String(d));
          ids.push(meta.id!);
        });
        await waitFor('5 stored', () => got.length === 5, 10_000);
        for (const m of range(5, 15)) await nchan.publish(id, m);
        await waitFor('15', () => got.length === 15, 10_000);
        sub.close();
        assert.deepEqual(got, range(0, 15));
        const again: string[] = [];
        const resumed = subscribe(nchan.url(`/sub?id=${id}`), { transports: [transport], WebSocket: WS, lastId: ids[9] }).on('message', (d) => again.push(String(d)));
        await waitFor('the 5 after the id', () => again.length === 5, 10_000);
        resumed.close();
        assert.deepEqual(again, range(10, 15));
      });

      it('survives the network cut and restored, and the subscriber time-out: nothing lost, nothing twice', { timeout: 60_000 }, async () => {
        const id = channel();
        const proxy = await tcpProxy(nchan.port);
        const got: string[] = [];
        const states: string[] = [];
        const sub = subscribe(proxy.url(`/sub?id=${id}`), { transports: [transport], WebSocket: WS, backoff: { initial: 100, max: 500 } })
          .on('message', (d) => got.push(String(d)))
          .on('status', (s) => states.push(s.state));
        try {
          await waitFor('open', () => states.includes('open'), 10_000);
          for (const m of range(0, 5)) await nchan.publish(id, m);
          await waitFor('5', () => got.length === 5, 10_000);
          await proxy.cut();
          for (const m of range(5, 10)) await nchan.publish(id, m);
          await waitFor('reconnecting', () => states.at(-1) === 'reconnecting', 10_000);
          await proxy.restore();
          await waitFor('10', () => got.length === 10, 15_000);
          // Past Nchan's 5 s subscriber time-out (408, close "408 Request Timeout", `:408:`): still there.
          await new Promise((r) => setTimeout(r, 6000));
          await nchan.publish(id, 'm10');
          await waitFor('11', () => got.length === 11, 10_000);
          assert.deepEqual(got, range(0, 11));
        } finally {
          sub.close();
          await proxy.close();
        }
      });

      it('a deleted channel ends the subscription', { timeout: 30_000 }, async () => {
        const id = channel();
        await nchan.publish(id, 'm0');
        const ends: End[] = [];
        const got: string[] = [];
        const sub = subscribe(nchan.url(`/sub?id=${id}`), { transports: [transport], WebSocket: WS }).on('message', (d) => got.push(String(d))).on('end', (e) => ends.push(e));
        await waitFor('m0', () => got.length === 1, 10_000);
        await new Promise((r) => setTimeout(r, 200));
        await (await fetch(nchan.url(`/pub?id=${id}`), { method: 'DELETE' })).text();
        await waitFor('end', () => ends.length === 1, 10_000);
        assert.equal(ends[0]!.reason, 'deleted');
        sub.close();
      });
    });
  }

  describe('in Chromium (a page of another origin)', { skip: browserSkip }, () => {
    let browser: Browser;
    let page: RelayApp;
    before(async () => {
      browser = await launchBrowser();
      page = await relayApp();
    });
    after(async () => {
      await browser?.close();
      await page?.close();
    });

    for (const transport of TRANSPORTS) {
      it(`${transport}: delivers in order`, { timeout: 60_000 }, async () => {
        const id = channel();
        const tab = await browser.newPage();
        await tab.goto(page.url('/'));
        for (const m of range(0, 3)) await nchan.publish(id, m);
        await tab.evaluate(
          ([url, transport]) => {
            const w = window as unknown as { got: string[]; pushRelay: { subscribe: typeof subscribe } };
            w.got = [];
            w.pushRelay.subscribe(url, { transports: [transport] }).on('message', (d) => w.got.push(String(d)));
          },
          [nchan.url(`/sub?id=${id}`), transport] as const,
        );
        const got = () => tab.evaluate(() => (window as unknown as { got: string[] }).got.slice());
        await waitFor('3 stored', async () => (await got()).length === 3, 10_000);
        for (const m of range(3, 10)) await nchan.publish(id, m);
        await waitFor('10', async () => (await got()).length === 10, 10_000);
        assert.deepEqual(await got(), range(0, 10));
        await tab.close();
      });
    }
  });
});
declare const window: unknown;
