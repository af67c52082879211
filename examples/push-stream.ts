/**
 * A drop-in for the Nginx Push Stream Module's README configuration, so that a front-end written for
 * its browser client (pushstream.js) works unchanged:
 *
 *   location /channels-stats { push_stream_channels_statistics; push_stream_channels_path $arg_id; }
 *   location /pub            { push_stream_publisher admin; push_stream_channels_path $arg_id; }
 *   location ~ /sub/(.*)     { push_stream_subscriber;             push_stream_channels_path $1; }
 *   location ~ /ev/(.*)      { push_stream_subscriber eventsource; push_stream_channels_path $1; }
 *   location ~ /lp/(.*)      { push_stream_subscriber long-polling; push_stream_channels_path $1; }
 *   location ~ /ws/(.*)      { push_stream_subscriber websocket;   push_stream_channels_path $1;
 *                              push_stream_websocket_allow_publish on; }
 *   push_stream_message_template '{"id":~id~,"channel":"~channel~","text":"~text~","tag":"~tag~","time":"~time~","eventid":"~event-id~"}';
 *
 * `/sub` is the forever-iframe stream (pushstream.js's "stream" mode) with the module's documented
 * HTML templates; the others carry the JSON template pushstream.js parses. Channels come from the
 * path (`/ev/ch1.b5/ch2`: ch1 with its 5 newest messages, and ch2), as the module reads them.
 *
 * Run: npx tsx examples/push-stream.ts (PORT, default 8080), then in a page:
 *   const ps = new PushStream({ host: location.hostname, port: location.port, modes: 'eventsource|websocket|stream|longpolling' });
 *   ps.onmessage = (text, id, channel) => console.log(channel, id, text);
 *   ps.addChannel('ch1', { backtrack: 5 }); ps.connect();
 * and publish with curl -d hello 'localhost:8080/pub?id=ch1'. Keep /pub private in a real deployment
 * (see examples/auth.ts).
 */
import express from 'express';
import type { Server } from 'node:http';
import { fileURLToPath } from 'node:url';
import { channelsFromPath, createPushRelay, type ChannelStore, type PushRelay } from '../src/index.js';

/** The template pushstream.js parses (its documentation's). */
export const JSON_TEMPLATE = '{"id":~id~,"channel":"~channel~","text":"~text~","tag":"~tag~","time":"~time~","eventid":"~event-id~"}';

/** The module's forever-iframe templates (docs/examples/forever_iframe), with the arguments resume needs. */
export const IFRAME_TEMPLATES = {
  headerTemplate:
    '<html><head><meta http-equiv="Content-Type" content="text/html; charset=utf-8"><meta http-equiv="Cache-Control" content="no-store"><meta http-equiv="Cache-Control" content="no-cache"><meta http-equiv="Pragma" content="no-cache"><meta http-equiv="Expires" content="Thu, 1 Jan 1970 00:00:00 GMT">' +
    '<script type="text/javascript">window.onError = null; try { document.domain = (window.location.hostname.match(/^(\\d{1,3}\\.){3}\\d{1,3}$/)) ? window.location.hostname : window.location.hostname.split(\'.\').slice(-1 * Math.max(window.location.hostname.split(\'.\').length - 1, (window.location.hostname.match(/(\\w{4,}\\.\\w{2}|\\.\\w{3,})$/) ? 2 : 3))).join(\'.\');}catch(e){}parent.PushStream.register(this);</script></head><body>',
  messageTemplate: "<script>p(~id~,'~channel~','~text~','~event-id~','~time~','~tag~');</script>",
  footerTemplate: '</body></html>',
  defaultContentType: 'text/html; charset=utf-8',
} as const;

export interface PushStreamAppOptions {
  store?: ChannelStore | undefined;
}

/** The Express app and its relay; call `relay.handleUpgrade(server)` once it listens (WebSocket). */
export function pushStreamApp(options: PushStreamAppOptions = {}): { app: express.Express; relay: PushRelay } {
  const relay = createPushRelay({
    store: options.store,
    // push_stream_message_ttl and max_messages_stored_per_channel of the README's configuration.
    messageTimeout: '30m',
    maxMessageBufferLength: 20,
    minMessageBufferLength: 0,
    // The module sends nothing old to a subscriber without a cursor or a backtrack.
    subscriberFirstMessage: 'newest',
    // pushstream.js's control arguments (messagesControlByArgument, and always under JSONP).
    cursorArguments: { time: 'time', tag: 'tag', eventId: 'eventid' },
  });
  const app = express();
  const subscriber = (prefix: string, mode: 'chunked' | 'eventsource' | 'long-poll' | 'websocket', extra: Parameters<PushRelay['subscriber']>[0] = {}) =>
    relay.subscriber({ channelId: channelsFromPath({ prefix }), mode, messageTemplate: JSON_TEMPLATE, ...extra });

  app.get('/channels-stats', relay.statistics({ splitChannelIds: '/' }));
  // pushstream.js publishes to `/pub?id=/ch1` (form-encoded, URL-encoded text): the leading slash is skipped.
  app.all(
    '/pub',
    relay.publisher({
      channelId: (req) => {
        const ids = String(new URL(req.url ?? '/', 'http://x').searchParams.get('id') ?? '')
          .split('/')
          .filter(Boolean);
        return ids.length > 0 ? ids : undefined;
      },
    }),
  );
  // The stream (iframe) pings under pushstream.js's 30 s pingtimeout.
  app.use('/sub', subscriber('/sub', 'chunked', { ...IFRAME_TEMPLATES, pingInterval: '10s' }));
  app.use('/ev', subscriber('/ev', 'eventsource', { pingInterval: '10s' }));
  // Long-polls end under pushstream.js's 30 s timeout; a cross-origin page gets JSONP.
  app.use('/lp', subscriber('/lp', 'long-poll', { subscriberTimeout: '25s' }));
  app.use('/ws', subscriber('/ws', 'websocket', { websocketPublish: true }));
  return { app, relay };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { app, relay } = pushStreamApp();
  const port = Number(process.env.PORT ?? 8080);
  const server: Server = app.listen(port, () => {
    console.log(`push-relay as the Push Stream Module: http://localhost:${port}/pub?id=<channel>, /sub, /ev, /lp, /ws/<channels>, /channels-stats`);
  });
  void relay.handleUpgrade(server);
  const shutdown = () => {
    void relay.close().then(() => server.close(() => process.exit(0)));
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
}
