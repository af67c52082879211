/**
 * Writing answers. Everything goes through `writeHead`/`end` (never Express's `res.send`, whose ETag
 * handling would turn our per-second tags into spurious 304s; docs/protocol.md).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isProtocolError } from '../protocol/protocol-error.js';

export type Next = (err?: unknown) => void;

/** A `node:http` request handler that Express and Connect also take as middleware. */
export type Middleware<Req extends IncomingMessage = IncomingMessage> = (req: Req, res: ServerResponse, next?: Next) => void;

/** A short text/plain answer (errors and protocol refusals). */
export function sendText(res: ServerResponse, status: number, text: string, headers?: Record<string, string>): void {
  if (res.headersSent) return;
  const body = Buffer.from(text.endsWith('\n') ? text : `${text}\n`, 'utf8');
  res.writeHead(status, {
    ...headers,
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': String(body.length),
    'Cache-Control': 'no-cache, no-transform',
  });
  res.end(body);
}

/**
 * Ends a request that failed: protocol answers are written here; anything else goes to `next(err)`
 * (or a plain 500 without a framework). Once the answer has started, the connection is cut instead.
 */
export function answerError(err: unknown, req: IncomingMessage, res: ServerResponse, next: Next | undefined): void {
  if (res.headersSent || res.destroyed) {
    if (!res.writableEnded) res.destroy(err instanceof Error ? err : undefined);
    return;
  }
  if (isProtocolError(err)) {
    sendText(res, err.status, err.message, err.headers);
    return;
  }
  if (next) {
    next(err);
    return;
  }
  const status = typeof (err as { status?: unknown })?.status === 'number' ? (err as { status: number }).status : 500;
  const expose = (err as { expose?: unknown })?.expose === true;
  sendText(res, status >= 400 && status < 600 ? status : 500, expose ? String((err as Error).message) : 'Internal Server Error');
  void req;
}
