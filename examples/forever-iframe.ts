/**
 * A forever-iframe stream with the Nginx Push Stream Module's documented templates
 * (docs/examples/forever_iframe): the stream is an HTML page that never ends, the header's script
 * registers the frame with its parent page, and each message is a `<script>` calling `p()`. It works
 * where nothing else does (no EventSource, no WebSocket, no CORS), and in every browser today.
 *
 *   location ~ /sub/(.*) {
 *     push_stream_subscriber;  push_stream_channels_path $1;  default_type text/html;
 *     push_stream_header_template "<html><head>...<script>parent.PushStream.register(this);</script></head><body>";
 *     push_stream_message_template "<script>p(~id~,'~channel~','~text~');</script>";
 *     push_stream_footer_template "</body></html>";
 *     push_stream_ping_message_interval 10s;
 *   }
 *
 * Run: npx tsx examples/forever-iframe.ts (PORT, default 8080), open http://localhost:8080/, and
 * publish with curl -d hello 'localhost:8080/pub?id=news'. Text goes into a JavaScript string in the
 * page: publish it URL-encoded (the page decodes it), as pushstream.js does, and with `'` as `%27`
 * (`encodeURIComponent(text).replace(/'/g, '%27')`), so that no quote or `</script>` in a message can
 * end the string or the script.
 */
import express from 'express';
import { fileURLToPath } from 'node:url';
import { channelsFromPath, createPushRelay, type ChannelStore } from '../src/index.js';

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>forever iframe</title></head>
<body>
<h1>news</h1>
<ul id="messages"></ul>
<script>
  // The stream's header template calls parent.PushStream.register(frame window); each message calls p().
  window.PushStream = {
    register(frame) {
      frame.p = (id, channel, text) => {
        if (id < 0) return; // -1 ping, -2 channel deleted
        const li = document.createElement('li');
        li.textContent = channel + ' #' + id + ': ' + decodeURIComponent(text);
        document.getElementById('messages').append(li);
      };
      document.body.dataset.registered = 'yes';
    },
  };
</script>
<iframe src="/sub/news" style="display:none"></iframe>
</body></html>`;

export function foreverIframeApp(options: { store?: ChannelStore } = {}) {
  const relay = createPushRelay({ store: options.store, subscriberFirstMessage: 'newest' });
  const app = express();
  app.get('/', (_req, res) => res.type('html').send(PAGE));
  app.all('/pub', relay.publisher());
  app.use(
    '/sub',
    relay.subscriber({
      channelId: channelsFromPath(),
      mode: 'chunked',
      defaultContentType: 'text/html; charset=utf-8',
      headerTemplate: '<html><head><meta charset="utf-8"><script>parent.PushStream.register(this);</script></head><body>',
      messageTemplate: "<script>p(~id~,'~channel~','~text~');</script>",
      footerTemplate: '</body></html>',
      // A ping the page ignores (p(-1, ...)), under what proxies and pushstream.js allow idle.
      pingInterval: '10s',
    }),
  );
  return { app, relay };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { app, relay } = foreverIframeApp();
  const port = Number(process.env.PORT ?? 8080);
  const server = app.listen(port, () => console.log(`forever iframe: open http://localhost:${port}/ and publish to http://localhost:${port}/pub?id=news`));
  const shutdown = () => {
    void relay.close().then(() => server.close(() => process.exit(0)));
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
}
