import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compareIds, formatId, nextId, parseId } from '../../src/protocol/message-id.js';

describe('message ids', () => {
  it('count tags within a second from 0 and restart at 0 in a new second', () => {
    const a = nextId(undefined, 100);
    assert.deepEqual(a, { time: 100, tag: 0 });
    const b = nextId(a, 100);
    assert.deepEqual(b, { time: 100, tag: 1 });
    assert.deepEqual(nextId(b, 101), { time: 101, tag: 0 });
  });

  it('never go back when the clock does', () => {
    const a = { time: 200, tag: 3 };
    assert.deepEqual(nextId(a, 150), { time: 200, tag: 4 });
    assert.ok(compareIds(nextId(a, 150), a) > 0);
  });

  it('compare by time, then tag', () => {
    assert.ok(compareIds({ time: 1, tag: 9 }, { time: 2, tag: 0 }) < 0);
    assert.ok(compareIds({ time: 2, tag: 1 }, { time: 2, tag: 0 }) > 0);
    assert.equal(compareIds({ time: 2, tag: 1 }, { time: 2, tag: 1 }), 0);
  });

  it('are written time:tag, 0:0 for none, and parsed back', () => {
    assert.equal(formatId({ time: 1795340901, tag: 0 }), '1795340901:0');
    assert.equal(formatId(undefined), '0:0');
    assert.deepEqual(parseId('1795340901:12'), { time: 1795340901, tag: 12 });
    for (const bad of ['', '1:', ':1', '1:2:3', 'a:b', '-1:0', '1:2 ']) assert.equal(parseId(bad), undefined, bad);
  });
});
