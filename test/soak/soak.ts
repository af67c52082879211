/**
 * The soak run (`npm run soak -- --minutes 10`; not part of `npm test`): 3 app processes on one
 * redis-server of its own, subscribers of every transport that carries message ids (long-poll,
 * interval-poll, EventSource, multipart/mixed, WebSocket with metadata) spread over them, numbered
 * publishers, and faults injected on a schedule: Redis killed and restarted empty, Redis frozen
 * (SIGSTOP), DEBUG SLEEP, CLIENT PAUSE, pub/sub connections killed, FLUSHALL, an app process killed
 * and started again.
 *
 * A publish counts as acknowledged once it answered 201 or 202 (it is retried with the same
 * Idempotency-Key until then). Every acknowledged message must reach every subscriber of its channel,
 * or that subscriber must get the loss signal on the first message after the gap. The run prints
 * its figures and exits 1 when an acknowledged message went missing without a signal.
 *
 * Chunked and raw streams are not run: they carry no message ids, so a reconnecting client cannot
 * resume on them, and loss cannot be told apart from a reconnection.
 */
import type { ChildProcess } from 'node:child_process';
import http, { type IncomingMessage } from 'node:http';
import { parseArgs } from 'node:util';
import { createClient } from 'redis';
import WebSocket from 'ws';
import { startApp, type AppProcess } from '../redis/app-processes.js';
import { freePort, kill, startRedis } from '../redis/redis-server.js';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '2' },
    channels: { type: 'string', default: '4' },
    rate: { type: 'string', default: '10' }, // messages per second per channel
    'fault-every': { type: 'string', default: '12' }, // seconds
  },
});
const MINUTES = Number(values.minutes);
const CHANNELS = Number(values.channels);
const RATE = Number(values.rate);
const FAULT_EVERY = Number(values['fault-every']) * 1000;
const APPS = 3;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const log = (line: string) => process.stdout.write(`[${((Date.now() - started) / 1000).toFixed(1).padStart(6)} s] ${line}\n`);
const started = Date.now();
let running = true;

// ---- Redis and the app processes ----------------------------------------------------------------

const redisPort = await freePort();
const REDIS_URL = `redis://127.0.0.1:${redisPort}`;
const redisArgs = ['--enable-debug-command', 'yes'];
let redis: ChildProcess = await startRedis(redisPort, redisArgs);
const env = { REDIS_URL, PREFIX: 'soak' };
const apps: (AppProcess | undefined)[] = await Promise.all(Array.from({ length: APPS }, () => startApp(env, '../../soak/app.ts')));
const liveApp = (): AppProcess | undefined => {
  const live = apps.filter((a): a is AppProcess => a !== undefined);
  return live[Math.floor(Math.random() * live.length)];
};
const admin = () => {
  const client = createClient({ url: REDIS_URL, socket: { reconnectStrategy: false, connectTimeout: 1000 } });
  client.on('error', () => {});
  return client;
};
async function redisCommand(...args: string[]): Promise<void> {
  const client = admin();
  try {
    await client.connect();
    await Promise.race([client.sendCommand(args), sleep(5000)]);
  } finally {
    client.destroy();
  }
}

// ---- Publishers ---------------------------------------------------------------------------------

const channels = Array.from({ length: CHANNELS }, (_, i) => `soak-${i}`);
/** Per channel: the numbers acknowledged so far (1..acked), and publishes that never were. */
const acked = new Map(channels.map((c) => [c, 0]));
let retries = 0;
let gaveUp = 0;
const ackDelays: number[] = [];

function post(url: string, body: string, key: string): Promise<number> {
  return new Promise((resolve) => {
    const req = http.request(url, { method: 'POST', agent: false, headers: { 'Idempotency-Key': key, 'Content-Type': 'text/plain' } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', () => resolve(0));
    });
    req.setTimeout(5000, () => req.destroy());
    req.on('error', () => resolve(0));
    req.end(body);
  });
}

async function publisher(channel: string): Promise<void> {
  for (let n = 1; running; n++) {
    const first = Date.now();
    for (let attempt = 0; ; attempt++) {
      const app = liveApp();
      const status = app ? await post(app.url(`/pub?id=${channel}`), String(n), `${channel}-${n}`) : 0;
      if (status === 201 || status === 202) break;
      if (attempt > 0) retries++;
      if (Date.now() - first > 60_000) {
        gaveUp++;
        break;
      }
      await sleep(100 + Math.random() * 200);
    }
    ackDelays.push(Date.now() - first);
    acked.set(channel, n);
    await sleep(1000 / RATE);
  }
}

// ---- Subscribers --------------------------------------------------------------------------------

type Kind = 'long-poll' | 'interval-poll' | 'eventsource' | 'multipart' | 'websocket';
const KINDS: Kind[] = ['long-poll', 'interval-poll', 'eventsource', 'multipart', 'websocket'];

class Subscriber {
  /** The message id to resume from: `time:tag`, as every transport gives it. */
  lastId: string | undefined;
  maxSeen = 0;
  received = 0;
  duplicates = 0;
  signalledGap = 0;
  silentGap = 0;
  reconnects = 0;
  readonly silentGaps: string[] = [];

  constructor(
    readonly kind: Kind,
    readonly channel: string,
  ) {}

  /** A message: its number, its id, and whether the loss signal came with it. */
  got(body: string, id: string | undefined, missed: boolean): void {
    const n = Number(body);
    if (id) this.lastId = id;
    this.received++;
    if (n <= this.maxSeen) {
      this.duplicates++;
      return;
    }
    const gap = n - this.maxSeen - 1;
    if (gap > 0) {
      if (missed) this.signalledGap += gap;
      else {
        this.silentGap += gap;
        this.silentGaps.push(`${this.maxSeen + 1}..${n - 1} (${id})`);
      }
    }
    this.maxSeen = n;
  }

  /** Streams resume from `Last-Event-ID`; polls send the cursor as the protocol has it. */
  cursorHeaders(poll = false): Record<string, string> {
    if (!this.lastId) return {};
    if (!poll) return { 'Last-Event-ID': this.lastId };
    const [time, tag] = this.lastId.split(':');
    return { 'If-Modified-Since': new Date(Number(time) * 1000).toUTCString(), 'If-None-Match': tag! };
  }

  async run(): Promise<void> {
    while (running || this.maxSeen < acked.get(this.channel)!) {
      const app = liveApp();
      if (app) {
        try {
          await this.connectOnce(app);
        } catch (err) {
          // the process went away, or Redis did: reconnect with the id we have
          const why = `${this.kind}: ${(err as Error).message}`;
          reconnectReasons.set(why, (reconnectReasons.get(why) ?? 0) + 1);
        }
      }
      this.reconnects++;
      if (!drained()) await sleep(100 + Math.random() * 300);
      if (!running && Date.now() > drainDeadline) return;
    }
  }

  connectOnce(app: AppProcess): Promise<void> {
    const q = `id=${this.channel}${this.lastId ? `&last_event_id=${this.lastId}` : ''}`;
    switch (this.kind) {
      case 'long-poll':
        return this.poll(app.url(`/sub?id=${this.channel}`), 0);
      case 'interval-poll':
        return this.poll(app.url(`/poll?id=${this.channel}`), 100);
      case 'websocket':
        return this.websocket(app.url(`/sub?${q}`).replace('http:', 'ws:'));
      default:
        return this.stream(app.url(`/sub?id=${this.channel}`), this.kind === 'eventsource' ? 'text/event-stream' : 'multipart/mixed');
    }
  }

  /** Long-poll or interval-poll: one message per answer, until an error; the cursor goes as Last-Event-ID. */
  async poll(url: string, interval: number): Promise<void> {
    for (;;) {
      const res = await get(url, this.cursorHeaders(true), 30_000);
      const body = await readAll(res);
      if (res.statusCode === 304) {
        if (interval) await sleep(interval);
        if (!running && drained()) return;
        continue;
      }
      if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`);
      const time = Date.parse(String(res.headers['last-modified'])) / 1000;
      this.got(body.toString(), `${time}:${String(res.headers.etag)}`, res.headers['x-push-relay-missed'] === '1');
      if (!running && drained()) return;
    }
  }

  /** EventSource or multipart/mixed on one response, until it ends. */
  async stream(url: string, accept: string): Promise<void> {
    const res = await get(url, { Accept: accept, ...this.cursorHeaders() }, 0);
    if (res.statusCode !== 200) {
      await readAll(res);
      throw new Error(`status ${res.statusCode}`);
    }
    const openedOnGap = res.headers['x-push-relay-missed'] === '1';
    const parse = accept === 'text/event-stream' ? eventStreamParser(this, openedOnGap) : multipartParser(this, String(res.headers['content-type']));
    await new Promise<void>((resolve) => {
      const stopper = setInterval(() => {
        if (!running && drained()) res.destroy();
      }, 200);
      res.on('data', parse);
      res.on('close', () => {
        clearInterval(stopper);
        resolve();
      });
      res.on('error', () => {});
    });
  }

  websocket(url: string): Promise<void> {
    return new Promise((resolve) => {
      const ws = new WebSocket(url, 'ws+meta.push-relay');
      const stopper = setInterval(() => {
        if (!running && drained()) ws.close();
      }, 200);
      ws.on('message', (data: Buffer) => {
        const text = data.toString();
        const split = text.indexOf('\n\n');
        const head = text.slice(0, split);
        const id = /^id: (.*)$/m.exec(head)?.[1];
        this.got(text.slice(split + 2), id, /^missed: 1$/m.test(head));
      });
      ws.on('error', () => {});
      ws.on('close', () => {
        clearInterval(stopper);
        resolve();
      });
    });
  }
}

function eventStreamParser(sub: Subscriber, openedOnGap: boolean): (chunk: Buffer) => void {
  let buffered = '';
  let missed = openedOnGap;
  return (chunk) => {
    buffered += chunk.toString();
    let end: number;
    while ((end = buffered.indexOf('\n\n')) >= 0) {
      const event = buffered.slice(0, end);
      buffered = buffered.slice(end + 2);
      let id: string | undefined;
      let type = 'message';
      const data: string[] = [];
      for (const line of event.split('\n')) {
        if (line.startsWith('id: ')) id = line.slice(4);
        else if (line.startsWith('event: ')) type = line.slice(7);
        else if (line.startsWith('data: ')) data.push(line.slice(6));
      }
      if (type === 'push-relay-missed') missed = true;
      else if (type === 'message' && data.length > 0) {
        sub.got(data.join('\n'), id, missed);
        missed = false;
      }
    }
  };
}

function multipartParser(sub: Subscriber, contentType: string): (chunk: Buffer) => void {
  const boundary = /boundary=([^;]+)/.exec(contentType)?.[1];
  const delimiter = `\r\n--${boundary}`;
  let buffered = '';
  return (chunk) => {
    buffered += chunk.toString('latin1');
    // Every part ends with a delimiter; the stream starts with one.
    for (;;) {
      const start = buffered.indexOf(delimiter);
      if (start < 0) return;
      const next = buffered.indexOf(delimiter, start + delimiter.length);
      if (next < 0) return;
      const part = buffered.slice(start + delimiter.length, next);
      buffered = buffered.slice(next);
      const split = part.indexOf('\r\n\r\n');
      if (split < 0) continue;
      const head = part.slice(0, split);
      if (/^X-Push-Relay-End:/im.test(head)) continue;
      const etag = /^Etag: (.*)$/im.exec(head)?.[1]?.trim();
      const lastModified = /^Last-Modified: (.*)$/im.exec(head)?.[1]?.trim();
      const id = etag && lastModified ? `${Date.parse(lastModified) / 1000}:${etag}` : undefined;
      sub.got(part.slice(split + 4), id, /^X-Push-Relay-Missed: 1/im.test(head));
    }
  };
}

function get(url: string, headers: Record<string, string>, timeout: number): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers, agent: false }, resolve);
    if (timeout) req.setTimeout(timeout, () => req.destroy(new Error('no answer')));
    req.on('error', reject);
  });
}

function readAll(res: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => resolve(Buffer.concat(chunks)));
    res.on('error', reject);
    res.on('aborted', () => reject(new Error('aborted')));
  });
}

// ---- Faults -------------------------------------------------------------------------------------

const faultCounts: Record<string, number> = {};
const reconnectReasons = new Map<string, number>();
const FAULTS: [string, () => Promise<void>][] = [
  ['pub/sub connections killed', () => redisCommand('CLIENT', 'KILL', 'TYPE', 'pubsub')],
  ['DEBUG SLEEP 2', () => redisCommand('DEBUG', 'SLEEP', '2')],
  ['CLIENT PAUSE 2000', () => redisCommand('CLIENT', 'PAUSE', '2000')],
  [
    'Redis killed, restarted empty after 2 s',
    async () => {
      await kill(redis);
      await sleep(2000);
      redis = await startRedis(redisPort, redisArgs);
    },
  ],
  [
    'Redis frozen (SIGSTOP) for 3 s',
    async () => {
      redis.kill('SIGSTOP');
      await sleep(3000);
      redis.kill('SIGCONT');
    },
  ],
  ['FLUSHALL', () => redisCommand('FLUSHALL')],
  [
    'an app process killed (SIGKILL) and started again',
    async () => {
      const i = Math.floor(Math.random() * APPS);
      const app = apps[i];
      apps[i] = undefined;
      await app?.stop('SIGKILL');
      await sleep(1000);
      apps[i] = await startApp(env, '../../soak/app.ts');
    },
  ],
];

async function faults(): Promise<void> {
  for (let i = 0; running; i++) {
    for (const until = Date.now() + FAULT_EVERY; running && Date.now() < until; ) await sleep(100);
    if (!running) return;
    const [name, inject] = FAULTS[i % FAULTS.length]!;
    log(`fault: ${name}`);
    faultCounts[name] = (faultCounts[name] ?? 0) + 1;
    try {
      await inject();
    } catch (err) {
      log(`fault ${name} failed to inject: ${String(err)}`);
    }
  }
}

// ---- The run ------------------------------------------------------------------------------------

const subscribers: Subscriber[] = [];
for (const channel of channels) for (const kind of KINDS) for (let i = 0; i < APPS; i++) subscribers.push(new Subscriber(kind, channel));
const drained = () => subscribers.every((s) => s.maxSeen >= acked.get(s.channel)!);
let drainDeadline = Infinity;

log(`redis-server on ${redisPort}; ${APPS} app processes; ${channels.length} channels x ${KINDS.length} transports x ${APPS} subscribers; ${RATE} msg/s per channel; a fault every ${FAULT_EVERY / 1000} s; ${MINUTES} min`);
const subscriberRuns = subscribers.map((s) => s.run());
await sleep(1000);
const publisherRuns = channels.map((c) => publisher(c));
const faultRun = faults();
const progress = setInterval(() => {
  const total = [...acked.values()].reduce((a, b) => a + b, 0);
  log(`acknowledged ${total}, delivered ${subscribers.reduce((a, s) => a + s.received, 0)}`);
}, 30_000);

await sleep(MINUTES * 60_000);
running = false;
log('stopping publishers and faults');
await Promise.all([...publisherRuns, faultRun]);
// Redis and every process are back now: give every subscriber time to catch up.
drainDeadline = Date.now() + 60_000;
await Promise.all(subscriberRuns);
clearInterval(progress);

const sum = (f: (s: Subscriber) => number, of = subscribers) => of.reduce((a, s) => a + f(s), 0);
const totalAcked = [...acked.values()].reduce((a, b) => a + b, 0);
const expected = sum((s) => acked.get(s.channel)!);
const tail = sum((s) => Math.max(0, acked.get(s.channel)! - s.maxSeen));
const undelivered = sum((s) => s.silentGap) + tail;
const sorted = [...ackDelays].sort((a, b) => a - b);
const pct = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
const figures = {
  minutes: MINUTES,
  faults: faultCounts,
  publishes_acknowledged: totalAcked,
  publishes_given_up: gaveUp,
  publish_retries: retries,
  ack_delay_ms: { p50: pct(50), p99: pct(99), max: sorted.at(-1) ?? 0 },
  deliveries_expected: expected,
  deliveries_received: sum((s) => s.received),
  lost_with_loss_signal: sum((s) => s.signalledGap),
  acknowledged_but_undelivered: undelivered,
  duplicates: sum((s) => s.duplicates),
  reconnects: sum((s) => s.reconnects),
  reconnect_errors: Object.fromEntries(reconnectReasons),
  by_transport: Object.fromEntries(
    KINDS.map((k) => {
      const of = subscribers.filter((s) => s.kind === k);
      return [
        k,
        {
          received: sum((s) => s.received, of),
          signalled: sum((s) => s.signalledGap, of),
          silent: sum((s) => s.silentGap + Math.max(0, acked.get(s.channel)! - s.maxSeen), of),
          duplicates: sum((s) => s.duplicates, of),
          reconnects: sum((s) => s.reconnects, of),
        },
      ];
    }),
  ),
};
console.log(JSON.stringify(figures, null, 2));
for (const s of subscribers) if (s.silentGaps.length) log(`${s.kind} on ${s.channel}: silent gaps ${s.silentGaps.join(', ')}`);
for (const s of subscribers) if (s.maxSeen < acked.get(s.channel)!) log(`${s.kind} on ${s.channel}: stopped at ${s.maxSeen} of ${acked.get(s.channel)}`);

await Promise.all(apps.map((a) => a?.stop()));
await kill(redis);
process.exit(undelivered === 0 ? 0 : 1);
