/**
 * Several app processes on one Redis (or one Redis Cluster): 3 processes of
 * test/redis/fixtures/relay-app.ts, subscribers spread over them, publishes to any of them.
 * multi-process.test.ts runs it on the shared Redis, cluster.test.ts on a cluster of its own.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { cursorOf, request, type HttpResponse } from '../helpers/http-client.js';
import { waitFor, within } from '../helpers/wait.js';
import { startApp, type AppProcess } from './app-processes.js';

/**
 * `connection()` gives the app processes' environment naming the Redis (REDIS_URL or REDIS_CLUSTER)
 * and their key prefix (PREFIX); `cleanup` runs after the last test.
 */
export function multiProcessSuite(name: string, connection: () => Record<string, string>, cleanup?: () => Promise<void>): void {
  describe(name, () => {
    let apps: AppProcess[] = [];
    let counter = 0;
    const channel = () => `mp-${randomBytes(3).toString('hex')}-${++counter}`;

    before(async () => {
      apps = await Promise.all([0, 1, 2].map(() => startApp({ ...connection(), HEARTBEAT: '100' })));
    });
    after(async () => {
      await Promise.all(apps.map((a) => a.stop()));
      await cleanup?.();
    });

    const subscribers = async (app: AppProcess, id: string) => {
      const res = await request(app.url(`/pub?id=${id}`), { headers: { Accept: 'application/json' } });
      return res.status === 200 ? (JSON.parse(res.text) as { subscribers: number }).subscribers : 0;
    };
    const waiting = (app: AppProcess, id: string, n: number) =>
      waitFor(`${n} waiting subscribers on ${id}`, async () => (await subscribers(app, id)) === n);
    const post = (app: AppProcess, id: string, body: string) => request(app.url(`/pub?id=${id}`), { method: 'POST', body });

    it('every subscriber on every process gets every message once, in the same order, wherever it was published', async () => {
      const id = channel();
      const total = 40;
      const perApp = 2;
      // Each subscriber long-polls in a loop with its cursor, like a client of the protocol.
      const received: string[][] = [];
      const loops: Promise<void>[] = [];
      for (const app of apps) {
        for (let i = 0; i < perApp; i++) {
          const got: string[] = [];
          received.push(got);
          loops.push(
            (async () => {
              let headers: Record<string, string> = {};
              while (got.length < total) {
                const res = await request(app.url(`/sub?id=${id}`), { headers });
                assert.equal(res.status, 200, `subscriber on :${app.port} got ${res.status} ${res.text}`);
                got.push(res.text);
                headers = cursorOf(res);
              }
            })(),
          );
        }
      }
      await waiting(apps[0]!, id, apps.length * perApp);
      // Half in sequence, half concurrently (Redis decides their order: all must see the same one).
      for (let n = 0; n < total / 2; n++) {
        const res = await post(apps[n % apps.length]!, id, `m${n}`);
        assert.ok(res.status === 201 || res.status === 202, `POST answered ${res.status}`);
      }
      const concurrent = await Promise.all(
        Array.from({ length: total / 2 }, (_, k) => post(apps[k % apps.length]!, id, `m${total / 2 + k}`)),
      );
      for (const res of concurrent) assert.ok(res.status === 201 || res.status === 202, `POST answered ${res.status}`);
      await within(Promise.all(loops), 20000, 'subscriber loops');
      const first = received[0]!;
      assert.deepEqual(first.slice(0, total / 2), Array.from({ length: total / 2 }, (_, n) => `m${n}`), 'sequential publishes in order');
      assert.equal(new Set(first).size, total, 'no message twice');
      for (const got of received) assert.deepEqual(got, first, 'every subscriber saw the same messages in the same order');
    });

    it('201 when the only waiting subscriber is on another process, 202 when none is', async () => {
      const id = channel();
      const [a, b, c] = apps as [AppProcess, AppProcess, AppProcess];
      const parked = request(b.url(`/sub?id=${id}`));
      await waiting(a, id, 1);
      const published = await post(a, id, 'to b');
      assert.equal(published.status, 201);
      const got = await within(parked, 5000, 'subscriber on b');
      assert.equal(got.status, 200);
      assert.equal(got.text, 'to b');
      await waiting(c, id, 0);
      assert.equal((await post(c, id, 'nobody')).status, 202);
    });

    it('the statistics summary asked of one process counts the publishes and subscribers of every process', async () => {
      const [a, b, c] = apps as [AppProcess, AppProcess, AppProcess];
      type Summary = { published_messages: number; by_worker: Array<{ pid: number; subscribers: number }> };
      const summary = async (app: AppProcess) => JSON.parse((await request(app.url('/stats'))).text) as Summary;
      const before = (await summary(a)).published_messages;
      const id = channel();
      for (let i = 0; i < 3; i++) await post(a, id, `a${i}`);
      for (let i = 0; i < 2; i++) await post(b, id, `b${i}`);
      assert.equal((await summary(c)).published_messages - before, 5, 'five publishes, on two processes, counted by a third');
      const waitingOn = channel();
      const parked = request(c.url(`/sub?id=${waitingOn}`));
      const pids = apps.map((app) => app.child.pid);
      const seen = await waitFor('c counted in by_worker', async () => {
        const s = await summary(a);
        return s.by_worker.find((w) => w.pid === c.child.pid)?.subscribers === 1 && s;
      });
      assert.deepEqual(seen.by_worker.map((w) => w.pid).sort(), [...pids].sort(), 'every process, by its pid');
      assert.equal((await post(a, waitingOn, 'x')).status, 201);
      assert.equal((await parked).status, 200);
    });

    it('concurrency "last": a newer subscriber on process B makes process A answer 409 to the older one', async () => {
      const id = channel();
      const [a, b, c] = apps as [AppProcess, AppProcess, AppProcess];
      const older = request(a.url(`/sub-last?id=${id}`));
      await waiting(c, id, 1);
      const newer = request(b.url(`/sub-last?id=${id}`));
      const conflict = await within(older, 5000, 'older subscriber');
      assert.equal(conflict.status, 409);
      assert.match(conflict.text, /newer subscriber/);
      await waiting(c, id, 1);
      assert.equal((await post(c, id, 'for the newer')).status, 201);
      const got = await within(newer, 5000, 'newer subscriber');
      assert.equal(got.status, 200);
      assert.equal(got.text, 'for the newer');
    });

    it('concurrency "first": a second subscriber on another process gets 409, the first keeps waiting', async () => {
      const id = channel();
      const [a, b, c] = apps as [AppProcess, AppProcess, AppProcess];
      const first = request(a.url(`/sub-first?id=${id}`));
      await waiting(c, id, 1);
      const second: HttpResponse = await within(request(b.url(`/sub-first?id=${id}`)), 5000, 'second subscriber');
      assert.equal(second.status, 409);
      assert.equal((await post(c, id, 'for the first')).status, 201);
      const got = await within(first, 5000, 'first subscriber');
      assert.equal(got.status, 200);
      assert.equal(got.text, 'for the first');
    });

    it('a crashed process stops counting: its subscribers are counted out once its lease passes', async () => {
      const id = channel();
      const doomed = await startApp({ ...connection(), HEARTBEAT: '100' });
      const parked = request(doomed.url(`/sub?id=${id}`)).catch((err: unknown) => err);
      const [a] = apps as [AppProcess];
      const alsoParked = request(a.url(`/sub?id=${id}`));
      await waiting(a, id, 2);
      await doomed.stop('SIGKILL');
      assert.ok((await parked) instanceof Error, 'the crashed process dropped its connection');
      // Lease = 3 heartbeats of 100 ms; the next script touching the channel prunes it.
      await waitFor('the crashed process counted out', async () => (await subscribers(a, id)) === 1, 5000);
      assert.equal((await post(a, id, 'still here')).status, 201);
      assert.equal((await within(alsoParked, 5000, 'live subscriber')).text, 'still here');
    });
  });
}
