/**
 * The statistics endpoint, relay.stats(), relay.channels(), wildcard channels and the channel
 * lifecycle events, through real HTTP, on any store. Run with a pair of stores sharing one channel
 * space: the same MemoryStore twice, or two RedisStores on one Redis (as two processes).
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { after, describe, it } from 'node:test';
import { XMLParser } from 'fast-xml-parser';
import { parse as parseYaml } from 'yaml';
import { createPushRelay, type ChannelStore, type PushRelay, type PushRelayOptions } from '../../src/index.js';
import { request } from '../helpers/http-client.js';
import { listen } from '../helpers/servers.js';
import { waitFor } from '../helpers/wait.js';

/** Two stores of one channel space; `options` are the wildcard settings both take. */
export type PairFactory = (options?: { wildcardChannelPrefix?: string; maxWildcardChannels?: number; maxChannels?: number; maxReservedMemory?: string }) => Promise<{
  a: ChannelStore;
  b: ChannelStore;
  /** How many processes the summary lists (1 for one MemoryStore, 2 for two RedisStores). */
  workers: number;
  /** Redis: starts recording commands slower than `ms`; the returned function lists them. */
  slowCommands?(ms: number): Promise<() => Promise<string[]>>;
  close(): Promise<void>;
}>;

interface App {
  relay: PushRelay;
  url(path: string): string;
  close(): Promise<void>;
}

async function app(store: ChannelStore, options: Omit<PushRelayOptions, 'store'> = {}, statistics: Parameters<PushRelay['statistics']>[0] = {}): Promise<App> {
  const relay = createPushRelay({ store, ...options });
  const server = await listen(
    relay.handler({
      '/pub': relay.publisher(),
      '/sub': relay.subscriber(),
      '/stats': relay.statistics(statistics),
      '/group/pub': relay.publisher({ channelGroup: 'g' }),
      '/group/stats': relay.statistics({ channelGroup: 'g' }),
    }),
  );
  return {
    relay,
    url: server.url,
    async close() {
      await relay.close();
      await server.close();
    },
  };
}

const HOSTILE = '"</x>&\n';

export function statisticsSuite(label: string, makePair: PairFactory): void {
  describe(`statistics and channel lifecycle (${label})`, () => {
    const cleanups: Array<() => Promise<void>> = [];
    after(async () => {
      for (const c of cleanups.reverse()) await c();
    });
    async function pair(options: Omit<PushRelayOptions, 'store'> = {}, storeOptions: Parameters<PairFactory>[0] = {}, statistics = {}) {
      const stores = await makePair(storeOptions);
      const a = await app(stores.a, options, statistics);
      const b = await app(stores.b, options, statistics);
      cleanups.push(async () => {
        await a.close();
        await b.close();
        await stores.close();
      });
      return { a, b, workers: stores.workers };
    }
    const json = async (url: string, headers: Record<string, string> = {}) => {
      const res = await request(url, { headers: { Accept: 'application/json', ...headers } });
      assert.equal(res.status, 200, res.text);
      return JSON.parse(res.text) as Record<string, unknown> & { infos?: Array<Record<string, unknown>> };
    };
    const publish = (app: App, id: string, body = 'x') => request(app.url(`/pub?id=${encodeURIComponent(id)}`), { method: 'POST', body });

    it('the summary counts the publishes, channels and subscribers of both processes', async () => {
      const { a, b, workers } = await pair();
      for (let i = 0; i < 3; i++) assert.equal((await publish(a, 'one')).status, 202);
      for (let i = 0; i < 2; i++) assert.equal((await publish(b, 'two')).status, 202);
      // A waiting long-poll subscriber on b, counted in the summary a answers.
      const waiting = request(b.url('/sub?id=three'), { timeout: 20_000 });
      // by_worker: each process tells the others of its subscribers within a second.
      const counted = async () => {
        const s = await json(a.url('/stats'));
        return s.subscribers === 1 && (s.by_worker as Array<{ subscribers: number }>).reduce((n, w) => n + w.subscribers, 0) === 1;
      };
      await waitFor('the subscriber counted', counted, 5000);
      const summary = await json(a.url('/stats'));
      assert.equal(summary.published_messages, 5);
      assert.equal(summary.stored_messages, 5);
      assert.equal(summary.channels, 3);
      assert.equal(summary.wildcard_channels, 0);
      assert.match(summary.time as string, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
      assert.equal(typeof summary.hostname, 'string');
      assert.ok((summary.uptime as number) >= 0);
      const byWorker = summary.by_worker as Array<{ pid: number; subscribers: number; uptime: number }>;
      assert.equal(byWorker.length, workers);
      for (const w of byWorker) assert.equal(w.pid, process.pid);
      assert.equal(byWorker.reduce((n, w) => n + w.subscribers, 0), 1, 'each process counts its own subscribers');
      // relay.stats() is the same object (clock fields aside: a second may pass between the two).
      const steady = ({ time: _t, uptime: _u, by_worker, ...rest }: Record<string, unknown>) => ({ ...rest, by_worker: (by_worker as Array<{ pid: number; subscribers: number }>).map((w) => `${w.pid}:${w.subscribers}`).sort() });
      assert.deepEqual(steady({ ...(await a.relay.stats()) }), steady(summary));
      // Written as the module writes it, and as the listing is: a space after each ':' and ','.
      assert.match((await request(a.url('/stats'))).text, /^\{"hostname": "[^"]*", "time": "[^"]+", "channels": 3, .*"by_worker": \[\{"pid": \d+, "hostname": /);
      assert.equal((await publish(a, 'three')).status, 201);
      assert.equal((await waiting).status, 200);
      await waitFor('the subscriber counted out', async () => {
        const s = await json(a.url('/stats'));
        return s.subscribers === 0 && (s.by_worker as Array<{ subscribers: number }>).every((w) => w.subscribers === 0);
      });
    });

    it('one channel, several, ALL, * and prefix*; 404 for what does not exist', async () => {
      const { a, b } = await pair({}, {}, {});
      await publish(a, 'room-1');
      await publish(b, 'room-1');
      await publish(a, 'room-2');
      await publish(a, 'lobby');
      assert.deepEqual(await json(a.url('/stats?id=room-1')), { channel: 'room-1', published_messages: 2, stored_messages: 2, subscribers: 0 });
      const missing = await request(a.url('/stats?id=nope'));
      assert.equal(missing.status, 404);
      const names = (body: { infos?: Array<Record<string, unknown>> }) => body.infos!.map((c) => c.channel).sort();
      for (const all of ['ALL', '*']) {
        const listed = await json(b.url(`/stats?id=${encodeURIComponent(all)}`));
        assert.deepEqual(names(listed), ['lobby', 'room-1', 'room-2']);
        assert.equal(listed.channels, 3);
        assert.equal(listed.wildcard_channels, 0);
      }
      assert.deepEqual(names(await json(a.url('/stats?id=room*'))), ['room-1', 'room-2']);
      const none = await json(a.url('/stats?id=zzz*'));
      assert.deepEqual(none.infos, []);
      assert.equal(none.channels, 0);
      // Several ids: the resolver returns an array (here: a repeated query argument).
      const several = createPushRelay({ store: a.relay.store, channelId: (req) => new URL(req.url!, 'http://x').searchParams.getAll('id') });
      const server = await listen(several.handler({ '/stats': several.statistics() }));
      cleanups.push(async () => {
        await several.close();
        await server.close();
      });
      const base = server.url('');
      assert.deepEqual(names(await json(`${base}/stats?id=lobby&id=nope&id=room-2`)), ['lobby', 'room-2']);
      assert.equal((await request(`${base}/stats?id=nope&id=nada`)).status, 404);
      assert.deepEqual(names(await json(`${base}/stats?id=lobby&id=room*`)), ['room-1', 'room-2'], 'a pattern wins over the ids');
    });

    it('splitChannelIds reads a/b/c as the Push Stream Module does', async () => {
      const { a } = await pair({}, {}, { splitChannelIds: '/' });
      await publish(a, 'x');
      await publish(a, 'y');
      const body = await json(a.url('/stats?id=x/nope/y'));
      assert.deepEqual(body.infos!.map((c) => c.channel), ['x', 'y']);
      assert.equal((await request(a.url('/stats?id=nope/nada'))).status, 404);
    });

    it('an endpoint with a channel group lists its own group only', async () => {
      const { a } = await pair();
      await publish(a, 'shared');
      assert.equal((await request(a.url('/group/pub?id=shared'), { method: 'POST', body: 'g' })).status, 202);
      assert.equal((await request(a.url('/group/pub?id=only-g'), { method: 'POST', body: 'g' })).status, 202);
      const grouped = await json(a.url('/group/stats?id=ALL'));
      assert.deepEqual(grouped.infos!.map((c) => c.channel).sort(), ['only-g', 'shared']);
      assert.deepEqual((await json(a.url('/stats?id=ALL'))).infos!.map((c) => c.channel), ['shared']);
      assert.equal((await request(a.url('/stats?id=only-g'))).status, 404);
      const listed: string[] = [];
      for await (const c of a.relay.channels({ channelGroup: 'g' })) listed.push(c.channel);
      assert.deepEqual(listed.sort(), ['only-g', 'shared']);
    });

    it('a hostile id is escaped in JSON, text, XML and YAML', async () => {
      const { a } = await pair();
      await publish(a, HOSTILE);
      const url = (all: boolean) => a.url(`/stats?id=${all ? 'ALL' : encodeURIComponent(HOSTILE)}`);
      const get = async (accept: string, all: boolean) => {
        const res = await request(url(all), { headers: { Accept: accept } });
        assert.equal(res.status, 200);
        assert.equal(res.headers['content-type'], `${accept}; charset=utf-8`);
        return res.text;
      };
      const xml = new XMLParser({ parseTagValue: false, processEntities: true, htmlEntities: true });
      for (const all of [false, true]) {
        const fromJson = JSON.parse(await get('application/json', all));
        assert.equal(all ? fromJson.infos[0].channel : fromJson.channel, HOSTILE);
        const fromYaml = parseYaml(await get('application/yaml', all));
        assert.equal(all ? fromYaml.infos[0].channel : fromYaml.channel, HOSTILE);
        const fromXml = xml.parse(await get('application/xml', all));
        assert.equal(all ? fromXml.root.infos.channel.name : fromXml.channel.name, HOSTILE);
        const text = await get('text/plain', all);
        const line = text.split('\r\n').find((l) => /^( {2}- )?channel: /.test(l))!;
        assert.equal(JSON.parse(line.replace(/^( {2}- )?channel: /, '')), HOSTILE);
        assert.equal(text.split('\r\n').filter((l) => l.includes('published_messages')).length, 1, 'the id adds no line');
      }
    });

    it('Accept is negotiated with q-values; JSON by default', async () => {
      const { a } = await pair();
      const type = async (accept?: string) => (await request(a.url('/stats'), { headers: accept ? { Accept: accept } : {} })).headers['content-type'];
      assert.equal(await type(), 'application/json; charset=utf-8');
      assert.equal(await type('*/*'), 'application/json; charset=utf-8');
      assert.equal(await type('text/plain;q=0.5, application/yaml'), 'application/yaml; charset=utf-8');
      assert.equal(await type('application/xml;q=0.1, text/plain'), 'text/plain; charset=utf-8');
      assert.equal(await type('text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8'), 'application/xml; charset=utf-8');
      assert.equal(await type('image/png'), 'application/json; charset=utf-8');
      const summary = await request(a.url('/stats'), { headers: { Accept: 'text/yaml' } });
      const parsed = parseYaml(summary.text);
      assert.equal(parsed.channels, 0);
      assert.equal(Array.isArray(parsed.by_worker), true);
      assert.match(summary.headers['cache-control']!, /no-store/);
    });

    it('GET only (405 with Allow: GET); authorize is asked with role "statistics"', async () => {
      const asked: string[] = [];
      const { a } = await pair({
        authorize: (_req, { channelId, role }) => {
          if (role === 'statistics') asked.push(channelId);
          return channelId !== 'secret';
        },
      });
      for (const method of ['POST', 'PUT', 'DELETE', 'HEAD', 'PATCH']) {
        const res = await request(a.url('/stats'), { method });
        assert.equal(res.status, 405, method);
        assert.equal(res.headers.allow, 'GET');
      }
      await publish(a, 'open');
      await json(a.url('/stats'));
      await json(a.url('/stats?id=op*'));
      await json(a.url('/stats?id=open'));
      assert.equal((await request(a.url('/stats?id=secret'))).status, 403);
      assert.deepEqual(asked, ['', 'op*', 'open', 'secret']);
      assert.equal((await request(a.url(`/stats?id=${'x'.repeat(600)}`))).status, 400, 'an id over maxChannelIdLength');
    });

    it('relay.channels() lists by prefix, up to a limit', async () => {
      const { a } = await pair();
      for (const id of ['p-1', 'p-2', 'p-3', 'q-1']) await publish(a, id);
      const list = async (options: Parameters<PushRelay['channels']>[0]) => {
        const out = [];
        for await (const c of a.relay.channels(options)) out.push(c);
        return out;
      };
      assert.deepEqual((await list({ prefix: 'p-' })).map((c) => c.channel).sort(), ['p-1', 'p-2', 'p-3']);
      assert.equal((await list({ prefix: 'p-', limit: 2 })).length, 2);
      assert.equal((await list({ limit: 0 })).length, 0);
      assert.deepEqual((await list({ prefix: 'q' }))[0], { channel: 'q-1', published_messages: 1, stored_messages: 1, subscribers: 0 });
      assert.throws(() => a.relay.channels({ limit: -1 }), /limit/);
    });

    it('channel-created and channel-destroyed fire once, in one process, and reach the events channel', async () => {
      const { a, b, workers } = await pair({ eventsChannel: 'events', allowConnectionsToEventsChannel: true });
      const seen: string[] = [];
      for (const [name, relay] of [['a', a.relay], ['b', b.relay]] as const) {
        relay.on('channel-created', (e) => e.channel !== 'events' && seen.push(`${name}+${e.channel}`));
        relay.on('channel-destroyed', (e) => e.channel !== 'events' && seen.push(`${name}-${e.channel}`));
      }
      assert.equal((await request(b.url('/pub?id=life'), { method: 'PUT' })).status, 200);
      await publish(a, 'life');
      assert.equal((await request(a.url('/pub?id=life'), { method: 'DELETE' })).status, 200);
      // One process hears each (the one that caused it); relays sharing one MemoryStore each hear it.
      const expected = workers === 1 ? ['a+life', 'b+life', 'a-life', 'b-life'] : ['b+life', 'a-life'];
      await waitFor('the lifecycle events', () => seen.length >= expected.length);
      assert.deepEqual(seen, expected);
      // The events channel got each once, with the event name as its EventSource event.
      const events: Array<{ type: string; channel: string }> = [];
      let cursor: Record<string, string> = { 'If-Modified-Since': 'Thu, 01 Jan 1970 00:00:00 GMT' };
      await waitFor('the lifecycle events in the events channel', async () => {
        const res = await request(a.url('/sub?id=events'), { headers: cursor, timeout: 3000 }).catch(() => undefined);
        if (res?.status === 200) {
          events.push(JSON.parse(res.text));
          cursor = { 'If-Modified-Since': String(res.headers['last-modified']), 'If-None-Match': String(res.headers.etag) };
        }
        return events.filter((e) => e.type.startsWith('channel_')).length >= 2;
      });
      const lifecycle = events.filter((e) => e.type.startsWith('channel_'));
      assert.deepEqual(lifecycle, [
        { type: 'channel_created', channel: 'life' },
        { type: 'channel_destroyed', channel: 'life' },
      ]);
      const summary = await json(a.url('/stats'));
      assert.equal(summary.published_messages, 1, 'the events channel is not counted');
    });

    it('a channel removed for being idle is destroyed once', async () => {
      const { a, b, workers } = await pair({ channelTimeout: 300 });
      const seen: string[] = [];
      a.relay.on('channel-destroyed', (e) => seen.push(`a-${e.channel}`));
      b.relay.on('channel-destroyed', (e) => seen.push(`b-${e.channel}`));
      assert.equal((await request(a.url('/pub?id=idle'), { method: 'PUT' })).status, 200);
      // MemoryStore removes it by its own timer; RedisStore when it is next touched (or by Redis' expiry, see docs).
      await waitFor('removed', async () => {
        await request(b.url('/pub?id=idle'));
        return seen.length > 0;
      });
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.equal(seen.length, workers === 1 ? 2 : 1, seen.join());
    });

    it('wildcard channels: counted apart, under their own limit, open under authorizedChannelsOnly', async () => {
      const { a } = await pair({ authorizedChannelsOnly: true, wildcardChannelMaxQtd: 2 }, { wildcardChannelPrefix: 'bd_', maxWildcardChannels: 3, maxChannels: 2 });
      await publish(a, 'plain-1');
      await publish(a, 'plain-2');
      assert.equal((await publish(a, 'plain-3')).status, 403, 'maxChannels reached');
      // A subscriber may create a wildcard channel (with a plain one beside it) despite authorizedChannelsOnly.
      const multi = createPushRelay({ store: a.relay.store, authorizedChannelsOnly: true, wildcardChannelMaxQtd: 2, channelId: (req) => new URL(req.url!, 'http://x').searchParams.getAll('id') });
      const server = await listen(multi.handler({ '/sub': multi.subscriber({ mode: 'interval-poll' }), '/lp': multi.subscriber({ subscriberFirstMessage: 'newest' }) }));
      cleanups.push(async () => {
        await multi.close();
        await server.close();
      });
      const base = server.url('');
      const sub = (...ids: string[]) => request(`${base}/sub?${ids.map((id) => `id=${id}`).join('&')}`);
      assert.equal((await sub('plain-1', 'bd_a')).status, 200, 'a plain channel and a new wildcard channel');
      const only = await sub('bd_a');
      assert.equal(only.status, 403, 'only wildcard channels');
      assert.match(only.text, /wildcardChannelMaxQtd/);
      assert.equal((await sub('plain-1', 'bd_a', 'bd_b', 'bd_c')).status, 403, 'more than wildcardChannelMaxQtd');
      assert.equal((await sub('plain-missing', 'bd_a')).status, 403, 'a missing plain channel is still refused');
      // A waiting subscriber creates the wildcard channel it names.
      const waiting = request(`${base}/lp?id=plain-2&id=bd_s`, { timeout: 20_000 });
      await waitFor('bd_s created by its subscriber', async () => (await request(a.url('/stats?id=bd_s'))).status === 200);
      assert.equal((await publish(a, 'bd_s')).status, 201);
      assert.equal((await waiting).status, 200);
      for (const id of ['bd_b', 'bd_c']) assert.equal((await publish(a, id)).status, 202);
      const refused = await publish(a, 'bd_d');
      assert.equal(refused.status, 403);
      assert.match(refused.text, /3 wildcard channels already.*maxWildcardChannels/);
      const summary = await json(a.url('/stats'));
      assert.equal(summary.channels, 2);
      assert.equal(summary.wildcard_channels, 3);
      const listed = await json(a.url('/stats?id=ALL'));
      assert.equal(listed.channels, 2);
      assert.equal(listed.wildcard_channels, 3);
    });

    it('relay.metrics(): publishes, deliveries, subscribers by transport, store counts, errors and latency', async () => {
      const { a } = await pair({}, { maxChannels: 2 });
      const waiting = request(a.url('/sub?id=m1'), { timeout: 20_000 });
      await waitFor('the subscriber', async () => (await a.relay.channelInfo('m1'))?.subscribers === 1);
      assert.equal((await publish(a, 'm1')).status, 201);
      assert.equal((await waiting).status, 200);
      await publish(a, 'm2');
      assert.equal((await publish(a, 'm3')).status, 403, 'maxChannels: a store error');
      const text = await a.relay.metrics();
      const value = (sample: string) => {
        const line = text.split('\n').find((l) => l.startsWith(`${sample} `));
        assert.ok(line, `${sample} in\n${text}`);
        return Number(line.slice(sample.length + 1));
      };
      assert.equal(value('push_relay_published_messages_total'), 2);
      assert.equal(value('push_relay_delivered_messages_total'), 1);
      assert.equal(value('push_relay_channels'), 2);
      assert.equal(value('push_relay_stored_messages'), 2);
      assert.equal(value('push_relay_store_errors_total{operation="publish"}'), 1);
      assert.equal(value('push_relay_store_operation_seconds_count{operation="publish"}'), 3);
      assert.equal(value('push_relay_store_operation_seconds_bucket{operation="publish",le="+Inf"}'), 3);
      assert.match(text, /^# TYPE push_relay_store_operation_seconds histogram$/m);
      // Every line is a comment or `name{labels} value`.
      for (const line of text.trimEnd().split('\n')) assert.match(line, /^(# (HELP|TYPE) \w+ .+|\w+(\{(\w+="[^"]*",?)+\})? [-+\d.e]+(Inf)?)$/, line);
      const stream = new AbortController();
      const open = fetch(a.url('/sub?id=m1'), { headers: { Accept: 'text/event-stream' }, signal: stream.signal });
      await waitFor('the stream counted', async () => (await a.relay.metrics()).includes('push_relay_subscribers{transport="eventsource"} 1'));
      stream.abort();
      await open.catch(() => {});
      // The same families on a prom-client registry.
      const { Registry } = await import('prom-client');
      const registry = new Registry();
      a.relay.registerMetrics(registry);
      const scraped = await registry.metrics();
      assert.match(scraped, /^push_relay_published_messages_total 2$/m);
      assert.match(scraped, /^# TYPE push_relay_store_operation_seconds histogram$/m);
      assert.match(scraped, /^push_relay_store_operation_seconds_count\{operation="publish"\} 3$/m);
      assert.throws(() => a.relay.registerMetrics({} as never), /prom-client Registry/);
    });

    it('a listing of 100,000 channels streams without stalling the event loop', { timeout: 300_000 }, async () => {
      const stores = await makePair({ maxReservedMemory: '512mb' });
      const a = await app(stores.a);
      cleanups.push(async () => {
        await a.close();
        await stores.close();
      });
      const store = a.relay.store;
      const rules = { storeMessages: true, minMessages: 0, maxMessages: 10, messageTimeout: 0, channelTimeout: 600_000 };
      for (let i = 0; i < 100_000; i += 1000) {
        await Promise.all(Array.from({ length: 1000 }, (_, j) => store.create(`/big-${i + j}`, rules)));
      }
      await store.create('/other', rules);
      // 25 ms: on this shared VM a plain EXISTS was once logged at 11 ms (the Redis process descheduled,
      // not working), so 10 ms measured the machine; a listing in one go holds Redis for ~235 ms.
      const slow = await stores.slowCommands?.(25);
      const delay = monitorEventLoopDelay({ resolution: 1 });
      delay.enable();
      let count = 0;
      let bytes = 0;
      await new Promise<void>((resolve, reject) => {
        http.get(a.url('/stats?id=big-*'), { agent: false }, (res) => {
          assert.equal(res.statusCode, 200);
          let tail = '';
          let last = '';
          res.on('data', (chunk: Buffer) => {
            bytes += chunk.length;
            const text = tail + chunk.toString('latin1');
            const lines = text.split('\r\n');
            tail = lines.pop()!;
            for (const line of lines) if (line.includes('"channel": "big-')) count++;
            last = lines.at(-1) ?? last;
          });
          res.on('end', () => {
            if (/"channels": 100000,/.test(last)) resolve();
            else reject(new Error(`bad tail ${last.slice(0, 200)}`));
          });
          res.on('error', reject);
        }).on('error', reject);
      });
      delay.disable();
      const slowOnes = (await slow?.()) ?? [];
      assert.deepEqual(slowOnes, [], 'no command held Redis for 25 ms or more');
      const worst = delay.max / 1e6;
      assert.equal(count, 100_000);
      assert.ok(bytes > 5_000_000);
      // Pages of about a millisecond: the 99th percentile stays far under 20 ms (under 10 ms on an
      // idle machine; another busy process on the same 2 cores was seen to push it to 15 ms). The
      // worst single delay is left to the garbage collector and the shared machine, but a listing
      // done in one go (100,000 channels at once) would break it.
      const p99 = delay.percentile(99) / 1e6;
      assert.ok(p99 < 20 && worst < 60, `event-loop delay p99 ${p99.toFixed(1)} ms, worst ${worst.toFixed(1)} ms`);
      console.log(`# 100,000 channels listed (${(bytes / 1e6).toFixed(1)} MB): worst event-loop delay ${worst.toFixed(1)} ms, p99 ${(delay.percentile(99) / 1e6).toFixed(1)} ms`);
    });
  });
}
