/**
 * WebSocket publishing (`websocketPublish`, push_stream_websocket_allow_publish): a text message from
 * a WebSocket subscriber is published to every channel of its connection, stored per the relay's
 * publisher settings, and delivered like any other message (the sender gets it back too). The
 * transport (transports/websocket.ts) owns the frames, the rate limit and the close codes; this owns
 * what a publish is: the authorize hook (role 'publisher', once per connection and channel), the
 * size limit, the store.
 */
import type { IncomingMessage } from 'node:http';
import type { ResolvedPublisher, ResolvedSubscriber } from '../options.js';
import type { ResolvedChannel } from '../protocol/channel-id.js';
import type { ChannelStore } from '../store/channel-store.js';
import { PublishRefused, type WebSocketPublishing } from '../transports/websocket.js';
import type { RelayContext } from './context.js';

interface Endpoint {
  readonly context: RelayContext;
  readonly options: ResolvedSubscriber;
  readonly publishing: ResolvedPublisher;
}

export function webSocketPublisher({ context, options, publishing }: Endpoint, req: IncomingMessage, channels: readonly ResolvedChannel[]): WebSocketPublishing {
  // The events channel is the relay's own: clients never publish into it.
  const targets = channels.filter((c) => c.key !== context.eventsChannel?.key);
  let authorized: Promise<void> | undefined;
  const authorize = async (): Promise<void> => {
    const hook = options.authorize;
    if (!hook) return;
    const verdicts = await Promise.all(targets.map((c) => hook(req, { channelId: c.id, role: 'publisher' })));
    const refused = verdicts.findIndex((v) => v !== true);
    if (refused >= 0) throw new PublishRefused(4403, `not authorized to publish to ${JSON.stringify(targets[refused]!.id)}`.slice(0, 120));
  };
  const store: ChannelStore = context.store;
  return {
    rate: options.websocketPublishRate,
    async publish(data) {
      if (data.length > publishing.maxMessageSize) throw new PublishRefused(1009, `message larger than ${publishing.maxMessageSize} bytes`);
      // Asked once per connection; a refusal closes it, so it is never asked again.
      await (authorized ??= authorize());
      context.assertOpen();
      await Promise.all(
        targets.map(async (c) => {
          const { message, duplicate } = await store.publish(c.key, { data, contentType: undefined }, publishing.rules);
          if (!duplicate) context.published(c.id, message);
        }),
      );
    },
  };
}
