/**
 * Traffic for the failover tests: subscribers long-polling a channel on every app process, and a
 * publisher that retries what got 503 (with an Idempotency-Key, so that a retry of a publish that was
 * stored is not stored twice). `delivered()` checks that every message the relay acknowledged
 * (201/202) reached every subscriber once, in order, with no loss signal.
 */
import assert from 'node:assert/strict';
import { cursorOf, request } from '../helpers/http-client.js';
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
