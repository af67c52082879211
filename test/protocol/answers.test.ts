import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { subscriberLimit } from '../../src/protocol/answers.js';

describe('protocol answers', () => {
  it('names the subscriber limit in words that agree with its number', () => {
    assert.equal(subscriberLimit(1).message, 'push-relay: this channel already has 1 waiting subscriber (maxChannelSubscribers)');
    assert.equal(subscriberLimit(2).message, 'push-relay: this channel already has 2 waiting subscribers (maxChannelSubscribers)');
    assert.equal(subscriberLimit(1).status, 403);
  });
});
