/**
 * Reads a publisher's message body with a size limit (raw-body). The relay publishes exactly the
 * bytes the publisher sent: when a body parser has read the stream already, it takes the bytes that
 * parser kept (`req.rawBody`, or a Buffer or string `req.body`), and never re-serialises an object.
 */
import type { IncomingMessage } from 'node:http';
import { parse as parseContentType } from 'content-type';
import getRawBody from 'raw-body';
import { bodyAlreadyParsed, bodyCutOff, bodyLengthMismatch, bodyTimedOut, bodyTooLarge, tooManyBodies } from '../protocol/answers.js';

type ParsedRequest = IncomingMessage & { body?: unknown; rawBody?: unknown; _body?: boolean };

/**
 * What every message body being received holds together, across the relay (maxTotalBodies): each
 * body below maxMessageSize, many slow publishers could otherwise make the process hold any amount.
 */
export class BodyBudget {
  #held = 0;

  constructor(readonly limit: number) {}

  get held(): number {
    return this.#held;
  }

  /** Takes `bytes` if they fit; false (taking nothing) if they do not. */
  take(bytes: number): boolean {
    if (this.#held + bytes > this.limit) return false;
    this.#held += bytes;
    return true;
  }

  give(bytes: number): void {
    this.#held -= bytes;
  }
}

/**
 * `timeout` (ms, 0 = none) bounds the whole read, so that a publisher that sends its body a byte at a
 * time (slowloris) holds the request for that long at most: it then gets 408 and the connection closes.
 * `budget`: the body's bytes count against it as they arrive (what is buffered, not what a header
 * announces: headers alone cost nothing); past it the request answers 503 and the connection closes.
 */
export async function readMessageBody(req: ParsedRequest, limit: number, timeout = 0, budget?: BodyBudget): Promise<Buffer> {
  const parsed = alreadyParsed(req);
  if (parsed) {
    if (parsed.length > limit) throw bodyTooLarge(limit);
    return parsed;
  }
  const reading = getRawBody(req, { limit, length: req.headers['content-length'] });
  let timer: NodeJS.Timeout | undefined;
  let onData: ((chunk: Buffer) => void) | undefined;
  let taken = 0;
  try {
    const stops: Array<Promise<never>> = [];
    if (timeout > 0) {
      stops.push(
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(bodyTimedOut(timeout)), timeout);
        }),
      );
    }
    if (budget) {
      stops.push(
        new Promise<never>((_, reject) => {
          onData = (chunk: Buffer) => {
            if (budget.take(chunk.length)) {
              taken += chunk.length;
              return;
            }
            // Read no further: the answer closes the connection.
            req.pause();
            reject(tooManyBodies(budget.limit));
          };
          req.on('data', onData);
        }),
      );
    }
    return await (stops.length === 0 ? reading : Promise.race([reading, ...stops]));
  } catch (err) {
    // The read goes on failing when the connection closes; nothing waits for it any more.
    reading.catch(() => {});
    const type = (err as { type?: string }).type;
    if (type === 'entity.too.large') throw bodyTooLarge(limit);
    if (type === 'request.aborted') throw bodyCutOff();
    if (type === 'request.size.invalid') throw bodyLengthMismatch();
    throw err;
  } finally {
    clearTimeout(timer);
    if (onData) req.off('data', onData);
    budget?.give(taken);
  }
}

/**
 * The bytes a body parser kept, or undefined when the body stream is still unread. `req.rawBody`
 * (what a `verify` hook of body-parser, or a framework, saved) wins over `req.body`, which a text
 * parser may have decoded from another charset.
 */
function alreadyParsed(req: ParsedRequest): Buffer | undefined {
  const { body, rawBody } = req;
  if (Buffer.isBuffer(body)) return body;
  if (Buffer.isBuffer(rawBody)) return rawBody;
  if (typeof rawBody === 'string') return Buffer.from(rawBody, 'utf8');
  if (typeof body === 'string') return textBytes(req, body);
  if (!req._body && !req.readableEnded) return undefined;
  // Read, and nothing of it kept: an empty body is still known; anything else is gone.
  const length = req.headers['content-length'];
  if ((body === undefined || isEmptyObject(body)) && (length === undefined || length === '0') && !req.headers['transfer-encoding']) return Buffer.alloc(0);
  throw bodyAlreadyParsed();
}

/**
 * The bytes of a body a text parser decoded (express.text()): re-encoded in the charset it was
 * decoded from, which the message's Content-Type still names. Only UTF-8 (the parsers' default)
 * and Latin-1 round-trip; any other charset is refused, the bytes being gone.
 */
function textBytes(req: ParsedRequest, body: string): Buffer {
  let charset = 'utf-8';
  try {
    charset = parseContentType(req).parameters.charset?.toLowerCase() ?? charset;
  } catch {
    // No Content-Type, or a malformed one: the parser read the body as UTF-8.
  }
  if (charset === 'utf-8' || charset === 'utf8') return Buffer.from(body, 'utf8');
  if (LATIN1.has(charset)) return Buffer.from(body, 'latin1');
  throw bodyAlreadyParsed(`decoded this request body from ${charset}`);
}

/** Charsets a text parser decodes byte for byte (US-ASCII is not: bytes above 0x7f become U+FFFD). */
const LATIN1 = new Set(['iso-8859-1', 'latin1', 'l1']);

function isEmptyObject(value: unknown): boolean {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && Object.keys(value).length === 0;
}
