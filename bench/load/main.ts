/**
 * The load generator: one scenario against one server, then one JSON line (LoadResult) on stdout.
 * bench/run.ts starts it pinned to its own core: `node --import tsx bench/load/main.ts '<LoadConfig>'`.
 *
 * Long-poll subscribers walk their channel with the Last-Modified/Etag of the previous answer as
 * If-Modified-Since/If-None-Match; EventSource subscribers read one stream. Every delivery is checked
 * (DeliveryCheck) and timed from the moment its publish request was written.
 */
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { openConnections, type RawConnection, type RawResponse } from './raw-http.js';
import type { LoadConfig, LoadResult } from './protocol.js';
import { DeliveryCheck, Latencies, messageBody, parseSeq, BODY_DIGITS } from './verify.js';

const config = JSON.parse(process.argv[2] ?? '{}') as LoadConfig;
const check = new DeliveryCheck();
const latencies = new Latencies();
const problems = new Map<string, number>();
const problem = (what: string) => problems.set(what, (problems.get(what) ?? 0) + 1);
const now = () => performance.now();
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// Measuring window: CPU of this process and of the server.

function cpuTicks(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]); // utime + stime, in clock ticks (1/100 s)
    } catch {
      return NaN;
    }
  }
  return ticks;
}

function serverRssBytes(): number {
  let bytes = 0;
  for (const pid of config.serverPids) {
    const status = readFileSync(`/proc/${pid}/status`, 'latin1');
    bytes += Number(/VmRSS:\s+(\d+)/.exec(status)?.[1]) * 1024;
  }
  return bytes;
}

/**
 * Busy ticks of every CPU: user + nice + system (softirq left out: loopback traffic lands there),
 * and steal (time the hypervisor gave to other guests).
 */
function machineTicks(): { busy: number; steal: number } {
  try {
    const line = readFileSync('/proc/stat', 'latin1').split('\n', 1)[0]!;
    const f = line.split(/\s+/).slice(1, 9).map(Number);
    return { busy: f[0]! + f[1]! + f[2]!, steal: f[7]! };
  } catch {
    return { busy: NaN, steal: NaN };
  }
}

class Window {
  #t0 = 0;
  #cpu0 = process.cpuUsage();
  #server0 = 0;
  #aux0 = 0;
  #machine0 = { busy: 0, steal: 0 };
  elapsedMs = 0;
  loadgenCpu = 0;
  serverCpu = 0;
  auxCpu = 0;
  /** CPU used by other processes of the machine meanwhile (noise), % of one core. */
  otherCpu = 0;
  /** CPU time stolen by the hypervisor meanwhile, % of one core. */
  stealCpu = 0;

  start(): void {
    this.#t0 = now();
    this.#cpu0 = process.cpuUsage();
    this.#server0 = cpuTicks(config.serverPids);
    this.#aux0 = cpuTicks(config.auxPids);
    this.#machine0 = machineTicks();
  }

  stop(): void {
    this.elapsedMs = now() - this.#t0;
    const cpu = process.cpuUsage(this.#cpu0);
    const loadgenMs = (cpu.user + cpu.system) / 1000;
    const serverMs = (cpuTicks(config.serverPids) - this.#server0) * 10;
    const auxMs = (cpuTicks(config.auxPids) - this.#aux0) * 10;
    this.auxCpu = pct(auxMs / this.elapsedMs);
    this.loadgenCpu = pct(loadgenMs / this.elapsedMs);
    this.serverCpu = pct(serverMs / this.elapsedMs);
    const machine = machineTicks();
    const machineMs = (machine.busy - this.#machine0.busy) * 10;
    this.stealCpu = pct(((machine.steal - this.#machine0.steal) * 10) / this.elapsedMs);
    this.otherCpu = Math.max(0, pct((machineMs - loadgenMs - serverMs - auxMs) / this.elapsedMs));
  }
}
const pct = (share: number) => Math.round(share * 1000) / 10;

// ---------------------------------------------------------------------------------------------
// Channels, subscribers, publishers.

type Phase = 'warmup' | 'measure' | 'drain';

class Channel {
  /** Next sequence number to publish. */
  nextSeq = 0;
  /** When each message's publish request was written. */
  readonly publishedAt: number[] = [];
  /** Subscribers that have the newest message. */
  haveNewest = 0;
  subscribers = 0;
  readonly publishRequestHead: string;
  readonly #subscribeHead: string;
  #cursorKey = '';
  #cursorRequest = Buffer.alloc(0);
  onRoundComplete: (channel: Channel) => void = () => {};

  constructor(readonly name: string) {
    this.publishRequestHead =
      `POST ${config.publishPath}?id=${name} HTTP/1.1\r\nHost: bench\r\nContent-Type: text/plain\r\n` +
      `Content-Length: ${BODY_DIGITS}\r\n\r\n`;
    this.#subscribeHead = `GET ${config.subscribePath}?id=${name} HTTP/1.1\r\nHost: bench\r\n`;
  }

  /** The subscribe request for a cursor; every subscriber of a lockstep channel shares its bytes. */
  subscribeRequest(lastModified: string | undefined, etag: string | undefined): Buffer {
    const key = `${lastModified}|${etag}`;
    if (key !== this.#cursorKey) {
      this.#cursorKey = key;
      const cursor = lastModified === undefined ? '' : `If-Modified-Since: ${lastModified}\r\nIf-None-Match: ${etag ?? '0'}\r\n`;
      this.#cursorRequest = Buffer.from(`${this.#subscribeHead}${cursor}\r\n`, 'latin1');
    }
    return this.#cursorRequest;
  }

  get newest(): number {
    return this.nextSeq - 1;
  }

  /** A subscriber now has `seq` (checked in order): counts toward the round. */
  got(seq: number, at: number, counted: boolean): void {
    const sent = this.publishedAt[seq];
    if (sent !== undefined && counted) latencies.add(at - sent);
    if (counted) stats.deliveries++;
    if (seq === this.newest && ++this.haveNewest === this.subscribers) this.onRoundComplete(this);
  }
}

const stats = { phase: 'warmup' as Phase, deliveries: 0, publishes: 0, stopped: false };
const counting = () => stats.phase === 'measure';

class LongPollSubscriber {
  last = -1;
  /**
   * Ask again only when told (`request()`), not on receipt: the latency scenario re-subscribes
   * after a round, so that reading a burst of 10,000 answers is not slowed by 10,000 writes.
   */
  deferRequests = false;
  #lastModified: string | undefined;
  #etag: string | undefined;

  constructor(
    readonly conn: RawConnection,
    readonly channel: Channel,
  ) {
    channel.subscribers++;
    conn.onResponse = (res) => this.#answer(res);
    conn.onClose = () => {
      if (!stats.stopped) problem('subscriber connection closed by server');
    };
  }

  request(): void {
    this.conn.write(this.channel.subscribeRequest(this.#lastModified, this.#etag));
  }

  #answer(res: RawResponse): void {
    if (res.status !== 200) {
      problem(`subscriber got ${res.status}`);
      // 304 is a time-out: ask again with the same cursor.
      if (res.status === 304 && !stats.stopped) this.request();
      return;
    }
    const at = now();
    const seq = parseSeq(res.body);
    const before = this.last;
    this.last = check.check(before, seq);
    this.#lastModified = res.lastModified;
    this.#etag = res.etag;
    if (!stats.stopped && !this.deferRequests) this.request();
    if (this.last !== before) this.channel.got(this.last, at, counting());
  }
}

class EventSourceSubscriber {
  last = -1;
  open = false;
  #text = '';

  constructor(
    readonly conn: RawConnection,
    readonly channel: Channel,
    onNotAStream: () => void,
  ) {
    channel.subscribers++;
    conn.onResponse = (res) => {
      if (res.status === 200 && res.contentType?.startsWith('text/event-stream')) this.open = true;
      else onNotAStream();
    };
    conn.onStreamData = (data) => this.#data(data);
    conn.onClose = () => {
      if (!stats.stopped) problem('EventSource stream closed by server');
    };
  }

  request(): void {
    this.conn.write(`GET ${config.eventSourcePath}?id=${this.channel.name} HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n\r\n`);
  }

  #data(data: Buffer): void {
    const at = now();
    this.#text += data.toString("latin1", 0, data.length);
    let end: number;
    while ((end = this.#text.indexOf('\n\n')) >= 0) {
      const event = this.#text.slice(0, end);
      this.#text = this.#text.slice(end + 2);
      const dataAt = event.startsWith('data:') ? 0 : event.indexOf('\ndata:') + 1;
      if (dataAt === 0 && !event.startsWith('data:')) continue; // comment or id-only event
      const lineEnd = event.indexOf('\n', dataAt);
      const seq = parseSeq(event.slice(dataAt + 5, lineEnd < 0 ? event.length : lineEnd).trim());
      const before = this.last;
      this.last = check.check(before, seq);
      if (this.last !== before) this.channel.got(this.last, at, counting());
    }
  }
}

/** Keep-alive publisher connections; one request in flight each, the rest queued. */
class Publishers {
  readonly #idle: RawConnection[] = [];
  readonly #queue: Channel[] = [];
  readonly #busy = new Map<RawConnection, Channel>();

  constructor(conns: RawConnection[]) {
    for (const conn of conns) {
      conn.onResponse = (res) => this.#answer(conn, res);
      this.#idle.push(conn);
    }
  }

  /** Publishes the channel's next message. */
  publish(channel: Channel): void {
    channel.haveNewest = 0;
    const conn = this.#idle.pop();
    if (conn) this.#send(conn, channel);
    else this.#queue.push(channel);
  }

  #send(conn: RawConnection, channel: Channel): void {
    const seq = channel.nextSeq++;
    this.#busy.set(conn, channel);
    channel.publishedAt[seq] = now();
    conn.write(channel.publishRequestHead + messageBody(seq));
    if (counting()) stats.publishes++;
  }

  #answer(conn: RawConnection, res: RawResponse): void {
    if (res.status !== 201 && res.status !== 202) problem(`publisher got ${res.status}`);
    this.#busy.delete(conn);
    const next = this.#queue.shift();
    if (next) this.#send(conn, next);
    else this.#idle.push(conn);
  }
}

/** Asks the publisher endpoint how many subscribers wait on a channel (text/plain channel info). */
class InfoProbe {
  #conn: RawConnection;
  #resolve: ((n: number) => void) | undefined;

  constructor(conn: RawConnection) {
    this.#conn = conn;
    conn.onResponse = (res) => {
      const text = res.body.toString("latin1", 0, res.body.length);
      const n = res.status === 200 ? Number(/active subscribers: (\d+)/.exec(text)?.[1] ?? NaN) : 0;
      this.#resolve?.(n);
    };
  }

  subscribers(channel: string): Promise<number> {
    return new Promise((resolve) => {
      this.#resolve = resolve;
      this.#conn.write(`GET ${config.publishPath}?id=${channel} HTTP/1.1\r\nHost: bench\r\nAccept: text/plain\r\n\r\n`);
    });
  }

  /** Polls until `count` subscribers wait (true) or the deadline passes (false). */
  async waitFor(channel: string, count: number, deadlineMs: number): Promise<boolean> {
    const until = now() + deadlineMs;
    while (now() < until) {
      if ((await this.subscribers(channel)) >= count) return true;
      await sleep(2);
    }
    return false;
  }
}

async function waitUntil(done: () => boolean, deadlineMs: number): Promise<boolean> {
  const until = now() + deadlineMs;
  while (!done()) {
    if (now() > until) return false;
    await sleep(5);
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Scenarios.

const channelName = (i: number) => `${config.channelPrefix}-${i}`;

interface FanoutPlan {
  channels: number;
  subscribersPerChannel: number;
  publisherConnections: number;
  eventSource?: boolean;
}

/**
 * Lockstep fan-out: every channel publishes its next message as soon as all its subscribers have the
 * previous one. Warm-up, then a measured window, then a drain in which nothing new is published.
 */
async function fanout(plan: FanoutPlan): Promise<LoadResult> {
  const channels = Array.from({ length: plan.channels }, (_, i) => new Channel(channelName(i)));
  const total = plan.channels * plan.subscribersPerChannel;
  const conns = [...(await openConnections(total, config.subscribePorts)), ...(await openConnections(plan.publisherConnections, [config.port]))];
  const publishers = new Publishers(conns.slice(total, total + plan.publisherConnections));
  let notAStream = false;
  const subscribers = conns.slice(0, total).map((conn, i) => {
    const channel = channels[i % plan.channels]!;
    return plan.eventSource ? new EventSourceSubscriber(conn, channel, () => (notAStream = true)) : new LongPollSubscriber(conn, channel);
  });
  for (const s of subscribers) s.request();
  if (plan.eventSource) {
    // Nchan answers the headers at once; a relay that waits for the first message is still measured.
    await waitUntil(() => notAStream || subscribers.every((s) => (s as EventSourceSubscriber).open), 2000);
  } else {
    await sleep(200);
  }
  for (const channel of channels) {
    channel.onRoundComplete = (c) => {
      if (stats.phase !== 'drain') publishers.publish(c);
    };
    publishers.publish(channel);
  }
  const window = new Window();
  await sleep(config.warmupMs);
  if (notAStream) return finish(conns, window, undefined, 'deliveries/s', 'no EventSource stream: Accept: text/event-stream was answered as long-poll');
  stats.phase = 'measure';
  window.start();
  await sleep(config.durationMs);
  stats.phase = 'drain';
  window.stop();
  const drained = await waitUntil(() => subscribers.every((s) => s.last === s.channel.newest), 10_000);
  if (!drained) reportStalls(subscribers);
  return finish(conns, window, (stats.deliveries * 1000) / window.elapsedMs, 'deliveries/s');
}

/**
 * Subscribers still without their channel's newest message 10 s after the last publish: the server
 * never answered them (a lost wake-up), which counts as lost messages.
 */
function reportStalls(subscribers: { last: number; channel: Channel }[]): void {
  const stalled = subscribers.filter((s) => s.last < s.channel.newest);
  const channels = new Set(stalled.map((s) => s.channel));
  for (const s of stalled) check.lost += s.channel.newest - s.last;
  const example = stalled[0];
  problem(
    `drain: ${stalled.length} subscribers on ${channels.size} channels never got their channel's newest message` +
      (example ? ` (e.g. ${example.channel.name}: has ${example.last}, newest ${example.channel.newest}, ${example.channel.haveNewest}/${example.channel.subscribers} have it)` : ''),
  );
}

/** One channel, many long-poll subscribers: before each publish, all of them wait on the server. */
async function latency(): Promise<LoadResult> {
  const n = config.manySubscribers;
  const channel = new Channel(channelName(0));
  const conns = [...(await openConnections(n, config.subscribePorts)), ...(await openConnections(2, [config.port]))];
  const publishers = new Publishers([conns[n]!]);
  const probe = new InfoProbe(conns[n + 1]!);
  const subscribers = conns.slice(0, n).map((conn) => new LongPollSubscriber(conn, channel));
  for (const s of subscribers) {
    s.deferRequests = true;
    s.request();
  }
  let roundDone: () => void = () => {};
  channel.onRoundComplete = () => roundDone();
  const round = async (measured: boolean) => {
    if (!(await probe.waitFor(channel.name, n, 10_000))) problem('not every subscriber was parked before a publish');
    stats.phase = measured ? 'measure' : 'warmup';
    const complete = new Promise<void>((resolve) => (roundDone = resolve));
    publishers.publish(channel);
    const ok = await Promise.race([complete.then(() => true), sleep(10_000).then(() => false)]);
    stats.phase = 'drain';
    if (!ok) problem('a round did not complete within 10 s');
    for (const s of subscribers) s.request();
    return ok;
  };
  for (let i = 0; i < 2; i++) await round(false);
  const window = new Window();
  window.start();
  for (let i = 0; i < config.rounds; i++) if (!(await round(true))) break;
  window.stop();
  if (subscribers.some((s) => s.last < channel.newest)) reportStalls(subscribers);
  const summary = latencies.summary();
  return { ...finish(conns, window, summary?.p99, 'ms p99'), latency: summary };
}

/** Publishes as fast as `connections` keep-alive connections allow, round-robin over channels, nobody listening. */
async function publishOnly(channelCount: number, connections: number): Promise<LoadResult> {
  const requests = Array.from({ length: channelCount }, (_, i) => Buffer.from(new Channel(channelName(i)).publishRequestHead + messageBody(0), 'latin1'));
  const conns = await openConnections(connections, [config.port]);
  let next = 0;
  const window = new Window();
  conns.forEach((conn) => {
    conn.onResponse = (res) => {
      if (res.status !== 202 && res.status !== 201) problem(`publisher got ${res.status}`);
      if (counting()) stats.publishes++;
      if (stats.phase !== 'drain') conn.write(requests[next++ % channelCount]!);
    };
    conn.write(requests[next++ % channelCount]!);
  });
  await sleep(config.warmupMs);
  stats.phase = 'measure';
  window.start();
  await sleep(config.durationMs);
  window.stop();
  stats.phase = 'drain';
  return finish(conns, window, (stats.publishes * 1000) / window.elapsedMs, 'publishes/s');
}

/** RSS growth of the server per parked long-poll subscriber (one channel). */
async function memory(): Promise<LoadResult> {
  const n = config.manySubscribers;
  // Warm the server's code paths (JIT, buffers) on another channel first, then settle.
  await fanoutWarmup();
  await sleep(500);
  const before = serverRssBytes();
  const channel = new Channel(channelName(1));
  const conns = [...(await openConnections(n, config.subscribePorts)), ...(await openConnections(2, [config.port]))];
  const publishers = new Publishers([conns[n]!]);
  const probe = new InfoProbe(conns[n + 1]!);
  const subscribers = conns.slice(0, n).map((conn) => new LongPollSubscriber(conn, channel));
  for (const s of subscribers) s.request();
  if (!(await probe.waitFor(channel.name, n, 20_000))) problem('not every subscriber got parked');
  await sleep(1000);
  const after = serverRssBytes();
  // Then release them all and check that each got the message.
  const window = new Window();
  window.start();
  publishers.publish(channel);
  if (!(await waitUntil(() => subscribers.every((s) => s.last === 0), 10_000))) reportStalls(subscribers);
  window.stop();
  const result = finish(conns, window, Math.round((after - before) / n), 'bytes/subscriber');
  return { ...result, extra: { rssBeforeBytes: before, rssParkedBytes: after, parked: n } };
}

async function fanoutWarmup(): Promise<void> {
  const channel = new Channel(channelName(0));
  const conns = [...(await openConnections(100, config.subscribePorts)), ...(await openConnections(1, [config.port]))];
  const publishers = new Publishers([conns[100]!]);
  const subscribers = conns.slice(0, 100).map((conn) => new LongPollSubscriber(conn, channel));
  for (const s of subscribers) s.request();
  await sleep(100);
  channel.onRoundComplete = (c) => {
    if (c.nextSeq < 50) publishers.publish(c);
  };
  publishers.publish(channel);
  await waitUntil(() => subscribers.every((s) => s.last === 49), 10_000);
  stats.stopped = true;
  for (const conn of conns) conn.reset();
  stats.stopped = false;
  // Warm-up deliveries are not part of the figures.
  stats.deliveries = 0;
}

function finish(conns: RawConnection[], window: Window, value: number | undefined, unit: string, notApplicable?: string): LoadResult {
  stats.stopped = true;
  for (const conn of conns) conn.reset();
  return {
    scenario: config.scenario,
    value: value === undefined ? undefined : Math.round(value * 100) / 100,
    unit,
    ...(notApplicable ? { notApplicable } : {}),
    deliveries: stats.deliveries,
    publishes: stats.publishes,
    elapsedMs: Math.round(window.elapsedMs),
    loadgenCpu: window.loadgenCpu,
    serverCpu: window.serverCpu,
    auxCpu: window.auxCpu,
    otherCpu: window.otherCpu,
    stealCpu: window.stealCpu,
    lost: check.lost,
    duplicated: check.duplicated,
    reordered: check.reordered,
    garbled: check.garbled,
    problems: [...problems].map(([what, n]) => `${what} (x${n})`),
    ...(latencies.count > 0 && unit !== 'ms p99' ? { latency: latencies.summary() } : {}),
  };
}

async function main(): Promise<LoadResult> {
  switch (config.scenario) {
    case 'fanout':
      return fanout({ channels: 1, subscribersPerChannel: 1000, publisherConnections: 1 });
    case 'channels':
      return fanout({ channels: 1000, subscribersPerChannel: 10, publisherConnections: 16 });
    case 'latency':
      return latency();
    case 'publish':
      return publishOnly(1000, 8);
    case 'eventsource':
      return fanout({ channels: 1, subscribersPerChannel: 1000, publisherConnections: 1, eventSource: true });
    case 'memory':
      return memory();
  }
}

main().then(
  (result) => {
    process.stdout.write(`${JSON.stringify(result)}\n`);
    process.exit(0);
  },
  (err: unknown) => {
    process.stderr.write(`load generator failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
