/**
 * Lifecycle events (relay.on), presence of long-poll clients across re-polls, relay.disconnect()
 * and the events channel, through real HTTP, on any store. Run with a pair of stores sharing one
 * channel space: the same MemoryStore twice, or two RedisStores on one Redis (two processes).
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { createPushRelay, type ChannelStore, type PushRelay, type PushRelayOptions } from '../../src/index.js';
import { cursorOf, request } from '../helpers/http-client.js';
import { listen } from '../helpers/servers.js';
import { waitFor } from '../helpers/wait.js';

export type PairFactory = () => Promise<{ a: ChannelStore; b: ChannelStore; close(): Promise<void> }>;

interface App {
  relay: PushRelay;
  url(path: string): string;
  close(): Promise<void>;
}

async function app(store: ChannelStore, options: Omit<PushRelayOptions, 'store'> = {}): Promise<App> {
  const relay = createPushRelay({ store, ...options });
  const handler = relay.handler({ '/pub': relay.publisher(), '/sub': relay.subscriber() });
  const server = http.createServer(handler);
  await relay.handleUpgrade(server, handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    relay,
    url: (path) => `http://127.0.0.1:${port}${path}`,
    async close() {
      await relay.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** An EventSource read with fetch: the events so far, and a way to stop. */
function eventStream(url: string) {
  const abort = new AbortController();
  const events: Array<{ event: string; data: string }> = [];
  let status = 0;
  const done = (async () => {
    const res = await fetch(url, { headers: { Accept: 'text/event-stream' }, signal: abort.signal });
    status = res.status;
    let buffer = '';
    for await (const chunk of res.body!.pipeThrough(new TextDecoderStream())) {
      buffer += chunk;
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let event = 'message';
        const data: string[] = [];
        for (const line of block.split('\n')) {
          if (line.startsWith('event: ')) event = line.slice(7);
          else if (line.startsWith('data: ')) data.push(line.slice(6));
        }
        if (data.length) events.push({ event, data: data.join('\n') });
      }
    }
  })().catch(() => {});
  return { events, done, status: () => status, stop: () => abort.abort() };
}

export function eventsSuite(label: string, makePair: PairFactory): void {
  describe(`lifecycle events, presence, disconnect, events channel (${label})`, () => {
    const cleanups: Array<() => Promise<void>> = [];
    after(async () => {
      for (const c of cleanups.reverse()) await c();
    });
    let n = 0;
    const channel = () => `ev-${label}-${++n}`;
    async function pair(options: Omit<PushRelayOptions, 'store'> = {}) {
      const stores = await makePair();
      const a = await app(stores.a, options);
      const b = await app(stores.b, options);
      cleanups.push(async () => {
        await a.close();
        await b.close();
        await stores.close();
      });
      return { a, b };
    }
    function record(relay: PushRelay) {
      const log: string[] = [];
      const ids = new Set<string>();
      relay.on('subscribe', (e) => {
        log.push(`+${e.channel}:${e.transport}`);
        ids.add(e.subscriberId);
        assert.ok(e.req, 'the request that subscribed');
      });
      relay.on('unsubscribe', (e) => log.push(`-${e.channel}:${e.transport}`));
      return { log, ids };
    }

    it('a stream subscribes once and unsubscribes when it ends', async () => {
      const { a } = await pair();
      const events = record(a.relay);
      const id = channel();
      const stream = eventStream(a.url(`/sub?id=${id}`));
      await waitFor('subscribe', () => events.log.length === 1);
      assert.deepEqual(events.log, [`+${id}:eventsource`]);
      stream.stop();
      await waitFor('unsubscribe', () => events.log.length === 2);
      assert.deepEqual(events.log, [`+${id}:eventsource`, `-${id}:eventsource`]);
    });

    it('a long-poll client re-polling 50 times is one subscribe, then one unsubscribe once it stops', async () => {
      const { a } = await pair({ presenceGrace: '400ms', messageBufferLength: 60 });
      const events = record(a.relay);
      const id = channel();
      for (let i = 0; i < 50; i++) await a.relay.publish(id, `m${i}`);
      let res = await request(a.url(`/sub?id=${id}`));
      for (let i = 1; i < 50; i++) {
        res = await request(a.url(`/sub?id=${id}`), { headers: cursorOf(res) });
        assert.equal(res.text, `m${i}`);
      }
      assert.deepEqual(events.log, [`+${id}:long-poll`]);
      await waitFor('unsubscribe after the grace', () => events.log.length === 2, 5000);
      assert.deepEqual(events.log, [`+${id}:long-poll`, `-${id}:long-poll`]);
    });

    it('after a broadcast, every waiting poller that comes back is still the same presence', async () => {
      const { a } = await pair({ presenceGrace: '2s' });
      const events = record(a.relay);
      const id = channel();
      const waiting = Array.from({ length: 5 }, () => request(a.url(`/sub?id=${id}`)));
      await waitFor('5 waiting', async () => (await a.relay.channelInfo(id))?.subscribers === 5);
      await a.relay.publish(id, 'one');
      const answers = await Promise.all(waiting);
      const again = answers.map((r) => request(a.url(`/sub?id=${id}`), { headers: cursorOf(r) }));
      await waitFor('5 waiting again', async () => (await a.relay.channelInfo(id))?.subscribers === 5);
      assert.equal(events.log.filter((e) => e.startsWith('+')).length, 5, 'five subscribes, none on the re-polls');
      assert.equal(events.log.filter((e) => e.startsWith('-')).length, 0);
      await a.relay.publish(id, 'two');
      await Promise.all(again);
    });

    it('presenceKey recognises a client whatever its cursor', async () => {
      const stores = await makePair();
      const relay = createPushRelay({ store: stores.a, presenceGrace: '300ms', presenceKey: (req) => req.headers['x-session'] as string | undefined });
      const handler = relay.handler({ '/sub': relay.subscriber({ mode: 'interval-poll' }) });
      const server = http.createServer(handler);
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      cleanups.push(async () => {
        await relay.close();
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
        await stores.close();
      });
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/sub?id=${channel()}`;
      const seen: string[] = [];
      relay.on('subscribe', (e) => seen.push(`+${e.subscriberId}`)).on('unsubscribe', (e) => seen.push(`-${e.subscriberId}`));
      for (let i = 0; i < 5; i++) await request(url, { headers: { 'X-Session': 'alice' } });
      await request(url, { headers: { 'X-Session': 'bob' } });
      assert.equal(seen.length, 2, seen.join());
      await waitFor('both gone', () => seen.length === 4, 5000);
    });

    it('publish events, over HTTP and in-process, not for a retried Idempotency-Key; a throwing listener breaks nothing', async () => {
      const { a } = await pair();
      const id = channel();
      const published: string[] = [];
      a.relay.on('publish', () => {
        throw new Error('listener bug');
      });
      a.relay.on('publish', (e) => published.push(`${e.channel}:${e.size}:${e.contentType}`));
      const sub = request(a.url(`/sub?id=${id}`));
      await waitFor('waiting', async () => (await a.relay.channelInfo(id))?.subscribers === 1);
      const first = await request(a.url(`/pub?id=${id}`), { method: 'POST', body: 'hello', headers: { 'Content-Type': 'text/plain', 'Idempotency-Key': 'k1' } });
      assert.equal(first.status, 201);
      assert.equal((await sub).text, 'hello', 'delivered despite the throwing listener');
      const retry = await request(a.url(`/pub?id=${id}`), { method: 'POST', body: 'hello', headers: { 'Content-Type': 'text/plain', 'Idempotency-Key': 'k1' } });
      assert.equal(retry.headers['idempotent-replayed'], 'true');
      await a.relay.publish(id, 'in-process');
      assert.deepEqual(published, [`${id}:5:text/plain`, `${id}:10:undefined`]);
    });

    it('disconnect() ends a long-poll (403), an EventSource (end: revoked) and a WebSocket (4403), served by another relay on the store', async () => {
      const { a, b } = await pair();
      const id = channel();
      const poll = request(b.url(`/sub?id=${id}`));
      const stream = eventStream(b.url(`/sub?id=${id}`));
      const ws = new WebSocket(b.url(`/sub?id=${id}`).replace('http', 'ws'));
      const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
      await waitFor('3 subscribers', async () => (await a.relay.channelInfo(id))?.subscribers === 3);
      const other = channel();
      const bystander = request(b.url(`/sub?id=${other}`));
      await waitFor('the bystander waiting', async () => (await a.relay.channelInfo(other))?.subscribers === 1);
      await a.relay.disconnect({ channel: id });
      assert.equal((await poll).status, 403);
      assert.equal(await closed, 4403);
      await waitFor('the stream ended', () => stream.events.some((e) => e.event === 'push-relay-end'));
      assert.deepEqual(stream.events.at(-1), { event: 'push-relay-end', data: 'revoked' });
      await stream.done;
      await a.relay.publish(other, 'still here');
      assert.equal((await bystander).text, 'still here', 'other channels untouched');
    });

    it('with no listener, disconnect() still ends a long-poll by presenceKey; a listener added later sees re-polls as one presence', async () => {
      const stores = await makePair();
      const relay = createPushRelay({ store: stores.a, presenceKey: (req) => req.headers['x-session'] as string | undefined, presenceGrace: '200ms' });
      const server = await listen(relay.handler({ '/sub': relay.subscriber(), '/pub': relay.publisher() }));
      cleanups.push(async () => {
        await relay.close();
        await server.close();
        await stores.close();
      });
      const base = server.url('');
      const id = channel();
      const alice = request(`${base}/sub?id=${id}`, { headers: { 'X-Session': 'alice' } });
      await waitFor('alice waiting', async () => (await relay.channelInfo(id))?.subscribers === 1);
      await relay.disconnect({ presenceKey: 'alice' });
      assert.equal((await alice).status, 403);
      // From now on presence is followed: three polls of one client are one subscribe.
      const log: string[] = [];
      relay.on('subscribe', () => log.push('+'));
      relay.on('unsubscribe', () => log.push('-'));
      let headers: Record<string, string> = {};
      for (let i = 0; i < 3; i++) {
        const poll = request(`${base}/sub?id=${id}`, { headers });
        await waitFor('polling', async () => (await relay.channelInfo(id))?.subscribers === 1);
        assert.equal((await request(`${base}/pub?id=${id}`, { method: 'POST', body: String(i) })).status, 201);
        const got = await poll;
        headers = cursorOf(got);
      }
      assert.deepEqual(log, ['+']);
      await waitFor('gone after the grace', () => log.length === 2);
      assert.deepEqual(log, ['+', '-']);
    });

    it('disconnect() by presenceKey or subscriberId ends only that client', async () => {
      const stores = await makePair();
      const relay = createPushRelay({ store: stores.a, presenceKey: (req) => req.headers['x-session'] as string | undefined });
      const handler = relay.handler({ '/sub': relay.subscriber() });
      const server = http.createServer(handler);
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      cleanups.push(async () => {
        await relay.close();
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
        await stores.close();
      });
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/sub?id=${channel()}`;
      const ids = new Map<string, string>();
      relay.on('subscribe', (e) => ids.set(e.req!.headers['x-session'] as string, e.subscriberId));
      const alice = request(url, { headers: { 'X-Session': 'alice' } });
      const bob = request(url, { headers: { 'X-Session': 'bob' } });
      const carol = request(url, { headers: { 'X-Session': 'carol' } });
      await waitFor('3 present', () => ids.size === 3);
      await relay.disconnect({ presenceKey: 'alice' });
      assert.equal((await alice).status, 403);
      await relay.disconnect({ subscriberId: ids.get('bob') });
      assert.equal((await bob).status, 403);
      await relay.channelInfo('x');
      await assert.rejects(relay.disconnect({}), /at least one of/);
      await relay.close();
      assert.equal((await carol).status, 503, 'carol was still waiting');
    });

    it('eventsChannel: subscribes and unsubscribes of every relay, once each; closed to subscribers and publishers unless allowed', async () => {
      const { a, b } = await pair({ eventsChannel: 'events', allowConnectionsToEventsChannel: true, presenceGrace: '200ms' });
      const watch = eventStream(a.url('/sub?id=events'));
      await waitFor('the watcher', async () => (await a.relay.channelInfo('events'))?.subscribers === 1);
      const id = channel();
      const onA = eventStream(a.url(`/sub?id=${id}`));
      const clientEvents = () => watch.events.filter((e) => e.event.startsWith('client_'));
      await waitFor('one', () => clientEvents().length === 1);
      const onB = eventStream(b.url(`/sub?id=${id}`));
      await waitFor('two', () => clientEvents().length === 2);
      onA.stop();
      onB.stop();
      await waitFor('four', () => clientEvents().length === 4);
      await new Promise((r) => setTimeout(r, 300));
      const seen = watch.events.map((e) => `${e.event}:${JSON.parse(e.data).type}:${JSON.parse(e.data).channel}`).sort();
      // The channel came with its first subscriber and went with its last (channelTimeout 0).
      assert.deepEqual(seen, [
        `channel_created:channel_created:${id}`,
        `channel_destroyed:channel_destroyed:${id}`,
        `client_subscribed:client_subscribed:${id}`,
        `client_subscribed:client_subscribed:${id}`,
        `client_unsubscribed:client_unsubscribed:${id}`,
        `client_unsubscribed:client_unsubscribed:${id}`,
      ]);
      // The body as the module writes it, byte for byte.
      assert.equal(watch.events.find((e) => e.event === 'client_subscribed')!.data, `{"type": "client_subscribed", "channel": "${id}"}`);
      watch.stop();
      // Publishers may read the events channel's info, not write it.
      assert.equal((await request(a.url('/pub?id=events'), { method: 'POST', body: 'x' })).status, 403);
      assert.equal((await request(a.url('/pub?id=events'), { method: 'DELETE' })).status, 403);
      assert.equal((await request(a.url('/pub?id=events'))).status, 200);
      await assert.rejects(a.relay.publish('events', 'x'), /events channel/);
    });

    it('eventsChannel without allowConnectionsToEventsChannel: subscribers get 403', async () => {
      const { a } = await pair({ eventsChannel: 'events' });
      const res = await request(a.url('/sub?id=events'));
      assert.equal(res.status, 403);
      assert.match(res.text, /events channel/);
    });
  });
}
