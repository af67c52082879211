/**
 * EventSource (`Accept: text/event-stream`, the HTML Living Standard's server-sent events). Each
 * message is one event: `id:` is its id (`time:tag`, the same as Last-Modified/Etag name, so a
 * client resumes on any transport; a subscription of several channels names its composite cursor),
 * `event:` the publisher's `X-EventSource-Event`, and the body in `data:` lines. A browser
 * reconnects by itself and sends the last id as `Last-Event-ID`. Templates: the header and footer
 * templates go as `:` comment lines, the message template is applied to each `data:` line.
 */
import { isUtf8 } from 'node:buffer';
import type { OutgoingHttpHeaders } from 'node:http';
import { sharedFrameOf, wireFrame, type WireFrame } from '../http/wire-frame.js';
import type { EndReason } from '../protocol/answers.js';
import { formatId, type MessageId } from '../protocol/message-id.js';
import type { StoredMessage } from '../store/channel-store.js';
import { paddingText, type Templates } from '../protocol/templates.js';
import { HttpStream } from './http-stream.js';
import { oneLine } from './transport.js';

/** The `retry:` hint (ms): how long a browser waits before reconnecting after the stream ends. */
export const RETRY_MS = 3000;

/**
 * The reconnection hint an end sends when a retry will find the relay back (closing: a restart, or
 * another process behind the same address; unavailable: the store coming back), spread at random so
 * that the browsers of a restarted relay do not all come back in the same millisecond. A stream that
 * reached its subscriberTimeout comes back at once, as a long-poll asks again.
 */
export function retryAfterEnd(reason: EndReason, random = Math.random): number | undefined {
  if (reason === 'timeout') return Math.floor(random() * 250);
  if (reason === 'closing') return 1000 + Math.floor(random() * 2000);
  if (reason === 'unavailable') return 3000 + Math.floor(random() * 3000);
  return undefined;
}
/** Sent before the first message after a gap (docs/transports.md, "Loss signal"). */
export const MISSED_EVENT = 'push-relay-missed';
/** The last event of a stream the relay ends; its data is the reason. */
export const END_EVENT = 'push-relay-end';

/** Encoded once per message, written to every stream it goes to. */
const frames = new WeakMap<StoredMessage, WireFrame>();
const PING = wireFrame(': ping\n\n');

/**
 * The event for `message`. The stream is UTF-8 text: a body that is not valid UTF-8 goes base64
 * encoded, under `event: binary` unless the publisher named the event. A body's line breaks (\n,
 * \r\n, \r) each start a new `data:` line, which the client joins with \n. With a message template,
 * the template is applied to each line.
 */
export function eventSourceFrame(message: StoredMessage, templates?: Templates, channel = ''): string {
  const text = isUtf8(message.data);
  const type = message.eventType ? oneLine(message.eventType) : text ? undefined : 'binary';
  let frame = `id: ${formatId(message.id)}\n`;
  if (type) frame += `event: ${type}\n`;
  const body = text ? message.data.toString('utf8') : message.data.toString('base64');
  for (const line of body.split(/\r\n|\r|\n/)) {
    const data = templates?.message ? templates.renderLine(message, channel, Buffer.from(line, 'utf8')).toString('utf8') : line;
    // A template's own line breaks start data lines of their own too.
    for (const part of data.split(/\r\n|\r|\n/)) frame += `data: ${part}\n`;
  }
  return `${frame}\n`;
}

function encodedFrame(message: StoredMessage): WireFrame {
  return sharedFrameOf(message, frames, () => eventSourceFrame(message));
}

/** Template text as comment lines (`: line`), which EventSource clients skip. */
function commentLines(text: Buffer): string {
  return `${text
    .toString('utf8')
    .split(/\r\n|\r|\n/)
    .map((line) => `: ${line}\n`)
    .join('')}\n`;
}

export class EventSourceStream extends HttpStream {
  protected headers(): OutgoingHttpHeaders {
    // No Connection header: forbidden under HTTP/2, and HTTP/1.1 keeps the connection anyway.
    return {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache, no-transform',
      'X-Accel-Buffering': 'no',
    };
  }

  protected override preamble(): string {
    // A first frame at once, so that proxies pass the headers on and the client fires `open`.
    return `: push-relay\nretry: ${RETRY_MS}\n\n`;
  }

  protected override sharedFrame(message: StoredMessage, position: string | undefined, channel: string): WireFrame | undefined {
    // A composite cursor is this stream's own: the shared frame names the message's id.
    return position === undefined ? this.#encoded(message, channel) : undefined;
  }

  #encoded(message: StoredMessage, channel: string): WireFrame {
    const templates = this.settings.templates;
    if (!templates?.message) return encodedFrame(message);
    return sharedFrameOf(message, this.frameCache('eventsource', frames), () => eventSourceFrame(message, templates, channel));
  }

  protected override textFrame(text: Buffer, kind: 'header' | 'footer' | 'message'): string {
    if (kind !== 'message') return commentLines(text);
    // A synthetic message (channel deleted): data lines, no id (it names no position).
    return `${text
      .toString('utf8')
      .split(/\r\n|\r|\n/)
      .map((line) => `data: ${line}\n`)
      .join('')}\n`;
  }

  protected override paddingFrame(n: number): string {
    return paddingText(n, true);
  }

  protected frame(message: StoredMessage, gapAfter: MessageId | undefined, position: string | undefined, channel: string): Array<string | Buffer> {
    let event = this.#encoded(message, channel).body;
    if (position !== undefined) {
      // The shared event starts with the message's own `id:` line.
      event = Buffer.concat([Buffer.from(`id: ${position}\n`, 'utf8'), event.subarray(event.indexOf(10) + 1)]);
    }
    if (!gapAfter) return [event];
    const gap = JSON.stringify({ after: formatId(gapAfter), next: formatId(message.id) });
    return [`event: ${MISSED_EVENT}\ndata: ${gap}\n\n`, event];
  }

  protected epilogue(reason: EndReason, endedBy: string | undefined): string {
    // First data line: the reason; second, with several channels: the channel that caused it.
    const cause = endedBy !== undefined && (reason === 'deleted' || reason === 'conflict') ? `data: ${oneLine(endedBy)}\n` : '';
    const retry = retryAfterEnd(reason);
    return `${retry === undefined ? '' : `retry: ${retry}\n`}event: ${END_EVENT}\ndata: ${reason}\n${cause}\n`;
  }

  protected override pingFrame(): WireFrame {
    return PING;
  }
}
