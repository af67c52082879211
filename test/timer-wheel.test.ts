import assert from 'node:assert/strict';
import { describe, it, mock } from 'node:test';
import { TimerWheel, type WheelEntry } from '../src/timer-wheel.js';

interface Entry extends WheelEntry {
  name: string;
}
const entry = (name: string): Entry => ({ name, slot: -1 });

function wheel(start = 10_000) {
  const clock = { now: start };
  const fired: string[] = [];
  const w = new TimerWheel<Entry>(100, (e) => fired.push(e.name), () => clock.now);
  return { clock, fired, w };
}

describe('TimerWheel (fake clock)', () => {
  it('fires entries once their slot has come, never earlier, in deadline order', () => {
    const { clock, fired, w } = wheel();
    w.schedule(entry('b'), 10_450);
    w.schedule(entry('a'), 10_150);
    assert.equal(w.size, 2);
    clock.now = 10_140;
    w.tick();
    assert.deepEqual(fired, []);
    clock.now = 10_200;
    w.tick();
    assert.deepEqual(fired, ['a']);
    clock.now = 10_499;
    w.tick();
    assert.deepEqual(fired, ['a']);
    clock.now = 10_500;
    w.tick();
    assert.deepEqual(fired, ['a', 'b']);
    assert.equal(w.size, 0);
  });

  it('cancels and reschedules in place', () => {
    const { clock, fired, w } = wheel();
    const a = entry('a');
    const b = entry('b');
    w.schedule(a, 10_100);
    w.schedule(b, 10_100);
    w.cancel(a);
    assert.equal(a.slot, -1);
    w.schedule(b, 10_900);
    assert.equal(w.size, 1);
    clock.now = 10_500;
    w.tick();
    assert.deepEqual(fired, []);
    clock.now = 11_000;
    w.tick();
    assert.deepEqual(fired, ['b']);
  });

  it('fires everything overdue after a long stall, and a past deadline in the next slot', () => {
    const { clock, fired, w } = wheel();
    w.schedule(entry('x'), 10_300);
    w.schedule(entry('y'), 50_000);
    w.schedule(entry('past'), 5_000);
    clock.now = 1_000_000;
    w.tick();
    assert.deepEqual(fired, ['past', 'x', 'y']);
  });

  it('keeps firing the others when one callback throws', () => {
    const clock = { now: 0 };
    const fired: string[] = [];
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.message);
    process.on('warning', onWarning);
    const w = new TimerWheel<Entry>(
      100,
      (e) => {
        if (e.name === 'bad') throw new Error('boom');
        fired.push(e.name);
      },
      () => clock.now,
    );
    w.schedule(entry('bad'), 100);
    w.schedule(entry('good'), 100);
    clock.now = 200;
    w.tick();
    assert.deepEqual(fired, ['good']);
    return new Promise<void>((resolve) =>
      setImmediate(() => {
        process.off('warning', onWarning);
        assert.deepEqual(warnings, ['boom']);
        resolve();
      }),
    );
  });

  it('clear() cancels everything', () => {
    const { clock, fired, w } = wheel();
    const a = entry('a');
    w.schedule(a, 10_100);
    w.clear();
    assert.equal(w.size, 0);
    assert.equal(a.slot, -1);
    clock.now = 20_000;
    w.tick();
    assert.deepEqual(fired, []);
  });

  it('keeps one interval while it empties and fills again, and stops it at the first tick that finds nothing', () => {
    const started = mock.method(globalThis, 'setInterval');
    const stopped = mock.method(globalThis, 'clearInterval');
    try {
      const { clock, fired, w } = wheel();
      const a = entry('a');
      // A channel's only subscriber arriving and leaving, over and over.
      for (let i = 0; i < 100; i++) {
        w.schedule(a, 10_500);
        w.cancel(a);
      }
      assert.equal(started.mock.callCount(), 1, 'one interval for the whole churn');
      assert.equal(stopped.mock.callCount(), 0);
      clock.now = 10_100;
      w.tick();
      assert.equal(stopped.mock.callCount(), 1, 'stopped once nothing is scheduled');
      w.schedule(a, 10_300);
      assert.equal(started.mock.callCount(), 2, 'started again by the next entry');
      clock.now = 10_300;
      w.tick();
      assert.deepEqual(fired, ['a']);
      assert.equal(stopped.mock.callCount(), 2);
    } finally {
      started.mock.restore();
      stopped.mock.restore();
    }
  });

  it('a clock stepped back past its creation: entries still cancel, reschedule and fire once', () => {
    const { clock, fired, w } = wheel(100_000);
    const a = entry('a');
    w.schedule(a, 100_200);
    w.cancel(a);
    clock.now = 100_100;
    w.tick(); // nothing scheduled: the interval stops
    clock.now = 40_000; // NTP steps the clock back a minute
    const b = entry('b');
    w.schedule(b, 70_000);
    assert.ok(b.slot >= 1, `slot ${b.slot}`);
    w.cancel(b);
    assert.equal(w.size, 0, 'cancelled');
    w.schedule(b, 70_000);
    w.schedule(b, 70_500);
    assert.equal(w.size, 1, 'in one bucket');
    clock.now = 200_000;
    w.tick();
    assert.deepEqual(fired, ['b']);
    w.clear();
  });

  it('counts slots from its creation, so that they stay small integers', () => {
    const { w } = wheel(Date.UTC(2026, 11, 7));
    const a = entry('a');
    w.schedule(a, Date.UTC(2026, 11, 7) + 3_600_000);
    assert.equal(a.slot, 36_000);
    w.clear();
  });
});
