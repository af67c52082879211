/**
 * The transports of a multiplexed subscriber (multiplex.ts): the single-channel transports, except
 * that a message is named by the subscriber's composite cursor instead of its own id (long-poll and
 * multipart `Etag`, EventSource `id:`, WebSocket metadata `id:`), and that an end caused by one
 * channel (deleted, conflict) names that channel. Chunked and raw streams carry no ids: unchanged.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ResolvedChannel } from '../channel-id.js';
import { httpDate, missedBefore } from '../cursor.js';
import { messageHeaders, MISSED_HEADER } from '../http/message-response.js';
import { sendText } from '../http/respond.js';
import type { MessageId } from '../message-id.js';
import { formatComposite, type Cursors } from '../multiplex-cursor.js';
import type { EndReason } from '../parked-subscribers.js';
import type { StoredMessage } from '../store/channel-store.js';
import type { PendingUpgrade } from '../upgrade.js';
import { ChunkedSubscriber } from './chunked.js';
import { END_EVENT, EventSourceSubscriber } from './eventsource.js';
import { MultipartSubscriber } from './multipart.js';
import { RawStreamSubscriber } from './raw-stream.js';
import type { StreamTransport } from './serve-stream.js';
import { END_SENTENCES, type StreamSettings, type StreamSubscriber } from './stream-subscriber.js';
import { WebSocketSubscriber, type Frame, type SubscriberSettings } from './websocket.js';

export interface MultiplexSink {
  /**
   * Writes `message`, named by `composite` (every channel's cursor, this message's included);
   * `before`: its channel's cursor before it (the loss signal). True when that answered the request.
   */
  send(message: StoredMessage, before: MessageId | undefined, composite: string): boolean;
  /** Ends the subscription; `channel` is the one that caused it. */
  end(reason: EndReason, channel: ResolvedChannel, cursors: Cursors): void;
}

/** The end sentence, naming the channel when one channel caused the end. */
export function endSentence(reason: EndReason, channel: ResolvedChannel): string {
  const name = JSON.stringify(channel.id);
  if (reason === 'deleted') return `push-relay: channel ${name} deleted`;
  if (reason === 'conflict') return `${END_SENTENCES.conflict} on channel ${name}`;
  return END_SENTENCES[reason];
}

function oneLine(value: string): string {
  return value.replace(/[\r\n]+/g, ' ');
}

export function multiplexedLongPoll(res: ServerResponse, defaultContentType: string | undefined, signalsLoss: boolean): MultiplexSink {
  return {
    send(message, before, composite) {
      if (res.headersSent || res.destroyed) return true;
      // A copy of the shared header block, its Etag replaced by the composite cursor.
      const headers = [...messageHeaders(message, defaultContentType)];
      headers[headers.indexOf('Etag') + 1] = composite;
      if (signalsLoss && missedBefore(before, message)) headers.push(MISSED_HEADER, '1');
      res.writeHead(200, headers);
      res.end(message.data);
      return true;
    },
    end(reason, channel, cursors) {
      switch (reason) {
        case 'timeout': {
          if (res.headersSent) return;
          let latest = -1;
          for (const c of cursors) if (c && c.time > latest) latest = c.time;
          const headers: Record<string, string> = { 'Cache-Control': 'no-cache, no-transform', Vary: 'If-None-Match, If-Modified-Since' };
          if (latest >= 0) headers['Last-Modified'] = httpDate(latest);
          headers['Etag'] = formatComposite(cursors);
          res.writeHead(304, headers);
          res.end();
          return;
        }
        case 'deleted':
          sendText(res, 410, endSentence(reason, channel));
          return;
        case 'conflict':
          sendText(res, 409, endSentence(reason, channel));
          return;
        case 'closing':
          sendText(res, 503, END_SENTENCES.closing, { 'Retry-After': '1', Connection: 'close' });
          return;
        case 'unavailable':
          sendText(res, 503, END_SENTENCES.unavailable, { 'Retry-After': '1' });
          return;
      }
    },
  };
}

/** What the multiplexed streams add to a stream: the composite id of the message being written, the channel that ended it. */
interface Naming {
  composite: string;
  endedBy: ResolvedChannel | undefined;
}

class MultiplexedEventSource extends EventSourceSubscriber implements Naming {
  composite = '';
  endedBy: ResolvedChannel | undefined;

  /** Never shared: each stream names the message by its own composite cursor. */
  protected override sharedFrame(): undefined {
    return undefined;
  }

  protected override frame(message: StoredMessage, missed: boolean): Array<string | Buffer> {
    const frames = super.frame(message, missed);
    // The shared event starts with the message's own `id:` line; this stream names its composite cursor.
    const event = frames[frames.length - 1] as Buffer;
    frames[frames.length - 1] = Buffer.concat([Buffer.from(`id: ${this.composite}\n`, 'utf8'), event.subarray(event.indexOf(10) + 1)]);
    return frames;
  }

  protected override epilogue(reason: EndReason): string {
    // First data line: the reason, as on a single channel; second: the channel that caused it.
    if (!this.endedBy || (reason !== 'deleted' && reason !== 'conflict')) return super.epilogue(reason);
    return `event: ${END_EVENT}\ndata: ${reason}\ndata: ${oneLine(this.endedBy.id)}\n\n`;
  }
}

class MultiplexedMultipart extends MultipartSubscriber implements Naming {
  composite = '';
  endedBy: ResolvedChannel | undefined;

  protected override frame(message: StoredMessage, missed: boolean): Array<string | Buffer> {
    const frames = super.frame(message, missed);
    frames[0] = (frames[0] as string).replace(`\r\nEtag: ${message.id.tag}`, () => `\r\nEtag: ${this.composite}`);
    return frames;
  }

  protected override epilogue(reason: EndReason): string {
    const notice = super.epilogue(reason);
    if (!this.endedBy || (reason !== 'deleted' && reason !== 'conflict')) return notice;
    return notice.replace(END_SENTENCES[reason], () => oneLine(endSentence(reason, this.endedBy!)));
  }
}

class MultiplexedChunked extends ChunkedSubscriber implements Naming {
  composite = '';
  endedBy: ResolvedChannel | undefined;
}

class MultiplexedRawStream extends RawStreamSubscriber implements Naming {
  composite = '';
  endedBy: ResolvedChannel | undefined;
}

const STREAMS = {
  eventsource: MultiplexedEventSource,
  multipart: MultiplexedMultipart,
  chunked: MultiplexedChunked,
  'raw-stream': MultiplexedRawStream,
} satisfies Record<StreamTransport, unknown>;

export interface MultiplexedStream extends MultiplexSink {
  open(): void;
  dispose(): void;
}

export function multiplexedStream(
  transport: StreamTransport,
  id: string,
  channel: string,
  res: ServerResponse,
  settings: StreamSettings,
  resumed: boolean,
): MultiplexedStream {
  const stream: StreamSubscriber & Naming = new STREAMS[transport](id, channel, undefined, res, settings, resumed);
  return {
    send(message, before, composite) {
      stream.cursor = before;
      stream.composite = composite;
      return stream.deliver(message);
    },
    end(reason, endedBy) {
      stream.endedBy = endedBy;
      stream.end(reason);
    },
    open: () => stream.open(),
    dispose: () => stream.dispose(),
  };
}

class MultiplexedWebSocket extends WebSocketSubscriber implements Naming {
  composite = '';
  endedBy: ResolvedChannel | undefined;

  protected override frameFor(message: StoredMessage, meta: boolean, missed: boolean): Frame {
    const frame = super.frameFor(message, meta, missed);
    if (!meta) return frame;
    // The shared frame starts with the message's own `id:` line; this socket names its composite cursor.
    return { binary: frame.binary, data: Buffer.concat([Buffer.from(`id: ${this.composite}\n`, 'utf8'), frame.data.subarray(frame.data.indexOf(10) + 1)]) };
  }

  protected override closeReason(reason: EndReason): string {
    if (!this.endedBy) return super.closeReason(reason);
    return truncateUtf8(oneLine(endSentence(reason, this.endedBy)), 123);
  }
}

/** At most `max` bytes of `text`, cut at a character boundary. */
function truncateUtf8(text: string, max: number): string {
  if (Buffer.byteLength(text) <= max) return text;
  let out = '';
  for (const ch of text) {
    if (Buffer.byteLength(out + ch) > max - 3) return `${out}...`;
    out += ch;
  }
  return out;
}

export interface MultiplexedSocket extends MultiplexSink {
  open(): boolean;
  readonly onResponseClose: () => void;
}

export function multiplexedWebSocket(id: string, channel: string, req: IncomingMessage, pending: PendingUpgrade, settings: SubscriberSettings): MultiplexedSocket {
  const socket = new MultiplexedWebSocket(id, channel, undefined, req, pending, settings);
  return {
    send(message, before, composite) {
      socket.cursor = before;
      socket.composite = composite;
      return socket.deliver(message);
    },
    end(reason, endedBy) {
      socket.endedBy = endedBy;
      socket.end(reason);
    },
    open: () => socket.open(),
    onResponseClose: socket.onResponseClose,
  };
}

