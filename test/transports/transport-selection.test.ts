/** The pure parts of the streaming transports: which mechanism answers, event frames, cursors, first message. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { missedBefore, readStreamCursor } from '../../src/protocol/cursor.js';
import { firstCursor } from '../../src/subscriptions/start-position.js';
import { MemoryStore, DEFAULT_BUFFER_RULES, type StoredMessage } from '../../src/index.js';
import { WHOLE_SECOND } from '../../src/protocol/message-id.js';
import { eventSourceFrame } from '../../src/transports/eventsource.js';
import { chooseTransport } from '../../src/protocol/transport-choice.js';
import { parseSse } from './stream-client.js';

const req = (headers: Record<string, string>) => headers;
const message = (data: string | Buffer, extra: Partial<StoredMessage> = {}): StoredMessage => ({
  id: { time: 1795340901, tag: 3 },
  previousId: { time: 1795340901, tag: 2 },
  data: Buffer.isBuffer(data) ? data : Buffer.from(data),
  contentType: undefined,
  ...extra,
});

describe('chooseTransport', () => {
  it('picks by headers when no mode is set', () => {
    assert.equal(chooseTransport(req({}), undefined), 'long-poll');
    assert.equal(chooseTransport(req({ accept: 'text/event-stream' }), undefined), 'eventsource');
    assert.equal(chooseTransport(req({ accept: 'text/html, Text/Event-Stream;q=0.9' }), undefined), 'eventsource');
    assert.equal(chooseTransport(req({ accept: 'multipart/mixed' }), undefined), 'multipart');
    assert.equal(chooseTransport(req({ accept: 'multipart/mixed, text/event-stream' }), undefined), 'multipart');
    assert.equal(chooseTransport(req({ te: 'trailers, chunked;q=1' }), undefined), 'chunked');
    assert.equal(chooseTransport(req({ upgrade: 'WebSocket', accept: 'text/event-stream' }), undefined), 'websocket');
  });

  it('never streams because of a wildcard or a q=0', () => {
    assert.equal(chooseTransport(req({ accept: '*/*' }), undefined), 'long-poll');
    assert.equal(chooseTransport(req({ accept: 'text/*' }), undefined), 'long-poll');
    assert.equal(chooseTransport(req({ accept: 'text/event-stream;q=0' }), undefined), 'long-poll');
    assert.equal(chooseTransport(req({ te: 'trailers' }), undefined), 'long-poll');
  });

  it('a pinned mode wins over every header; the raw stream only when pinned', () => {
    assert.equal(chooseTransport(req({ accept: 'text/event-stream' }), 'long-poll'), 'long-poll');
    assert.equal(chooseTransport(req({ accept: 'text/event-stream' }), 'interval-poll'), 'interval-poll');
    assert.equal(chooseTransport(req({}), 'raw-stream'), 'raw-stream');
    assert.equal(chooseTransport(req({ te: 'chunked' }), 'multipart'), 'multipart');
  });
});

describe('eventSourceFrame', () => {
  it('writes id, event and one data line per body line, whatever the line break', () => {
    const frame = eventSourceFrame(message('a\nb\r\nc\rd', { eventType: 'chat' }));
    assert.equal(frame, 'id: 1795340901:3\nevent: chat\ndata: a\ndata: b\ndata: c\ndata: d\n\n');
    assert.deepEqual(parseSse(frame), [{ id: '1795340901:3', event: 'chat', data: 'a\nb\nc\nd' }]);
  });

  it('keeps leading spaces, colons and a trailing line break of the body', () => {
    const body = '  indented: yes\n';
    assert.equal(parseSse(eventSourceFrame(message(body)))[0]!.data, body);
  });

  it('cannot be broken into extra fields by an event name with a line break', () => {
    const events = parseSse(eventSourceFrame(message('x', { eventType: 'a\nid: 1:1' })));
    assert.deepEqual(events, [{ id: '1795340901:3', event: 'a id: 1:1', data: 'x' }]);
  });

  it('sends non-UTF-8 bodies base64-encoded as event "binary"', () => {
    const bytes = Buffer.from([0xc3, 0x28, 0x0a]);
    const [event] = parseSse(eventSourceFrame(message(bytes)));
    assert.equal(event!.event, 'binary');
    assert.deepEqual(Buffer.from(event!.data, 'base64'), bytes);
  });
});

describe('cursors of streams and the loss test', () => {
  it('reads Last-Event-ID, then last_event_id, then If-Modified-Since/If-None-Match', () => {
    const ims = { 'if-modified-since': 'Sun, 22 Nov 2026 10:52:42 GMT', 'if-none-match': '4' };
    assert.deepEqual(readStreamCursor({ 'last-event-id': '10:2', ...ims }, '/s?id=a&last_event_id=11:0'), { time: 10, tag: 2 });
    assert.deepEqual(readStreamCursor(ims, '/s?id=a&last_event_id=11:0'), { time: 11, tag: 0 });
    assert.deepEqual(readStreamCursor(ims, '/s?id=a'), { time: Date.parse(ims['if-modified-since']) / 1000, tag: 4 });
    assert.equal(readStreamCursor({ 'last-event-id': 'garbage' }, '/s?id=a'), undefined);
  });

  it('missedBefore: only a cursor older than the previous message counts', () => {
    const m = message('x');
    assert.equal(missedBefore(undefined, m), false);
    assert.equal(missedBefore({ time: 1795340901, tag: 2 }, m), false);
    assert.equal(missedBefore({ time: 1795340901, tag: 1 }, m), true);
    assert.equal(missedBefore({ time: 1795340900, tag: WHOLE_SECOND }, m), true);
    assert.equal(missedBefore({ time: 1, tag: 0 }, message('x', { previousId: undefined })), false);
  });
});

describe('firstCursor', () => {
  it("'oldest', 'newest', -N and N", async () => {
    const store = new MemoryStore();
    const ids = [];
    for (const t of ['m1', 'm2', 'm3', 'm4']) ids.push((await store.publish('/c', { data: Buffer.from(t), contentType: undefined }, DEFAULT_BUFFER_RULES)).message.id);
    const first = async (policy: Parameters<typeof firstCursor>[2]) => (await store.next('/c', await firstCursor(store, '/c', policy))).message?.data.toString();
    assert.equal(await first('oldest'), 'm1');
    assert.equal(await first('newest'), undefined);
    assert.deepEqual(await firstCursor(store, '/c', 'newest'), ids[3]);
    assert.equal(await first(-1), 'm4');
    assert.equal(await first(-3), 'm2');
    assert.equal(await first(-10), 'm1');
    assert.equal(await first(1), 'm1');
    assert.equal(await first(3), 'm3');
    assert.equal(await first(10), undefined, 'fewer stored: wait for the next one');
    await store.close();
  });
});
