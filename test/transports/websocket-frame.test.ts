/** The WebSocket frame of a message, as plain values: text or binary, and the metadata header. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { StoredMessage } from '../../src/index.js';
import { messageFrame, wireOf } from '../../src/transports/websocket.js';

const message = (data: string | Buffer, contentType?: string, eventType?: string): StoredMessage => ({
  id: { time: 1795340901, tag: 2 },
  previousId: { time: 1795340901, tag: 1 },
  data: Buffer.isBuffer(data) ? data : Buffer.from(data, 'utf8'),
  contentType,
  eventType,
});

test('text frames for textual types and untyped UTF-8; binary for everything else', () => {
  const kinds: Array<[StoredMessage, boolean]> = [
    [message('plain'), false],
    [message('plain', 'text/plain; charset=utf-8'), false],
    [message('{"a":1}', 'application/json'), false],
    [message('{"a":1}', 'application/ld+json'), false],
    [message('<a/>', 'image/svg+xml'), false],
    [message('a=1', 'application/x-www-form-urlencoded'), false],
    [message('bytes', 'application/octet-stream'), true],
    [message('bytes', 'image/png'), true],
    [message(Buffer.from([0xff, 0xfe])), true],
    [message(Buffer.from([0xc3, 0x28]), 'text/plain'), true],
  ];
  for (const [m, binary] of kinds) assert.equal(messageFrame(m, undefined, false).binary, binary, `${m.contentType} ${m.data.toString('hex')}`);
});

test('the default content type applies to untyped messages only', () => {
  assert.equal(messageFrame(message('x'), 'application/octet-stream', false).binary, true);
  assert.equal(messageFrame(message('x', 'text/plain'), 'application/octet-stream', false).binary, false);
  const meta = messageFrame(message('x'), 'text/csv', 'push-relay').data.toString();
  assert.equal(meta, 'id: 1795340901:2\ncontent-type: text/csv\n\nx');
});

test('metadata frame: id, content type, event, loss signal, blank line, body byte for byte', () => {
  const body = Buffer.from([0, 1, 2, 0xff]);
  const frame = messageFrame(message(body, 'application/octet-stream', 'blob'), undefined, 'push-relay', true);
  assert.equal(frame.binary, true);
  const head = 'id: 1795340901:2\ncontent-type: application/octet-stream\nevent: blob\nmissed: 1\n\n';
  assert.deepEqual(frame.data, Buffer.concat([Buffer.from(head), body]));
});

test('a line break in an event name cannot forge a metadata line', () => {
  const frame = messageFrame(message('x', 'text/plain', 'evil\nid: 1:0'), undefined, 'push-relay').data.toString();
  assert.equal(frame, 'id: 1795340901:2\ncontent-type: text/plain\nevent: evil id: 1:0\n\nx');
});

test('a frame is built once per message and variant, then shared', () => {
  const m = message('shared');
  assert.equal(messageFrame(m, undefined, 'push-relay'), messageFrame(m, undefined, 'push-relay'));
  assert.notEqual(messageFrame(m, undefined, 'push-relay'), messageFrame(m, undefined, 'push-relay', true));
  assert.notEqual(messageFrame(m, undefined, 'push-relay'), messageFrame(m, undefined, false));
});

test("ws+meta.nchan frame: exactly Nchan's id and content-type lines, blank line, body (no event or missed lines)", () => {
  const typed = messageFrame(message('x', 'text/plain', 'chat'), undefined, 'nchan', true);
  assert.equal(typed.data.toString(), 'id: 1795340901:2\ncontent-type: text/plain\n\nx');
  assert.equal(messageFrame(message('y'), undefined, 'nchan').data.toString(), 'id: 1795340901:2\n\ny');
  // What NchanSubscriber.js matches every frame against.
  assert.match(typed.data.toString(), /^id: (.*)\n(content-type: (.*)\n)?\n/);
  assert.equal(messageFrame(message('bytes', 'application/octet-stream'), undefined, 'nchan').binary, true);
});

test('the frame written to every socket is one ws itself reads back: text and binary, each length form', async () => {
  // ws's own frame parser (not in its type definitions), as a client reads what a server sends.
  type Receiver = { on(event: string, listener: (...args: never[]) => void): void; write(chunk: Buffer): void };
  const { Receiver } = (await import('ws')) as unknown as { Receiver: new (options: { isServer: boolean }) => Receiver };
  for (const [size, contentType] of [[5, 'text/plain'], [125, undefined], [126, 'text/plain'], [65_535, undefined], [65_536, 'application/octet-stream'], [70_000, 'text/plain']] as const) {
    const body = contentType === 'application/octet-stream' ? Buffer.alloc(size, 0xff) : Buffer.alloc(size, 'a');
    const frame = messageFrame(message(body, contentType), undefined, false);
    const wire = wireOf(frame);
    assert.equal(wireOf(frame), wire, 'built once');
    const receiver = new Receiver({ isServer: false });
    const got = await new Promise<{ data: Buffer; binary: boolean }>((resolve, reject) => {
      receiver.on('message', (data: Buffer, binary: boolean) => resolve({ data, binary }));
      receiver.on('error', reject);
      receiver.write(wire);
    });
    assert.equal(got.binary, frame.binary, `${size} bytes`);
    assert.ok(got.data.equals(body), `${size} bytes byte for byte`);
  }
});
