/**
 * Raw stream (Nchan's http-raw-stream, served only when pinned with `mode: 'raw-stream'`): each
 * message's body followed by a newline, nothing else; meant for `curl -N` and line readers. A body
 * holding newlines reads as several lines. The end reason goes in an `X-Push-Relay-End` trailer.
 */
import type { OutgoingHttpHeaders } from 'node:http';
import { sharedFrameOf, type WireFrame } from '../http/wire-frame.js';
import type { EndReason } from '../protocol/answers.js';
import type { StoredMessage } from '../store/channel-store.js';
import { endTrailer, streamHeaders } from './chunked.js';
import { HttpStream } from './http-stream.js';

export class RawStream extends HttpStream {
  protected headers(): OutgoingHttpHeaders {
    return streamHeaders(this.res.useChunkedEncodingByDefault, this.settings.defaultContentType ?? 'text/plain; charset=utf-8');
  }

  protected override sharedFrame(message: StoredMessage): WireFrame {
    return sharedFrameOf(message, lineFrames, () => Buffer.concat([message.data, NEWLINE]));
  }

  protected frame(message: StoredMessage): Array<Buffer | string> {
    return [message.data, '\n'];
  }

  protected epilogue(reason: EndReason): string {
    endTrailer(this.res, reason);
    return '';
  }
}

const lineFrames = new WeakMap<StoredMessage, WireFrame>();
const NEWLINE = Buffer.from('\n');
