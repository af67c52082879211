/**
 * The push module's example config, as an Express app:
 *
 *   location /publish  { push_publisher; push_message_timeout 2h; push_max_message_buffer_length 10; }
 *   location /activity { push_subscriber; push_subscriber_concurrency broadcast; default_type text/plain; }
 *   set $push_channel_id $arg_id;
 *
 * Run: npm start (PORT, default 8080). Then, in one terminal:  curl -v 'localhost:8080/activity?id=a'
 * and in another:                                             curl -v -d hello 'localhost:8080/publish?id=a'
 * The first request waits until the POST, which answers 201 (a waiting subscriber got it; 202 when none
 * waits). Messages keep the publisher's Content-Type (curl -d sends application/x-www-form-urlencoded);
 * defaultContentType only applies to messages published without one. README.md walks through the rest.
 * Keep /publish private in a real deployment (see examples/auth.ts).
 */
import express from 'express';
import { createPushRelay } from '../src/index.js';

const app = express();
const relay = createPushRelay({ maxReservedMemory: '32mb' });

app.all('/publish', relay.publisher({ messageTimeout: '2h', maxMessageBufferLength: 10 }));
app.get('/activity', relay.subscriber({ concurrency: 'broadcast', defaultContentType: 'text/plain' }));

const port = Number(process.env.PORT ?? 8080);
const server = app.listen(port, () => {
  console.log(`push-relay example: publish at http://localhost:${port}/publish?id=<channel>, subscribe at http://localhost:${port}/activity?id=<channel>`);
});

const shutdown = () => {
  void relay.close().then(() => server.close(() => process.exit(0)));
};
process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);
