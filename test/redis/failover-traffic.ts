/**
 * Traffic for the failover tests: subscribers long-polling a channel on every app process, and a
 * publisher that retries what got 503 (with an Idempotency-Key, so that a retry of a publish that was
 * stored is not stored twice). `delivered()` checks that every message the relay acknowledged
 * (201/202) reached every subscriber once, in order, with no loss signal.
 */
import assert from 'node:assert/strict';
import { createPushRelay } from '../../src/index.js';
import type { RedisStore } from '../../src/redis.js';
import { cursorOf, request } from '../helpers/http-client.js';
import { serveNodeHttp } from '../helpers/servers.js';
import { waitFor, within } from '../helpers/wait.js';
import type { AppProcess } from './app-processes.js';

const MISSED = 'x-push-relay-missed';

export interface Run {
  acknowledged: string[];
  received: string[][];
  missed: string[];
  unavailable: number;
  stop(): Promise<void>;
}

/** Subscribers (2 per app) long-polling `channel`, and a publisher sending `total` messages, retrying on 503. */
export function traffic(apps: AppProcess[], channel: string, total: number, pause: number): Run & { published: Promise<void> } {
  const run: Run & { published: Promise<void> } = { acknowledged: [], received: [], missed: [], unavailable: 0, stop: async () => {}, published: Promise.resolve() };
  let stopping = false;
  const loops = apps.flatMap((app) =>
    [0, 1].map(async () => {
      const got: string[] = [];
      run.received.push(got);
      let headers: Record<string, string> = {};
      while (!stopping) {
        const res = await request(app.url(`/sub?id=${channel}`), { headers }).catch(() => undefined);
        if (!res || res.status !== 200) {
          if (res?.status === 503) run.unavailable++;
          await new Promise((r) => setTimeout(r, 50));
          continue;
        }
        if (res.headers[MISSED]) run.missed.push(`${res.headers[MISSED]} before ${res.text}`);
        got.push(res.text);
        headers = cursorOf(res);
      }
    }),
  );
  run.published = (async () => {
    for (let n = 0; n < total; n++) {
      const body = `m${n}`;
      for (let attempt = 0; ; attempt++) {
        const app = apps[(n + attempt) % apps.length]!;
        const res = await request(app.url(`/pub?id=${channel}`), { method: 'POST', body, headers: { 'Idempotency-Key': body } }).catch(() => undefined);
        if (res && (res.status === 201 || res.status === 202)) break;
        if (res) assert.equal(res.status, 503, `publish of ${body} answered ${res.status}: ${res.text}`);
        run.unavailable++;
        await new Promise((r) => setTimeout(r, 50));
      }
      run.acknowledged.push(body);
      await new Promise((r) => setTimeout(r, pause));
    }
  })();
  run.stop = async () => {
    stopping = true;
    await Promise.allSettled(loops);
  };
  return run;
}


/** Waits for every subscriber to hold every acknowledged message, stops them, and checks what they got. */
export async function delivered(run: Run, what: string): Promise<void> {
  await within(
    waitFor(`${what}: every subscriber has all ${run.acknowledged.length} acknowledged messages`, () => run.received.every((got) => got.length >= run.acknowledged.length), 30000),
    35000,
    what,
  );
  await run.stop();
  assert.deepEqual(run.missed, [], 'no subscriber was told it missed messages');
  for (const got of run.received) assert.deepEqual(got, run.acknowledged, 'every acknowledged message, once, in order');
}

/**
 * Subscribers parked on `ids` (one each, on a relay over `store`) before `failover()` kills a
 * master: each must get the message published to its channel the moment the new master answers.
 */
export async function parkedThroughFailover(store: RedisStore, ids: string[], failover: () => Promise<void>): Promise<void> {
  const relay = createPushRelay({ store });
  const server = await serveNodeHttp({ '/sub': relay.subscriber({ subscriberTimeout: '60s' }) });
  try {
    await store.ready();
    const parked = ids.map((id) => request(server.url(`/sub?id=${id}`)));
    await waitFor(`${ids.length} parked`, async () => (await Promise.all(ids.map((id) => relay.channelInfo(id)))).every((c) => c?.subscribers === 1), 10000);
    await failover();
    for (const id of ids) {
      await waitFor(`a publish to ${id} after the failover`, () => relay.publish(id, `after ${id}`).then(() => true, () => false), 30000);
    }
    const answers = await within(Promise.all(parked), 10000, 'the parked subscribers');
    assert.deepEqual(answers.map((a) => a.text), ids.map((id) => `after ${id}`));
  } finally {
    await relay.close();
    await store.close();
    await server.close();
  }
}
