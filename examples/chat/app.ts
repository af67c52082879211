/**
 * The chat's server: an Express 5 app with the relay mounted on the app's own routes, one channel per
 * room. Kept apart from server.ts so that the end-to-end test starts it on a free port.
 *
 *   GET  /                        the page (public/)
 *   GET  /push-relay-client.js    push-relay/client, bundled for the page
 *   GET  /session                 { nick } of the signed-in user, or 401
 *   POST /session                 { nick } -> sets the session cookie
 *   POST /rooms/:room/messages    publisher: the body is the text; the server stamps the sender
 *   GET  /rooms/:room/events      subscriber: long-poll, EventSource or WebSocket, per request
 *
 * Access: the authorize hook lets a request through when it carries a valid session cookie and names
 * a room of the allow-list. The cookie is an HMAC-signed nickname: it proves the server issued it,
 * not who the user is (there are no passwords here; a real app would plug in its own login).
 */
import express from 'express';
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { fileURLToPath } from 'node:url';
import { createPushRelay, type AuthorizeHook, type ChannelStore, type PushRelay } from '../../src/index.js';

export const ROOMS: readonly string[] = ['lobby', 'random', 'dev'];
const COOKIE = 'chat_session';
const NICK = /^[\p{L}\p{N}_-]{1,24}$/u;
const MAX_TEXT = 500;

export interface ChatOptions {
  /** Where rooms live; default: the relay's MemoryStore. */
  store?: ChannelStore;
  /** Signs session cookies; default: random per process (sessions end with the process). */
  secret?: string;
}

export interface Chat {
  relay: PushRelay;
  server: http.Server;
}

export async function createChat(options: ChatOptions = {}): Promise<Chat> {
  const secret = options.secret ?? randomBytes(32).toString('base64url');
  const sign = (nick: string) => createHmac('sha256', secret).update(nick).digest('base64url');

  /** The nickname of a valid session cookie, or undefined. */
  function sessionNick(req: IncomingMessage): string | undefined {
    const value = readCookie(req, COOKIE);
    const dot = value?.lastIndexOf('.') ?? -1;
    if (!value || dot < 1) return undefined;
    const nick = decodeURIComponent(value.slice(0, dot));
    const given = Buffer.from(value.slice(dot + 1));
    const expected = Buffer.from(sign(nick));
    return given.length === expected.length && timingSafeEqual(given, expected) ? nick : undefined;
  }

  const authorize: AuthorizeHook = (req, { channelId }) => sessionNick(req) !== undefined && ROOMS.includes(channelId);
  const room = (req: IncomingMessage) => (req as express.Request<{ room: string }>).params.room;

  const relay = createPushRelay({
    ...(options.store ? { store: options.store } : {}),
    channelId: room,
    authorize,
    // Room history: the newest 100 lines of the last hour; a page that was away longer gets the loss signal.
    maxMessageBufferLength: 100,
    messageTimeout: '1h',
    // A waiting long-poll is answered 304 after this, and streams end: clients reconnect with their last id.
    subscriberTimeout: '55s',
    pingInterval: '20s',
  });

  const app = express();
  app.disable('x-powered-by');
  app.use(express.static(fileURLToPath(new URL('./public/', import.meta.url))));
  // The page's client: push-relay/client bundled for the browser once, at start.
  const client = await clientScript();
  app.get('/push-relay-client.js', (_req, res) => void res.type('application/javascript').send(client));

  app.get('/session', (req, res) => {
    const nick = sessionNick(req);
    if (nick) res.json({ nick, rooms: ROOMS });
    else res.status(401).json({ error: 'no session' });
  });
  app.post('/session', express.json({ limit: '1kb' }), (req, res) => {
    const nick = typeof req.body?.nick === 'string' ? req.body.nick.trim() : '';
    if (!NICK.test(nick)) {
      res.status(400).json({ error: 'a nickname is 1 to 24 letters, digits, "_" or "-"' });
      return;
    }
    res.cookie(COOKIE, `${encodeURIComponent(nick)}.${sign(nick)}`, { httpOnly: true, sameSite: 'strict', path: '/' });
    res.json({ nick, rooms: ROOMS });
  });

  app.post(
    '/rooms/:room/messages',
    express.text({ type: () => true, limit: '4kb' }),
    // The sender comes from the session, never from the body: nobody can post as someone else.
    (req: express.Request, res: express.Response, next: express.NextFunction) => {
      const text = typeof req.body === 'string' ? req.body.trim() : '';
      if (text === '' || text.length > MAX_TEXT) {
        res.status(400).type('text/plain').send(`a message is 1 to ${MAX_TEXT} characters\n`);
        return;
      }
      req.body = JSON.stringify({ from: sessionNick(req) ?? '', text });
      req.headers['content-type'] = 'application/json';
      next();
    },
    relay.publisher(),
  );
  app.get('/rooms/:room/events', relay.subscriber());

  const server = http.createServer(app as (req: IncomingMessage, res: ServerResponse) => void);
  // WebSocket upgrades go through the same app, so /rooms/:room/events, the hook and the options apply.
  await relay.handleUpgrade(server);
  return { relay, server };
}

/** push-relay/client as one browser module (a bundler does this in an app of your own). */
async function clientScript(): Promise<string> {
  const { build } = await import('esbuild');
  const entry = fileURLToPath(new URL('../../src/client/index.ts', import.meta.url));
  const result = await build({ entryPoints: [entry], bundle: true, format: 'esm', target: 'es2020', minify: true, write: false });
  return result.outputFiles[0]!.text;
}

function readCookie(req: IncomingMessage, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}
