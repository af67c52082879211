/**
 * CORS for browsers on another origin (`allowOrigin`). The allowed origin is fixed per endpoint
 * (`'*'` or one origin), so the headers never depend on the request and need no `Vary: Origin`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

/** What each endpoint lets a page read and send. */
export interface CorsRules {
  /** Methods the endpoint answers (the `Allow` header). */
  readonly methods: string;
  /** Response headers a page may read: the cursor, and the loss signal. */
  readonly exposed: string;
}

export const SUBSCRIBER_CORS: CorsRules = { methods: 'GET', exposed: 'Last-Modified, Etag, X-Push-Relay-Missed, Retry-After' };
export const STATISTICS_CORS: CorsRules = { methods: 'GET', exposed: 'Content-Type' };
export const PUBLISHER_CORS: CorsRules = { methods: 'GET, POST, PUT, DELETE', exposed: 'Etag' };

/** Adds the CORS headers to whatever `res` answers; call before anything is written. */
export function allowCrossOrigin(res: ServerResponse, origin: string, rules: CorsRules): void {
  res.setHeader('Access-Control-Allow-Origin', origin);
  res.setHeader('Access-Control-Expose-Headers', rules.exposed);
  // Cookies only ever go to one named origin: browsers refuse credentials with '*'.
  if (origin !== '*') res.setHeader('Access-Control-Allow-Credentials', 'true');
}

/** The answer to an OPTIONS preflight: 200 with `Allow` and what the page may send. */
export function answerPreflight(req: IncomingMessage, res: ServerResponse, origin: string, rules: CorsRules): void {
  allowCrossOrigin(res, origin, rules);
  const asked = req.headers['access-control-request-headers'];
  res.writeHead(200, {
    Allow: rules.methods,
    'Access-Control-Allow-Methods': rules.methods,
    // The cursor headers, Last-Event-ID, Content-Type, Authorization...: whatever the page asks to send.
    ...(asked ? { 'Access-Control-Allow-Headers': asked } : {}),
    'Access-Control-Max-Age': '600',
    'Content-Length': '0',
  });
  res.end();
}

/**
 * Whether a request from `origin` may use an endpoint with `allowOrigin`. Browsers apply no CORS to
 * WebSockets: a page on any origin can open one, with the user's cookies. So the upgrade's `Origin` is
 * checked against `allowOrigin` (`'*'` allows any); a request without an `Origin` header does not
 * come from a page, and is not an origin check's business.
 */
export function originAllowed(allowOrigin: string, origin: string | undefined): boolean {
  return allowOrigin === '*' || origin === undefined || origin.toLowerCase() === allowOrigin.toLowerCase();
}
