/**
 * WebSocket upgrades through the app's own routes.
 *
 * Node never gives an upgrade request to the server's request handler (so Express, Connect or a
 * plain handler never see it): it emits the server's `upgrade` event with the raw socket. Like
 * express-ws, `handleUpgrade` dispatches that request through the app as an ordinary request, with a
 * `ServerResponse` that writes to the upgrade socket, so the same route, resolver, authorize hook and
 * options apply. The request is marked; the subscriber middleware on the matching route claims it and
 * completes the handshake (transports/websocket.ts). Whatever else answers it (the router's 404, a
 * 400/403/409 refusal, an app's own middleware) goes out as a plain HTTP answer on the socket, which
 * is then closed.
 *
 * `ws` is an optional peer dependency, loaded on the first `handleUpgrade` call only.
 */
import { ServerResponse, type IncomingMessage, type Server } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { WebSocket, WebSocketServer } from 'ws';
import { log } from '../log.js';

const debug = log('subscriber');

/** The metadata subprotocol: every frame starts with the message id and content type (docs/transports.md). */
export const WEBSOCKET_META_PROTOCOL = 'ws+meta.push-relay';
/** Nchan's metadata subprotocol, which its client (NchanSubscriber) asks for. Nchan matches it as a prefix. */
export const NCHAN_META_PROTOCOL = 'ws+meta.nchan';

/** The subprotocol to answer: ours first, else Nchan's (echoed as the client spelled it), else none. */
export function chooseSubprotocol(protocols: Set<string>): string | false {
  if (protocols.has(WEBSOCKET_META_PROTOCOL)) return WEBSOCKET_META_PROTOCOL;
  for (const p of protocols) if (p.startsWith(NCHAN_META_PROTOCOL)) return p;
  return false;
}

/** A request handler: an Express or Connect app, or a plain `node:http` request listener. */
export type UpgradeApp = (req: IncomingMessage, res: ServerResponse) => void;

/** A WebSocket upgrade request on its way through the app, waiting for a subscriber to claim it. */
export interface PendingUpgrade {
  readonly socket: Duplex;
  readonly head: Buffer;
  /** The `ws` server that completes handshakes (noServer mode, shared by every upgrade). */
  readonly wss: WebSocketServer;
  /** The response written to the socket if nobody claims the upgrade. */
  readonly res: ServerResponse;
  /** Stops reading the socket before the handshake; returns what the client sent meanwhile. */
  readonly stopReading: () => Buffer[];
}

/**
 * What a client may send before the handshake is answered and still be served: it should send
 * nothing (RFC 6455 §4.1), but what it sends is kept for `ws` rather than lost.
 */
const MAX_EARLY_BYTES = 64 * 1024;

// Symbol.for: the ESM and CJS builds of this package, both loaded in one app, must agree on it.
const PENDING = Symbol.for('push-relay.upgrade');
const HANDLED = Symbol.for('push-relay.upgrade-listener');

type Marked = IncomingMessage & { [PENDING]?: PendingUpgrade };
type MarkedServer = (Server | HttpsServer) & { [HANDLED]?: Promise<void> };

/**
 * Whether the server `req` came in on serves upgrades through handleUpgrade(): a WebSocket request
 * that reaches a route unclaimed there had its `Connection: Upgrade` dropped on the way (Node gives
 * such a request to the request handler, not to the `upgrade` event).
 */
export function upgradesHandled(req: IncomingMessage): boolean {
  const server = (req.socket as Socket & { server?: MarkedServer } | undefined)?.server;
  return server?.[HANDLED] !== undefined;
}

/** The WebSocket upgrade `req` carries, if any; at most one caller gets it (the first subscriber on the route). */
export function claimUpgrade(req: IncomingMessage): PendingUpgrade | undefined {
  const marked = req as Marked;
  const pending = marked[PENDING];
  if (pending) delete marked[PENDING];
  return pending;
}

const KEY = /^[+/0-9A-Za-z]{22}==$/;

/**
 * The handshake checks of RFC 6455 §4.2.1 that `ws` would make, made before the subscriber is counted
 * in: a malformed upgrade must not join (and, under concurrency "last", evict the subscriber there).
 */
export function handshakeProblem(req: IncomingMessage): string | undefined {
  const key = req.headers['sec-websocket-key'];
  if (typeof key !== 'string' || !KEY.test(key)) return 'missing or invalid Sec-WebSocket-Key header';
  const version = req.headers['sec-websocket-version'];
  if (version !== '13' && version !== '8') return 'missing or unsupported Sec-WebSocket-Version header (13 expected)';
  return undefined;
}

let wsServer: Promise<WebSocketServer> | undefined;

/** The one `ws` server in noServer mode; rejects with an actionable message when `ws` is not installed. */
function loadWebSocketServer(): Promise<WebSocketServer> {
  wsServer ??= import('ws').then(
    ({ WebSocketServer: WSS }) =>
      new WSS({
        noServer: true,
        // Subscribers track their own sockets (the parked-subscriber registry).
        clientTracking: false,
        // Clients do not publish here: anything they send is dropped, so keep it small.
        maxPayload: 64 * 1024,
        // Our metadata subprotocol and Nchan's are spoken; a client asking only for others gets none (and fails, RFC 6455 §4.1).
        handleProtocols: chooseSubprotocol,
      }),
    (err: unknown) => {
      wsServer = undefined;
      throw new Error('push-relay: WebSocket subscribers need the optional peer dependency "ws" (npm install ws)', { cause: err });
    },
  );
  return wsServer;
}

/**
 * Serves WebSocket upgrades of `server` through `app` (default: the server's own `request`
 * listeners). Resolves once `ws` is loaded; rejects when it is not installed. Once per server: later
 * calls return the first call's promise.
 */
export function handleUpgrade(server: Server | HttpsServer, app?: UpgradeApp): Promise<void> {
  if (!server || typeof server.on !== 'function' || typeof server.listeners !== 'function') {
    throw new TypeError('push-relay: handleUpgrade() takes the node:http (or https) server the app listens on');
  }
  if (app !== undefined && typeof app !== 'function') {
    throw new TypeError('push-relay: handleUpgrade() app must be a request handler (an Express or Connect app, or (req, res) => void)');
  }
  const marked = server as MarkedServer;
  if (marked[HANDLED]) return marked[HANDLED];
  const dispatch: UpgradeApp = app ?? ((req, res) => server.emit('request', req, res));
  const loading = loadWebSocketServer();
  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    // Without an error listener, a reset connection would throw in the host app.
    socket.on('error', destroySocket);
    loading.then(
      (wss) => serveThroughApp(dispatch, wss, req, socket, head),
      () => socket.destroy(),
    );
  };
  // Listen now, so that no upgrade arriving while `ws` loads falls through to Node's default.
  server.on('upgrade', onUpgrade);
  marked[HANDLED] = loading.then(
    () => undefined,
    (err: unknown) => {
      server.off('upgrade', onUpgrade);
      delete marked[HANDLED];
      throw err;
    },
  );
  return marked[HANDLED];
}

function destroySocket(this: Duplex): void {
  this.destroy();
}

function serveThroughApp(app: UpgradeApp, wss: WebSocketServer, req: IncomingMessage, socket: Duplex, head: Buffer): void {
  if (socket.destroyed) return;
  const res = new ServerResponse(req);
  // One answer on this socket, then it closes: an upgrade socket is never reused for HTTP.
  res.shouldKeepAlive = false;
  res.assignSocket(socket as Socket);
  res.once('finish', () => {
    if (!socket.destroyed) socket.end(() => socket.destroy());
  });
  if (String(req.headers.upgrade).toLowerCase() === 'websocket') {
    (req as Marked)[PENDING] = { socket, head, wss, res, stopReading: readUntilHandshake(socket) };
  }
  // Any other protocol (h2c, ...): the app answers it as a plain request (RFC 9110 §7.8 lets a server ignore Upgrade).
  try {
    app(req, res);
  } catch (err) {
    debug('upgrade %s: the app threw: %s', req.url, err);
    if (!res.headersSent) {
      res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end('Internal Server Error\n');
    } else socket.destroy();
  }
}

/**
 * Reads an upgrade socket until its handshake. Node stops reading it when it emits `upgrade`, so a
 * client that leaves while the app decides (an authorize hook, a store read) would go unnoticed, and
 * be counted in as a subscriber (under concurrency `last`, evicting the one there). Its end closes
 * the socket now; bytes it sends meanwhile are kept (up to MAX_EARLY_BYTES) and handed to `ws`.
 */
function readUntilHandshake(socket: Duplex): () => Buffer[] {
  const early: Buffer[] = [];
  let size = 0;
  const onData = (chunk: Buffer) => {
    size += chunk.length;
    if (size > MAX_EARLY_BYTES) socket.destroy();
    else early.push(chunk);
  };
  const onEnd = () => socket.destroy();
  socket.on('data', onData);
  socket.on('end', onEnd);
  return () => {
    socket.pause();
    socket.off('data', onData);
    socket.off('end', onEnd);
    return early;
  };
}

/** Hands the socket from the HTTP response over to `ws`; calls `onOpen` with the socket, or nothing if the handshake failed. */
export function completeUpgrade(req: IncomingMessage, pending: PendingUpgrade, onOpen: (ws: WebSocket) => void): boolean {
  const { socket, head, wss, res } = pending;
  res.detachSocket(socket as Socket);
  socket.off('error', destroySocket);
  const early = pending.stopReading();
  // ws puts `head` back in front of these.
  if (early.length > 0) socket.unshift(Buffer.concat(early));
  let opened = false;
  // Synchronous when no verifyClient is set (ws 8); an invalid handshake is answered 400 by ws itself.
  wss.handleUpgrade(req, socket, head, (ws) => {
    opened = true;
    onOpen(ws);
  });
  // Paused by stopReading(): ws reads from here on.
  socket.resume();
  return opened;
}
