import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cursorAhead, cursorHeaders, httpDate, readCursor, readTag } from '../../src/protocol/cursor.js';
import { WHOLE_SECOND } from '../../src/protocol/message-id.js';

const T = 1795340901;
const DATE = 'Sun, 22 Nov 2026 09:48:21 GMT';

describe('cursor codec', () => {
  it('writes Last-Modified as the IMF-fixdate of the second and Etag as the bare tag', () => {
    assert.equal(httpDate(T), DATE);
    assert.deepEqual(cursorHeaders({ time: T, tag: 7 }), { lastModified: DATE, etag: '7' });
    assert.deepEqual(cursorHeaders({ time: T + 1, tag: 0 }), { lastModified: 'Sun, 22 Nov 2026 09:48:22 GMT', etag: '0' });
  });

  it('reads back what it wrote', () => {
    for (const id of [{ time: T, tag: 0 }, { time: T, tag: 123 }, { time: 1, tag: 5 }]) {
      const h = cursorHeaders(id);
      assert.deepEqual(readCursor(h.lastModified, h.etag), id);
    }
  });

  it('no If-Modified-Since means no cursor (the oldest message), whatever If-None-Match says', () => {
    assert.equal(readCursor(undefined, undefined), undefined);
    assert.equal(readCursor(undefined, '5'), undefined);
    assert.equal(readCursor('', '5'), undefined);
  });

  it('an invalid date counts as no If-Modified-Since', () => {
    assert.equal(readCursor('yesterday', '3'), undefined);
    assert.equal(readCursor('Thu, 99 Foo 2026 99:99:99 GMT', '3'), undefined);
    assert.equal(readCursor('Wed, 31 Dec 1969 23:59:59 GMT', '3'), undefined, 'before the epoch');
  });

  it('accepts quoted and W/ tags, and keeps the first entry of a list', () => {
    assert.deepEqual(readCursor(DATE, '"4"'), { time: T, tag: 4 });
    assert.deepEqual(readCursor(DATE, 'W/"4"'), { time: T, tag: 4 });
    assert.deepEqual(readCursor(DATE, 'w/"4"'), { time: T, tag: 4 });
    assert.deepEqual(readCursor(DATE, ' 4 '), { time: T, tag: 4 });
    assert.deepEqual(readCursor(DATE, '"4", "9"'), { time: T, tag: 4 });
    assert.deepEqual(readCursor(DATE, ['6', '9']), { time: T, tag: 6 });
  });

  it('a garbage tag counts as 0', () => {
    for (const garbage of ['abc', '"x"', '*', '-3', '1.5', '', '""', 'W/', '0x10', '\u00e9']) {
      assert.deepEqual(readCursor(DATE, garbage), { time: T, tag: 0 }, JSON.stringify(garbage));
    }
    assert.equal(readTag('12abc'), 0);
  });

  it('a huge tag is clamped, never NaN or Infinity', () => {
    assert.equal(readTag('99999999999999999999'), WHOLE_SECOND);
    // More digits than any tag: garbage, so 0, and no regex blow-up on a long header.
    assert.equal(readTag('9'.repeat(100_000)), 0);
    const c = readCursor(DATE, '123456789012345678');
    assert.ok(c && Number.isSafeInteger(c.tag) && c.tag <= WHOLE_SECOND);
  });

  it('If-Modified-Since alone means every message of that second was received', () => {
    const c = readCursor(DATE, undefined);
    assert.deepEqual(c, { time: T, tag: WHOLE_SECOND });
    // The whole-second cursor sorts after every real tag of that second and before the next second.
    assert.ok(c!.tag > 1_000_000);
  });

  it('drops sub-second precision of odd dates to the whole second', () => {
    assert.deepEqual(readCursor('2026-11-22T09:48:21.900Z', '1'), { time: T, tag: 1 });
  });

  it('cursorAhead: a cursor after the newest id reads as it; with no id given, one from a later second reads as the second before the clock', () => {
    const newest = { time: T, tag: 4 };
    assert.equal(cursorAhead(undefined, newest, T), undefined);
    assert.equal(cursorAhead({ time: T, tag: 4 }, newest, T), undefined, 'the newest itself is no cursor from the future');
    assert.equal(cursorAhead({ time: T - 5, tag: 9 }, newest, T), undefined);
    assert.deepEqual(cursorAhead({ time: T, tag: 5 }, newest, T), newest);
    assert.deepEqual(cursorAhead({ time: T + 3600, tag: 0 }, newest, T - 3600), newest, 'the channel\'s ids, not the clock, decide while it has some');
    assert.equal(cursorAhead({ time: T, tag: 999 }, undefined, T), undefined, 'this second: maybe a history the store lost (the loss signal)');
    assert.deepEqual(cursorAhead({ time: T + 1, tag: 0 }, undefined, T), { time: T - 1, tag: 0 });
  });
});
