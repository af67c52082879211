/**
 * Serves a streaming subscriber (EventSource, chunked, multipart/mixed, raw stream): read where it
 * resumes from, park it as a waiting subscriber (counted, concurrency and limits apply: a refusal
 * answers 403/409 before any header), then open the stream. The registry's catch-up sends every stored
 * message after the cursor, then the stream gets each new message as it is published.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { readStreamCursor } from '../cursor.js';
import { firstCursor } from '../first-message.js';
import type { ResolvedSubscriber } from '../options.js';
import type { RelayCore } from '../relay-core.js';
import { ChunkedSubscriber } from './chunked.js';
import { EventSourceSubscriber } from './eventsource.js';
import { MultipartSubscriber } from './multipart.js';
import { RawStreamSubscriber } from './raw-stream.js';
import type { StreamSubscriber } from './stream-subscriber.js';

export type StreamTransport = 'eventsource' | 'chunked' | 'multipart' | 'raw-stream';

const STREAMS = {
  eventsource: EventSourceSubscriber,
  chunked: ChunkedSubscriber,
  multipart: MultipartSubscriber,
  'raw-stream': RawStreamSubscriber,
} satisfies Record<StreamTransport, unknown>;

export async function serveStream(
  relay: RelayCore,
  options: ResolvedSubscriber,
  transport: StreamTransport,
  key: string,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const resumeFrom = readStreamCursor(req.headers, req.url);
  const cursor = resumeFrom ?? (await firstCursor(relay.store, key, options.subscriberFirstMessage));
  if (res.destroyed || req.socket.destroyed) return;
  const parked = relay.parked;
  const settings = {
    defaultContentType: options.defaultContentType,
    deletesReceived: options.deleteOldestReceivedMessage,
    pingInterval: options.pingInterval,
  };
  const stream: StreamSubscriber = new STREAMS[transport](parked.newId(), key, cursor, res, settings, resumeFrom !== undefined);
  res.on('close', () => {
    stream.gone = true;
    stream.dispose();
    parked.remove(stream);
  });
  await parked.park(
    stream,
    {
      concurrency: options.concurrency,
      maxSubscribers: options.maxChannelSubscribers,
      create: !options.authorizedChannelsOnly,
      channelTimeout: options.channelTimeout,
    },
    options.subscriberTimeout,
  );
  if (stream.parked) stream.open();
}
