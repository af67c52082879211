/**
 * HTTP chunked (`TE: chunked`, Nchan's http-chunked): each message's body is one chunk of the
 * response, nothing around it. An empty message cannot be sent (a zero-length chunk ends the
 * response) and is skipped. When the relay ends the stream, the last chunk carries an
 * `X-Push-Relay-End` trailer with the reason. With templates: the header template first, each
 * message's rendering, the template applied to the ping text as keep-alive, the footer at the end.
 */
import type { OutgoingHttpHeaders } from 'node:http';
import { sharedFrameOf, wireFrame, type WireFrame } from '../http/wire-frame.js';
import type { Templates } from '../protocol/templates.js';
import { END_HEADER, type EndReason } from '../protocol/answers.js';
import type { StoredMessage } from '../store/channel-store.js';
import { HttpStream } from './http-stream.js';

export class ChunkedStream extends HttpStream {
  protected headers(): OutgoingHttpHeaders {
    return streamHeaders(this.res.useChunkedEncodingByDefault, this.settings.defaultContentType ?? 'application/octet-stream');
  }

  protected override sharedFrame(message: StoredMessage, _position: string | undefined, channel: string): WireFrame {
    return sharedFrameOf(message, this.frameCache('chunked', chunkFrames), () => this.body(message, channel));
  }

  protected frame(message: StoredMessage, _gap: unknown, _position: unknown, channel: string): Buffer[] {
    return [this.body(message, channel)];
  }

  protected override textFrame(text: Buffer): Buffer {
    return text;
  }

  protected override pingFrame(): WireFrame | undefined {
    return templatedPing(this.settings.templates, 'chunked', (ping) => ping);
  }

  protected epilogue(reason: EndReason): string {
    endTrailer(this.res, reason);
    return '';
  }
}

/** Headers of the byte streams (chunked, raw): the trailer only where chunked encoding is used (HTTP/1.1). */
export function streamHeaders(chunked: boolean, contentType: string): OutgoingHttpHeaders {
  const headers: OutgoingHttpHeaders = {
    'Content-Type': contentType,
    'Cache-Control': 'no-cache, no-transform',
    'X-Accel-Buffering': 'no',
  };
  if (chunked) headers['Trailer'] = END_HEADER;
  return headers;
}

export function endTrailer(res: { useChunkedEncodingByDefault: boolean; addTrailers(headers: Record<string, string>): void }, reason: EndReason): void {
  if (res.useChunkedEncodingByDefault) res.addTrailers({ [END_HEADER]: reason });
}

const chunkFrames = new WeakMap<StoredMessage, WireFrame>();

/**
 * The keep-alive of a byte stream with a message template (push_stream_ping_message_text): the
 * template applied to the ping text, id -1; byte streams without one have none. Built once per endpoint.
 */
export function templatedPing(templates: Templates | undefined, kind: string, frame: (ping: Buffer) => Buffer): WireFrame | undefined {
  if (!templates?.message) return undefined;
  const key = `ping:${kind}`;
  let ping = templates.frames.get(key) as WireFrame | undefined;
  if (!ping) templates.frames.set(key, (ping = wireFrame(frame(templates.synthetic('ping', '')!))) as never);
  return ping;
}
