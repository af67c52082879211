/**
 * Access control with the `authorize` hook: it runs once the channel id is known and answers 403 by
 * returning false (throwing instead goes to the app's error handler as a 500).
 *
 * - Publishers need `Authorization: Bearer <PUBLISH_TOKEN>` (default token: "publisher-secret").
 * - Subscribers send `Authorization: Bearer <user token>` and may only read the rooms that user may.
 * - `authorizedChannelsOnly`: subscribers cannot create channels; a room exists once a publisher has
 *   POSTed or PUT it, before that its subscribers get 403.
 *
 * Run: PORT=8080 npx tsx examples/auth.ts
 *   curl -i -X PUT -H 'Authorization: Bearer publisher-secret' 'localhost:8080/publish?id=staff'
 *   curl -i -H 'Authorization: Bearer alice-token' 'localhost:8080/activity?id=staff'   (waits)
 *   curl -i -H 'Authorization: Bearer bob-token' 'localhost:8080/activity?id=staff'     (403)
 *   curl -i -d hi 'localhost:8080/publish?id=staff'                                     (403, no token)
 *   curl -i -H 'Authorization: Bearer publisher-secret' -d hi 'localhost:8080/publish?id=staff'
 */
import express from 'express';
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { createPushRelay, type AuthorizeHook } from '../src/index.js';

const PUBLISH_TOKEN = process.env.PUBLISH_TOKEN ?? 'publisher-secret';

/** Stand-in for a session store or a JWT check: which rooms each user token may read. */
const readableRooms = new Map<string, ReadonlySet<string>>([
  ['alice-token', new Set(['lobby', 'staff'])],
  ['bob-token', new Set(['lobby'])],
]);

function bearerToken(req: IncomingMessage): string | undefined {
  const match = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
  return match?.[1];
}

/** Constant-time comparison (hashing first makes the lengths equal). */
function sameSecret(a: string, b: string): boolean {
  const digest = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(a), digest(b));
}

const authorize: AuthorizeHook = (req, { channelId, role }) => {
  const token = bearerToken(req);
  if (token === undefined) return false;
  if (role === 'publisher') return sameSecret(token, PUBLISH_TOKEN);
  return readableRooms.get(token)?.has(channelId) ?? false;
};

const relay = createPushRelay({ authorize });

const app = express();
app.all('/publish', relay.publisher());
app.get('/activity', relay.subscriber({ authorizedChannelsOnly: true, subscriberTimeout: '55s' }));

const port = Number(process.env.PORT ?? 8080);
const server = app.listen(port, () => {
  console.log(`auth example on http://localhost:${port}: /publish?id=<room> (bearer ${PUBLISH_TOKEN}), /activity?id=<room>`);
});

const shutdown = () => void relay.close().then(() => server.close(() => process.exit(0)));
process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);
