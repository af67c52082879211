import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_BUFFER_RULES, expiryOf, isExpired, overflow } from '../../src/protocol/buffer-rules.js';

const rules = (over: Partial<typeof DEFAULT_BUFFER_RULES>) => ({ ...DEFAULT_BUFFER_RULES, ...over });

describe('buffer rules', () => {
  it('overflow drops the oldest beyond maxMessages', () => {
    assert.equal(overflow(10, rules({ maxMessages: 10 })), 0);
    assert.equal(overflow(11, rules({ maxMessages: 10 })), 1);
    assert.equal(overflow(3, rules({ maxMessages: 0 })), 3);
  });

  it('a message expires at its time unless it is one of the newest minMessages', () => {
    // Queue of 3, min 1: indexes 0 and 1 may expire, 2 (the newest) is kept.
    assert.equal(isExpired(100, 0, 3, 1, 100), true);
    assert.equal(isExpired(100, 1, 3, 1, 100), true);
    assert.equal(isExpired(100, 2, 3, 1, 100), false);
    assert.equal(isExpired(100, 0, 3, 0, 99), false, 'not before its time');
    assert.equal(isExpired(100, 2, 3, 0, 100), true, 'min 0 keeps nothing');
  });

  it('expiry is publish time + messageTimeout, never for 0', () => {
    assert.equal(expiryOf(1000, rules({ messageTimeout: 500 })), 1500);
    assert.equal(expiryOf(1000, rules({ messageTimeout: 0 })), Infinity);
  });
});
