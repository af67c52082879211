/**
 * Reads a publisher's message body with a size limit (raw-body), or takes `req.body` when a body
 * parser such as `express.raw()` or `express.text()` already read it.
 */
import type { IncomingMessage } from 'node:http';
import getRawBody from 'raw-body';
import { bodyCutOff, bodyLengthMismatch, bodyTooLarge } from '../protocol/answers.js';

type ParsedRequest = IncomingMessage & { body?: unknown; _body?: boolean };

export async function readMessageBody(req: ParsedRequest, limit: number): Promise<Buffer> {
  const parsed = alreadyParsed(req);
  if (parsed) {
    if (parsed.length > limit) throw bodyTooLarge(limit);
    return parsed;
  }
  try {
    return await getRawBody(req, { limit, length: req.headers['content-length'] });
  } catch (err) {
    const type = (err as { type?: string }).type;
    if (type === 'entity.too.large') throw bodyTooLarge(limit);
    if (type === 'request.aborted') throw bodyCutOff();
    if (type === 'request.size.invalid') throw bodyLengthMismatch();
    throw err;
  }
}

/** The bytes a body parser left in `req.body`, or undefined if the body stream is still unread. */
function alreadyParsed(req: ParsedRequest): Buffer | undefined {
  const body = req.body;
  if (Buffer.isBuffer(body)) return body;
  if (typeof body === 'string') return Buffer.from(body, 'utf8');
  if (!req._body && !req.readableEnded) return undefined;
  if (body === undefined) return Buffer.alloc(0);
  // express.json() leaves an object: re-serialise it (same JSON, not byte-for-byte the original).
  if (/\bjson\b/i.test(req.headers['content-type'] ?? '')) return Buffer.from(JSON.stringify(body), 'utf8');
  throw new TypeError(
    'push-relay: the request body was already parsed into an object by another middleware; mount the publisher before it, or use express.raw() / express.text() on the publisher route',
  );
}
