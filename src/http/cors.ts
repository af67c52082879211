/**
 * CORS for browsers on another origin (`allowOrigin`): `'*'`, one origin, a list, a RegExp or a
 * function. Browsers apply no CORS to WebSockets, so the subscriber endpoint also checks an upgrade's
 * `Origin` against the same rule (originAllowed).
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

/** The forms of `allowOrigin` (options.ts). */
export type OriginRule = string | readonly string[] | RegExp | ((origin: string, req: IncomingMessage) => boolean);

/**
 * Whether `origin` may use the endpoint. A request without an `Origin` header does not come from a
 * page of another origin: CORS is not its business.
 */
export function originAllowed(rule: OriginRule, origin: string | undefined, req: IncomingMessage): boolean {
  if (origin === undefined || rule === '*') return true;
  if (typeof rule === 'string') return origin.toLowerCase() === rule.toLowerCase();
  if (typeof rule === 'function') return rule(origin, req) === true;
  if (rule instanceof RegExp) {
    rule.lastIndex = 0; // a /g or /y RegExp would otherwise test from where its last match ended
    return rule.test(origin);
  }
  const lower = origin.toLowerCase();
  return (rule as readonly string[]).some((o) => o.toLowerCase() === lower);
}

/**
 * Adds the CORS headers to whatever `res` answers; call before anything is written. `'*'` and one
 * fixed origin answer the same to everyone; a list, a RegExp or a function answer each request with
 * its own origin when allowed (nothing when not), so they add `Vary: Origin` for caches.
 */
export function allowCrossOrigin(req: IncomingMessage, res: ServerResponse, rule: OriginRule, rules: CorsRules): void {
  let value: string | undefined;
  if (typeof rule === 'string') value = rule;
  else {
    res.setHeader('Vary', appendVary(res.getHeader('Vary'), 'Origin'));
    const origin = req.headers.origin;
    if (origin !== undefined && originAllowed(rule, origin, req)) value = origin;
  }
  if (value === undefined) return;
  res.setHeader('Access-Control-Allow-Origin', value);
  res.setHeader('Access-Control-Expose-Headers', rules.exposed);
  // Cookies only ever go to one named origin: browsers refuse credentials with '*'.
  if (value !== '*') res.setHeader('Access-Control-Allow-Credentials', 'true');
}

function appendVary(current: ReturnType<ServerResponse['getHeader']>, field: string): string {
  const text = current === undefined ? '' : Array.isArray(current) ? current.join(', ') : String(current);
  if (text === '') return field;
  return text.split(',').some((f) => f.trim().toLowerCase() === field.toLowerCase()) ? text : `${text}, ${field}`;
}

/** The answer to an OPTIONS preflight: 200 with `Allow` and what the page may send. */
export function answerPreflight(req: IncomingMessage, res: ServerResponse, rule: OriginRule, rules: CorsRules): void {
  allowCrossOrigin(req, res, rule, rules);
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
