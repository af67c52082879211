/**
 * A streaming response's body written straight to its socket. A stream's frame for a message is the
 * same bytes on every stream it goes to, so it is laid out once, HTTP/1.1 chunk framing included,
 * and each stream then costs one `socket.write` of that shared Buffer: no per-stream chunk-size line,
 * no three-part `writev`, none of ServerResponse's per-write bookkeeping. Anything that sits between
 * the response and its socket (compression, HTTP/2) makes the stream fall back to `res.write`.
 */
import { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { StoredMessage } from '../store/channel-store.js';

/** A frame laid out as one HTTP/1.1 chunk; `body` is the frame itself, a view into `chunk`. */
export interface WireFrame {
  readonly chunk: Buffer;
  readonly body: Buffer;
}

const CRLF_LENGTH = 2;

export function wireFrame(body: Buffer | string): WireFrame {
  const length = typeof body === 'string' ? Buffer.byteLength(body, 'utf8') : body.length;
  const head = `${length.toString(16)}\r\n`;
  const chunk = Buffer.allocUnsafe(head.length + length + CRLF_LENGTH);
  chunk.write(head, 0, 'latin1');
  if (typeof body === 'string') chunk.write(body, head.length, 'utf8');
  else body.copy(chunk, head.length);
  chunk.write('\r\n', head.length + length, 'latin1');
  return { chunk, body: chunk.subarray(head.length, head.length + length) };
}

/** The frame `bytes()` makes of `message`, built once per message in `cache`. */
export function sharedFrameOf(message: StoredMessage, cache: WeakMap<StoredMessage, WireFrame>, bytes: () => Buffer | string): WireFrame {
  let frame = cache.get(message);
  if (!frame) cache.set(message, (frame = wireFrame(bytes())));
  return frame;
}

const plainWrite = ServerResponse.prototype.write;

/**
 * The socket `res`'s body bytes may go to directly: only once its headers are out, and only when
 * nothing wraps `res.write` (a compression middleware would be skipped) and the response owns a
 * writable socket (a pipelined response still queued behind another has none yet).
 */
export function bodySocket(res: ServerResponse): Socket | undefined {
  if (res.write !== plainWrite || !res.headersSent) return undefined;
  const socket = res.socket;
  return socket && socket.writable ? socket : undefined;
}
