/**
 * Every answer the relay gives on its own, in one place: the refusals (400, 403, 404, 405, 408, 409, 413,
 * 426, 501, 503, 507), and how a waiting subscriber ends without a message (304, 409, 410, 503).
 * The endpoints and stores throw the refusals; the transports say the endings in their own framing
 * (a long-poll status, an EventSource end event, a WebSocket close code), from the table here.
 */
import { formatSize } from './units.js';
import { isProtocolError, protocolError, type ProtocolError } from './protocol-error.js';

const RETRY = { 'Retry-After': '1' };

// ---- Requests the relay refuses ------------------------------------------------------------------

export const methodNotAllowed = (allow: string): ProtocolError =>
  protocolError(405, `push-relay: method not allowed here; allowed: ${allow}`, 'method.not.allowed', { Allow: allow });

export const noChannelId = (): ProtocolError => protocolError(400, 'push-relay: no channel id in the request', 'channel.id.missing');

export const badPathSegment = (segment: string): ProtocolError =>
  protocolError(400, `push-relay: the path segment ${JSON.stringify(segment.slice(0, 60))} is not valid percent-encoding`, 'channel.id.encoding');

export const emptyChannelList = (): ProtocolError =>
  protocolError(400, 'push-relay: the channelId resolver returned no channel id (an empty array)', 'channel.id.missing');

export const channelIdTooLong = (max: number): ProtocolError =>
  protocolError(400, `push-relay: channel id is longer than maxChannelIdLength (${max} characters)`, 'channel.id.too.long');

export const badEventId = (): ProtocolError => protocolError(400, 'push-relay: Event-Id must be given once, at most 255 characters', 'event.id.invalid');

// The name is not echoed back: the answer must not carry what an attacker put in the URL.
export const badJsonpCallback = (): ProtocolError =>
  protocolError(400, 'push-relay: the JSONP callback must be a JavaScript name (letters, digits, _ and $, dotted, at most 128 characters)', 'jsonp.callback.invalid');

export const tooManyChannels = (count: number, max: number): ProtocolError =>
  protocolError(400, `push-relay: too many channel ids (${count}); one request names at most ${max}`, 'channel.id.too.many');

export const invalidChannelInList = (index: number, count: number, id: unknown): ProtocolError =>
  protocolError(400, `push-relay: channel id #${index + 1} of ${count} is ${id === '' ? 'empty' : `not a string (${typeof id})`}`, 'channel.id.invalid');

export const repeatedChannelInList = (index: number, id: string): ProtocolError =>
  protocolError(400, `push-relay: channel id #${index + 1} repeats an earlier one (${JSON.stringify(id)})`, 'channel.id.duplicate');

export const repeatedIdArgument = (): ProtocolError =>
  protocolError(
    400,
    'push-relay: the id query argument is given more than once; name one channel (a channelId resolver that returns an array subscribes to several)',
    'channel.id.repeated',
  );

export const badIdempotencyKey = (): ProtocolError =>
  protocolError(400, 'push-relay: the Idempotency-Key header must be 1 to 255 visible ASCII characters', 'idempotency.key.invalid');

export const cursorMismatch = (named: number, count: number): ProtocolError =>
  protocolError(400, `push-relay: the cursor names ${named} channels, this subscription has ${count}`, 'cursor.mismatch');

/** `channelId` is named only when the subscription has several channels. */
export const notAuthorized = (channelId?: string): ProtocolError =>
  protocolError(403, `push-relay: not authorized for ${channelId === undefined ? 'this channel' : `channel ${JSON.stringify(channelId)}`}`, 'channel.forbidden');

/**
 * The authorize hook returned something other than true or false (a truthy object, a number, a
 * string...): refused, as any answer but `true` is, and the body says why, since it is a bug in the hook.
 */
export const authorizeNotBoolean = (verdict: unknown): ProtocolError =>
  protocolError(
    403,
    `push-relay: the authorize hook returned ${describeValue(verdict)}, not true or false; only true lets a request through`,
    'channel.forbidden',
  );

function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'string') return `a string (${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value)})`;
  if (typeof value === 'object') return Array.isArray(value) ? 'an array' : 'an object';
  return `${String(value)} (a ${typeof value})`;
}

/** authorizedChannelsOnly and no such channel. `channelId` is named only when the subscription has several channels. */
export const channelMissing = (channelId?: string): ProtocolError =>
  protocolError(
    403,
    `push-relay: channel ${channelId === undefined ? '' : `${JSON.stringify(channelId)} `}does not exist (authorizedChannelsOnly)`,
    'channel.missing',
  );

export const originNotAllowed = (origin: string): ProtocolError =>
  protocolError(403, `push-relay: origin ${JSON.stringify(origin)} is not allowed here (allowOrigin)`, 'origin.forbidden');

/** push_stream_max_number_of_channels: no new channel; the existing ones keep working. */
export const tooManyChannelsInStore = (max: number, option: 'maxChannels' | 'maxWildcardChannels' = 'maxChannels'): ProtocolError =>
  protocolError(
    403,
    `push-relay: there are ${max} ${option === 'maxChannels' ? 'channels' : 'wildcard channels'} already, the most allowed (${option}); no channel was created`,
    'channel.limit',
  );

export const subscriberLimit = (max: number): ProtocolError =>
  protocolError(403, `push-relay: this channel already has ${max} waiting subscriber${max === 1 ? '' : 's'} (maxChannelSubscribers)`, 'subscriber.limit');

export const subscriberConflict = (): ProtocolError =>
  protocolError(409, 'push-relay: another subscriber is already waiting on this channel (concurrency "first")', 'subscriber.conflict');

export const noSuchChannel = (): ProtocolError => protocolError(404, 'push-relay: no such channel', 'channel.not.found');

export const noSuchEndpoint = (): ProtocolError => protocolError(404, 'push-relay: no such endpoint', 'endpoint.not.found');

export const bodyTooLarge = (limit: number): ProtocolError =>
  protocolError(413, `push-relay: message body is larger than maxMessageSize (${formatSize(limit)}); nothing was stored`, 'entity.too.large', {
    Connection: 'close',
  });

export const tooManyBodies = (limit: number): ProtocolError =>
  protocolError(503, `push-relay: the relay is receiving maxTotalBodies (${formatSize(limit)}) of message bodies already; retry shortly; nothing was stored`, 'bodies.full', {
    ...RETRY,
    Connection: 'close',
  });

export const bodyTimedOut = (timeout: number): ProtocolError =>
  protocolError(408, `push-relay: the message body did not arrive within bodyTimeout (${timeout} ms); nothing was stored`, 'request.timeout', {
    Connection: 'close',
  });

export const bodyCutOff = (): ProtocolError => protocolError(400, 'push-relay: the request body was cut off', 'request.aborted');

export const bodyLengthMismatch = (): ProtocolError =>
  protocolError(400, 'push-relay: request body length does not match Content-Length', 'request.size.invalid');

/**
 * Another middleware read the publisher's body and kept only what it parsed (an object from
 * express.json() or express.urlencoded()): the bytes the publisher sent are gone, and re-serialising
 * the object would publish something else (numbers rounded, keys reordered, a form re-encoded).
 */
export const bodyAlreadyParsed = (what = 'read this request body and kept only the parsed object'): ProtocolError =>
  protocolError(
    500,
    `push-relay: another middleware (a body parser such as express.json(), express.urlencoded() or express.text()) ${what}, ` +
      'so the bytes the publisher sent are gone and nothing was published. Mount the publisher ' +
      'before that parser (app.use(parser) after the publisher route, or the parser only on the routes that need it), or make ' +
      'the parser keep the raw bytes: express.json({ verify: (req, res, buf) => { req.rawBody = buf; } })',
    'body.already.parsed',
  );

export const webSocketRequired = (): ProtocolError =>
  protocolError(426, 'push-relay: this endpoint serves WebSocket subscribers only', 'websocket.required', { Upgrade: 'websocket', Connection: 'Upgrade' });

export const webSocketNotEnabled = (): ProtocolError =>
  protocolError(501, 'push-relay: WebSocket upgrades need relay.handleUpgrade(server) (docs/transports.md)', 'websocket.not.enabled');

export const badHandshake = (problem: string): ProtocolError =>
  protocolError(400, `push-relay: WebSocket handshake: ${problem}`, 'websocket.handshake', { 'Sec-WebSocket-Version': '13' });

export const eventsChannelRefused = (role: 'publisher' | 'subscriber'): ProtocolError =>
  protocolError(
    403,
    role === 'subscriber'
      ? 'push-relay: the events channel takes no subscribers here (allowConnectionsToEventsChannel is off)'
      : 'push-relay: the events channel is written by the relay only; publishers may GET its info',
    'events.channel',
  );

export const statisticsUnsupported = (): ProtocolError =>
  protocolError(501, 'push-relay: this store keeps no statistics (it has no listChannels, channelStats or summary method; see docs/store.md)', 'statistics.unsupported');

export const tooManyWildcardChannelsInRequest = (max: number): ProtocolError =>
  protocolError(
    403,
    max > 0
      ? `push-relay: a subscription may name at most ${max} wildcard channels (wildcardChannelMaxQtd), and at least one channel that is not one`
      : 'push-relay: a subscription must name at least one channel that is not a wildcard channel (wildcardChannelMaxQtd)',
    'wildcard.limit',
  );

export const relayClosing = (): ProtocolError => protocolError(503, 'push-relay: the relay is shutting down', 'relay.closed', RETRY);

export const storeClosed = (what = 'store'): ProtocolError => protocolError(503, `push-relay: the ${what} is closed`, 'store.closed', RETRY);

export const storeUnavailable = (reason: string): ProtocolError =>
  protocolError(503, `push-relay: Redis is unavailable: ${reason}`, 'store.unavailable', RETRY);

export const storeFull = (sentence: string): ProtocolError => protocolError(507, `push-relay: ${sentence}; nothing was stored`, 'store.full');

// ---- How a waiting subscriber ends ---------------------------------------------------------------

/** Why a waiting subscriber is answered without a message. */
/** How a waiting subscriber ends; `revoked`: the app called relay.disconnect(). */
export type EndReason = 'deleted' | 'conflict' | 'timeout' | 'closing' | 'unavailable' | 'revoked';

export interface Ending {
  /** The status a long-poll gets (304: the cursor is echoed, no body). */
  readonly status: number;
  /** The sentence of the answer's body, or of a stream's final notice. */
  readonly sentence: string;
  readonly headers?: Readonly<Record<string, string>>;
}

export const ENDINGS: Readonly<Record<EndReason, Ending>> = {
  // A timed-out long-poll gets the old module's 304 (Nchan's 408 means the client was too slow to send its request).
  timeout: { status: 304, sentence: 'push-relay: subscriberTimeout reached; reconnect with the last id to resume' },
  deleted: { status: 410, sentence: 'push-relay: channel deleted' },
  conflict: { status: 409, sentence: 'push-relay: a newer subscriber took over this channel (concurrency "last")' },
  closing: { status: 503, sentence: 'push-relay: the relay is shutting down', headers: { ...RETRY, Connection: 'close' } },
  unavailable: { status: 503, sentence: 'push-relay: the channel store is unavailable', headers: RETRY },
  revoked: { status: 403, sentence: 'push-relay: disconnected by the application' },
};

/**
 * The sentence that ends a subscription; `channelId`: the channel that caused it, named when the
 * subscription has several (a deletion or a conflict comes from one of them).
 */
export function endSentence(reason: EndReason, channelId: string | undefined): string {
  if (channelId === undefined) return ENDINGS[reason].sentence;
  if (reason === 'deleted') return `push-relay: channel ${JSON.stringify(channelId)} deleted`;
  if (reason === 'conflict') return `${ENDINGS.conflict.sentence} on channel ${JSON.stringify(channelId)}`;
  return ENDINGS[reason].sentence;
}

/**
 * Whether a refusal is one a retry can cure: the relay closing (a restart), the store unavailable.
 * An EventSource gets those as a stream that ends with a reconnection hint rather than as an HTTP
 * error, which would stop a browser's EventSource for good. Every other refusal (400, 403, 404, 409,
 * ...) a retry cannot cure: it stays an HTTP error.
 */
export function retryableEnding(err: unknown): 'closing' | 'unavailable' | undefined {
  if (!isProtocolError(err) || err.status !== 503) return undefined;
  return err.type === 'relay.closed' ? 'closing' : 'unavailable';
}

/** The loss signal's header (long-poll answers, multipart parts, streams that open on a gap). */
export const MISSED_HEADER = 'X-Push-Relay-Missed';
/** The end-of-stream notice header (multipart part header, chunked / raw stream trailer). */
export const END_HEADER = 'X-Push-Relay-End';
