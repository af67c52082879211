/**
 * A small HTTP client for tests, on node:http rather than fetch: fetch sends `Cache-Control:
 * no-cache`, which hides Express's ETag/fresh pitfalls (docs/protocol.md). Plus raw-socket helpers for
 * requests no well-behaved client sends.
 */
import http, { type IncomingHttpHeaders } from 'node:http';
import net from 'node:net';

export interface HttpResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  text: string;
}

export interface RequestOptions {
  method?: string;
  headers?: Record<string, string | string[]>;
  body?: string | Buffer;
  signal?: AbortSignal;
  /** Fails the request when no complete answer came within this many ms (a test must not hang). @default 15000 */
  timeout?: number;
}

/** One request on its own connection (no agent: a parked request must not hold up the next one). */
export function request(url: string, options: RequestOptions = {}): Promise<HttpResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: options.method ?? 'GET', headers: options.headers, agent: false, signal: options.signal }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text: body.toString('utf8') });
      });
      res.on('error', reject);
    });
    req.setTimeout(options.timeout ?? 15_000, () => req.destroy(new Error(`${options.method ?? 'GET'} ${url}: no answer within ${options.timeout ?? 15_000} ms`)));
    req.on('error', reject);
    req.end(options.body);
  });
}

/** The cursor headers that ask for the message after the one `res` carried. */
export function cursorOf(res: HttpResponse): Record<string, string> {
  const lastModified = res.headers['last-modified'];
  const etag = res.headers.etag;
  if (typeof lastModified !== 'string' || typeof etag !== 'string') throw new Error(`response ${res.status} carries no cursor`);
  return { 'If-Modified-Since': lastModified, 'If-None-Match': etag };
}

export interface RawResponse {
  status: number;
  /** Header names lower-cased. */
  headers: Record<string, string>;
  body: Buffer;
  /** Everything the server sent. */
  raw: Buffer;
}

/** Parses one HTTP/1.1 response (Content-Length framed, or everything until close). */
export function parseRawResponse(raw: Buffer): RawResponse | undefined {
  const end = raw.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const lines = raw.subarray(0, end).toString('latin1').split('\r\n');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '')?.[1]);
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  const length = headers['content-length'];
  let body = raw.subarray(end + 4);
  if (length !== undefined) {
    if (body.length < Number(length)) return undefined;
    body = body.subarray(0, Number(length));
  } else if (status !== 304 && status !== 204 && headers['transfer-encoding'] === undefined) {
    return undefined;
  }
  return { status, headers, body, raw };
}

/**
 * Sends `head` (and `body`, if any) over a raw socket and resolves with the first complete response,
 * without waiting for the socket to close. `keepOpen` leaves the socket to the caller.
 */
export function rawExchange(port: number, head: string, body?: Buffer): Promise<RawResponse & { socket: net.Socket }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let done = false;
    socket.on('data', (c: Buffer) => {
      chunks.push(c);
      const parsed = parseRawResponse(Buffer.concat(chunks));
      if (parsed && !done) {
        done = true;
        resolve({ ...parsed, socket });
      }
    });
    const fail = (err: Error) => {
      if (!done) {
        done = true;
        reject(err);
      }
    };
    // A server may reset the connection right after answering (413 with Connection: close).
    socket.on('error', (err) => {
      const parsed = parseRawResponse(Buffer.concat(chunks));
      if (parsed && !done) {
        done = true;
        resolve({ ...parsed, socket });
      } else fail(err);
    });
    socket.on('close', () => fail(new Error(`connection closed before a complete response: ${JSON.stringify(Buffer.concat(chunks).toString('latin1'))}`)));
    // A test must not hang on an answer that never comes.
    socket.setTimeout(15_000, () => socket.destroy(new Error('no complete answer within 15000 ms')));
    socket.write(head);
    if (body) socket.write(body);
  });
}

/** A GET written as raw text, `headers` exactly as given. */
export function rawGet(port: number, path: string, headers: Record<string, string> = {}): Promise<RawResponse & { socket: net.Socket }> {
  const lines = [`GET ${path} HTTP/1.1`, 'Host: 127.0.0.1', 'Connection: close', ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
  return rawExchange(port, `${lines.join('\r\n')}\r\n\r\n`).then((r) => {
    r.socket.destroy();
    return r;
  });
}
