/**
 * Streams whose clients do not read: what they leave unread is counted as it costs the heap (bytes
 * and queued writes), capped per stream and across the relay, the slowest cut first. In a child
 * process with a 96 MB heap, 50 streams that never read, 100,000 tiny messages: it survives, the heap
 * stays far under the cap, every slow stream is cut, and the stream that reads gets every message.
 * (Before, each such stream held ~67 B of heap per message, WebSocket ~221 B, and nothing capped the
 * total: the process died.)
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Backlog, type BacklogEntry } from '../../src/transports/backlog.js';

const fixture = fileURLToPath(new URL('./fixtures/slow-readers.ts', import.meta.url));

describe('slow readers cannot exhaust the heap', () => {
  for (const transport of ['eventsource', 'websocket']) {
    it(`${transport}: 50 streams that never read, 100,000 messages, a 96 MB heap`, { timeout: 120_000 }, async () => {
      const { stdout } = await promisify(execFile)(process.execPath, ['--max-old-space-size=96', '--import', 'tsx', fixture, transport, '50', '100000', '16mb'], {
        timeout: 110_000,
        maxBuffer: 1 << 20,
      });
      const result = JSON.parse(stdout.trim().split('\n').at(-1)!) as { peakMB: number; cut: number; readers: number; readerGotAll: boolean };
      assert.equal(result.readerGotAll, true, 'the stream that reads got every message');
      assert.equal(result.cut, result.readers, 'every stream that does not read was cut');
      assert.ok(result.peakMB < 64, `heap peaked at ${result.peakMB} MB`);
    });
  }
});

describe('Backlog', () => {
  const entry = (name: string, limit: number, cuts: string[]): BacklogEntry & { bytes: number } => {
    const e = {
      bytes: 0,
      cost: 0,
      queued: 0,
      limit,
      perWrite: 100,
      unwritten: () => e.bytes,
      cut: () => cuts.push(name),
    };
    return e;
  };

  it('cuts a stream past its own cap', () => {
    const cuts: string[] = [];
    const backlog = new Backlog(1_000_000);
    const a = entry('a', 1000, cuts);
    a.bytes = 500;
    a.queued = 4;
    assert.equal(backlog.wrote(a), true, '500 + 4 x 100 = 900: under');
    a.queued = 6;
    assert.equal(backlog.wrote(a), false, '1,100: over');
    assert.deepEqual(cuts, ['a']);
    assert.equal(backlog.held, 0);
  });

  it("past the relay's cap, cuts the slowest streams first, until under it", () => {
    const cuts: string[] = [];
    const backlog = new Backlog(2500);
    const [a, b, c] = [entry('a', 10_000, cuts), entry('b', 10_000, cuts), entry('c', 10_000, cuts)];
    a.bytes = 400;
    b.bytes = 1500;
    c.bytes = 900;
    assert.equal(backlog.wrote(a), true);
    assert.equal(backlog.wrote(b), true);
    assert.equal(backlog.wrote(c), true, 'c is not the slowest: it stays');
    assert.deepEqual(cuts, ['b']);
    assert.equal(backlog.held, 1300);
    // A stream that drained gives its share back.
    a.bytes = 0;
    backlog.settled(a);
    assert.equal(backlog.held, 900);
  });
});
