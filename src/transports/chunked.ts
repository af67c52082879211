/**
 * HTTP chunked (`TE: chunked`, Nchan's http-chunked): each message's body is one chunk of the
 * response, nothing around it. An empty message cannot be sent (a zero-length chunk ends the
 * response) and is skipped. When the relay ends the stream, the last chunk carries an
 * `X-Push-Relay-End` trailer with the reason.
 */
import type { OutgoingHttpHeaders } from 'node:http';
import { sharedFrameOf, type WireFrame } from '../http/wire-frame.js';
import { END_HEADER, type EndReason } from '../protocol/answers.js';
import type { StoredMessage } from '../store/channel-store.js';
import { HttpStream } from './http-stream.js';

export class ChunkedStream extends HttpStream {
  protected headers(): OutgoingHttpHeaders {
    return streamHeaders(this.res.useChunkedEncodingByDefault, this.settings.defaultContentType ?? 'application/octet-stream');
  }

  protected override sharedFrame(message: StoredMessage): WireFrame {
    return sharedFrameOf(message, chunkFrames, () => message.data);
  }

  protected frame(message: StoredMessage): Buffer[] {
    return [message.data];
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
