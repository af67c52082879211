/**
 * Raw stream (Nchan's http-raw-stream, served only when pinned with `mode: 'raw-stream'`): each
 * message's body followed by a newline, nothing else; meant for `curl -N` and line readers. A body
 * holding newlines reads as several lines. The end reason goes in an `X-Push-Relay-End` trailer.
 * Templates apply as on chunked streams, each message's rendering followed by a newline.
 */
import type { OutgoingHttpHeaders } from 'node:http';
import { sharedFrameOf, type WireFrame } from '../http/wire-frame.js';
import type { EndReason } from '../protocol/answers.js';
import type { StoredMessage } from '../store/channel-store.js';
import { endTrailer, streamHeaders, templatedPing } from './chunked.js';
import { HttpStream } from './http-stream.js';

export class RawStream extends HttpStream {
  protected headers(): OutgoingHttpHeaders {
    return streamHeaders(this.res.useChunkedEncodingByDefault, this.settings.defaultContentType ?? 'text/plain; charset=utf-8');
  }

  protected override sharedFrame(message: StoredMessage, _position: string | undefined, channel: string): WireFrame {
    return sharedFrameOf(message, this.frameCache('raw', lineFrames), () => Buffer.concat([this.body(message, channel), NEWLINE]));
  }

  protected frame(message: StoredMessage, _gap: unknown, _position: unknown, channel: string): Array<Buffer | string> {
    return [this.body(message, channel), '\n'];
  }

  protected override textFrame(text: Buffer, kind: 'header' | 'footer' | 'message'): Buffer {
    return kind === 'message' ? Buffer.concat([text, NEWLINE]) : text;
  }

  protected override pingFrame(): WireFrame | undefined {
    return templatedPing(this.settings.templates, 'raw', (ping) => Buffer.concat([ping, NEWLINE]));
  }

  protected epilogue(reason: EndReason): string {
    endTrailer(this.res, reason);
    return '';
  }
}

const lineFrames = new WeakMap<StoredMessage, WireFrame>();
const NEWLINE = Buffer.from('\n');
