/**
 * EventSource (`Accept: text/event-stream`, the HTML Living Standard's server-sent events). Each
 * message is one event: `id:` is its id (`time:tag`, the same as Last-Modified/Etag name, so a
 * client resumes on any transport), `event:` the publisher's `X-EventSource-Event`, and the body in
 * `data:` lines. A browser reconnects by itself and sends the last id as `Last-Event-ID`.
 */
import { isUtf8 } from 'node:buffer';
import type { OutgoingHttpHeaders } from 'node:http';
import { sharedFrameOf, wireFrame, type WireFrame } from '../http/wire-frame.js';
import { formatId } from '../message-id.js';
import type { EndReason } from '../parked-subscribers.js';
import type { StoredMessage } from '../store/channel-store.js';
import { StreamSubscriber } from './stream-subscriber.js';

/** The `retry:` hint (ms): how long a browser waits before reconnecting after the stream ends. */
export const RETRY_MS = 3000;
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
 * \r\n, \r) each start a new `data:` line, which the client joins with \n.
 */
export function eventSourceFrame(message: StoredMessage): string {
  const text = isUtf8(message.data);
  const type = message.eventType ? oneLine(message.eventType) : text ? undefined : 'binary';
  let frame = `id: ${formatId(message.id)}\n`;
  if (type) frame += `event: ${type}\n`;
  const body = text ? message.data.toString('utf8') : message.data.toString('base64');
  for (const line of body.split(/\r\n|\r|\n/)) frame += `data: ${line}\n`;
  return `${frame}\n`;
}

function encodedFrame(message: StoredMessage): WireFrame {
  return sharedFrameOf(message, frames, () => eventSourceFrame(message));
}

/** An event name cannot hold a line break; anything after one would be a field of its own. */
function oneLine(name: string): string {
  return name.replace(/[\r\n]+/g, ' ');
}

export class EventSourceSubscriber extends StreamSubscriber {
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

  protected override sharedFrame(message: StoredMessage): WireFrame | undefined {
    return encodedFrame(message);
  }

  protected frame(message: StoredMessage, missed: boolean): Array<string | Buffer> {
    const event = encodedFrame(message).body;
    if (!missed) return [event];
    const gap = JSON.stringify({ after: formatId(this.cursor), next: formatId(message.id) });
    return [`event: ${MISSED_EVENT}\ndata: ${gap}\n\n`, event];
  }

  protected epilogue(reason: EndReason): string {
    return `event: ${END_EVENT}\ndata: ${reason}\n\n`;
  }

  protected override pingFrame(): WireFrame {
    return PING;
  }
}
