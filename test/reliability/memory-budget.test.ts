/**
 * maxReservedMemory bounds the store's real memory, not only message bodies: in a child process with
 * a 128 MB heap, three floods (new channels by PUT, 1-byte POSTs to new channels, subscribers that
 * each multiplex 255 new channels) stop with 507 once the 32 MB budget is used, and the heap grew by
 * at most 1.5 times the budget. (Before, 1,000,000 PUTs made 1.02 M channels and 386 MB of heap with
 * the store counting 0 bytes.)
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const fixture = fileURLToPath(new URL('./fixtures/floods.ts', import.meta.url));

describe('maxReservedMemory under floods', () => {
  for (const flood of ['put', 'post', 'mux']) {
    it(`${flood} flood: 507 once the budget is used, heap growth <= 1.5 x budget`, { timeout: 120_000 }, async () => {
      const { stdout } = await promisify(execFile)(process.execPath, ['--expose-gc', '--max-old-space-size=128', '--import', 'tsx', fixture, flood, '32mb'], { timeout: 110_000 });
      const result = JSON.parse(stdout.trim().split('\n').at(-1)!) as { ratio: number; refused: number; channels: number; grownMB: number };
      assert.equal(result.refused, 507, 'refused with 507 Insufficient Storage');
      assert.ok(result.channels > 1000, `${result.channels} channels before the budget was used`);
      assert.ok(result.ratio <= 1.5, `the heap grew by ${result.grownMB} MB: ${result.ratio} x the budget`);
    });
  }
});
