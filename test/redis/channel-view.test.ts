/**
 * ChannelView: what a RedisStore process may answer from the wake-ups it heard, and what it must
 * read from Redis (no Redis needed: the view is fed by hand, as the store feeds it from pub/sub).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { StoredMessage } from '../../src/store/channel-store.js';
import type { MessageId } from '../../src/protocol/message-id.js';
import { ChannelView, type Kept } from '../../src/store/redis/channel-view.js';

const T = 1_800_000_000;
const id = (tag: number): MessageId => ({ time: T, tag });
const message = (tag: number, seq = tag): StoredMessage => ({ id: id(tag), previousId: tag > 0 ? id(tag - 1) : undefined, data: Buffer.from(`m${tag}`), contentType: undefined, seq });
const STORED: Kept = { max: 10, timeout: 0, recipients: 0 };
const NOW = 1_000_000;

/** A view that knows the channel up to message `last`, having heard messages first..last (each stored before the next). */
function viewWith(first: number, last: number, kept: Kept = STORED): ChannelView {
  const view = new ChannelView('/c');
  view.live = true;
  for (let tag = first; tag <= last; tag++) assert.equal(view.published(message(tag), tag > 0 ? id(tag - 1) : undefined, kept, NOW), 'heard');
  view.learned(view.epoch, id(last));
  return view;
}

describe('ChannelView', () => {
  it('knows nothing until a read made while live taught it the newest id', () => {
    const view = new ChannelView('/c');
    view.published(message(1), id(0), STORED, NOW);
    assert.equal(view.after(id(1), NOW), undefined, 'heard wake-ups alone do not make it known');
    const stale = view.epoch;
    view.reset();
    view.learned(stale, id(1));
    assert.equal(view.known, false, 'a read sent before a reset teaches nothing');
    view.learned(view.epoch, id(1));
    assert.equal(view.known, true);
  });

  it('the newest id: nothing follows it; the message before a recent one: that one follows', () => {
    const view = viewWith(1, 3);
    assert.equal(view.after(id(3), NOW), null);
    assert.equal(view.after(id(2), NOW)?.data.toString(), 'm3');
    assert.equal(view.after(id(0), NOW)?.data.toString(), 'm1');
    assert.equal(view.after(undefined, NOW), undefined, 'no cursor (the oldest stored): Redis says');
    assert.equal(view.after({ time: T, tag: 99 }, NOW), undefined, 'an id it never heard: Redis says');
    assert.equal(view.recentMessage(id(2)), view.after(id(1), NOW), 'one object per message');
  });

  it('a message not stored, trimmed by a later publish, dropped, or counted for recipients is read from Redis', () => {
    const notStored = viewWith(1, 2, { max: 0, timeout: 0, recipients: 0 });
    assert.equal(notStored.after(id(1), NOW), undefined);

    const trimmed = viewWith(1, 3, { max: 2, timeout: 0, recipients: 0 });
    assert.equal(trimmed.after(id(0), NOW), undefined, 'm1 went when m3 was stored under maxMessages 2');
    assert.equal(trimmed.after(id(1), NOW)?.data.toString(), 'm2');

    const dropped = viewWith(1, 2);
    dropped.dropped(id(1));
    assert.equal(dropped.after(id(0), NOW), undefined);
    assert.equal(dropped.after(id(1), NOW)?.data.toString(), 'm2');

    const recipients = viewWith(1, 2, { max: 10, timeout: 0, recipients: 3 });
    assert.equal(recipients.after(id(1), NOW), undefined);
  });

  it('a message with a time-out is answered from memory only well before it expires', () => {
    const view = viewWith(1, 2, { max: 10, timeout: 10_000, recipients: 0 });
    assert.equal(view.after(id(1), NOW + 1000)?.data.toString(), 'm2', 'young: from memory');
    assert.equal(view.after(id(1), NOW + 5000), undefined, 'half its life gone: Redis says');
    const short = viewWith(1, 2, { max: 10, timeout: 1000, recipients: 0 });
    assert.equal(short.after(id(1), NOW), undefined, 'a time-out of a second or less: always Redis');
  });

  it('a recent message is answered only when every publish since it was heard', () => {
    const view = viewWith(1, 2);
    // Redis knows a newer message than any wake-up heard (its wake-up is on its way, or was missed).
    view.learned(view.epoch, id(3));
    assert.equal(view.after(id(1), NOW), undefined);
    assert.equal(view.after(id(3), NOW), null, 'the newest id still parks: its wake-up, if coming, wakes it');
  });

  it('a gap in sequence numbers says wake-ups were missed', () => {
    const view = viewWith(1, 2);
    assert.equal(view.published(message(4, 4), id(3), STORED, NOW), 'missed', 'seq 2 then 4');
    view.reset();
    assert.equal(view.known, false);
    assert.equal(view.published(message(5, 5), id(4), STORED, NOW), 'heard', 'after a reset, the next one starts a new run');
    assert.equal(view.published(message(6, 1), id(5), STORED, NOW), 'missed', 'a recreated channel starts again from 1');
  });

  it("a recreated channel's first message is not taken for a repeat, though its number was heard and a read taught the view its id", () => {
    const NOT_KEPT: Kept = { max: 0, timeout: 0, recipients: 0 };
    const view = new ChannelView('/c');
    view.live = true;
    // Not kept: the channel is removed after it, and made again; its next message is number 1 again.
    assert.equal(view.published(message(1, 1), undefined, NOT_KEPT, NOW), 'heard');
    // A read (a subscriber catching up) found the next message's id first.
    view.learned(view.epoch, id(2));
    assert.notEqual(view.published(message(2, 1), undefined, NOT_KEPT, NOW), 'again', 'its only wake-up is handed on');
    assert.equal(view.published(message(2, 1), undefined, NOT_KEPT, NOW), 'again', 'a repeat of it is not');
  });

  it('a message heard at once is not heard again from its wake-up; only the next one follows', () => {
    const view = viewWith(1, 2);
    view.live = true;
    assert.equal(view.follows(3), true, 'seq 3 follows 2');
    assert.equal(view.follows(4), false, 'a wake-up of seq 3 may still be on its way');
    assert.equal(view.published(message(3, 3), id(2), STORED, NOW), 'heard');
    assert.equal(view.published(message(3, 3), id(2), STORED, NOW), 'again', 'its wake-up');
    assert.equal(view.published(message(4, 4), id(3), STORED, NOW), 'heard');
    assert.deepEqual(view.after(id(3), NOW)?.id, id(4));
    view.live = false;
    assert.equal(view.follows(5), false, 'nothing is heard at once while the watch is down');
    view.live = true;
    view.reset();
    assert.equal(view.follows(5), false, 'nor after a reset');
  });

  it('a wake-up from an older version (nothing said of what was kept) empties the window', () => {
    const view = viewWith(1, 2);
    view.published(message(3), id(2), undefined, NOW);
    assert.equal(view.after(id(2), NOW), undefined);
    assert.equal(view.after(id(3), NOW), null);
  });
});
