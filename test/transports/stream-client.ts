/**
 * Raw-socket clients for streaming responses: an incremental HTTP/1.1 response reader that undoes
 * chunked transfer coding (keeping each chunk and the trailers), and parsers for what streams carry
 * (server-sent events, multipart/mixed parts). No client library in between, so the tests see the
 * bytes the relay writes.
 */
import net from 'node:net';
import { parseRawResponse, type RawResponse } from '../helpers/http-client.js';

export interface SseEvent {
  id: string | undefined;
  event: string;
  data: string;
}

export interface RawStreamOptions {
  /** `'1.0'`: an HTTP/1.0 request (no chunked coding; the body runs until the connection closes). */
  httpVersion?: '1.0' | '1.1';
  /** A whole request written ahead of this one on the same connection (pipelined); its answer goes to `ahead`. */
  pipelinedBehind?: string;
}

export class RawStream {
  readonly socket: net.Socket;
  /** The answer to the `pipelinedBehind` request, once complete. */
  ahead: RawResponse | undefined;
  status = 0;
  /** Lower-cased names. */
  headers: Record<string, string> = {};
  /** Payloads of the chunks received, in order (the body when not chunked: one entry per read). */
  readonly chunks: Buffer[] = [];
  trailers: Record<string, string> = {};
  /** The response is complete (last chunk, or the connection closed). */
  ended = false;
  closed = false;
  #buf: Buffer = Buffer.alloc(0);
  #state: 'ahead' | 'head' | 'size' | 'data' | 'trailers' | 'identity' | 'done';
  #need = 0;
  #listeners = new Set<() => void>();

  constructor(port: number, path: string, headers: Record<string, string> = {}, options: RawStreamOptions = {}) {
    this.socket = net.connect(port, '127.0.0.1');
    this.#state = options.pipelinedBehind ? 'ahead' : 'head';
    const lines = [`GET ${path} HTTP/${options.httpVersion ?? '1.1'}`, 'Host: 127.0.0.1', ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
    this.socket.write(`${options.pipelinedBehind ?? ''}${lines.join('\r\n')}\r\n\r\n`);
    this.socket.on('data', (data: Buffer) => {
      this.#buf = this.#buf.length ? Buffer.concat([this.#buf, data]) : data;
      this.#parse();
      this.#notify();
    });
    this.socket.on('error', () => {});
    this.socket.on('close', () => {
      this.closed = true;
      this.ended = true;
      this.#notify();
    });
  }

  /** The body so far, chunks joined. */
  get body(): Buffer {
    return Buffer.concat(this.chunks);
  }

  get text(): string {
    return this.body.toString('utf8');
  }

  /** Resolves with `check`'s first value other than undefined/false, re-checked on every read. */
  until<T>(what: string, check: () => T | undefined | false, timeout = 5000): Promise<T> {
    return new Promise((resolve, reject) => {
      const attempt = () => {
        let value: T | undefined | false;
        try {
          value = check();
        } catch (err) {
          done();
          reject(err as Error);
          return;
        }
        if (value !== undefined && value !== false) {
          done();
          resolve(value);
        } else if (this.closed) {
          done();
          reject(new Error(`connection closed while waiting for ${what}; got ${JSON.stringify(this.text.slice(-500))}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`timed out after ${timeout} ms waiting for ${what}; status ${this.status}, got ${JSON.stringify(this.text.slice(-500))}`));
      }, timeout);
      const done = () => {
        clearTimeout(timer);
        this.#listeners.delete(attempt);
      };
      this.#listeners.add(attempt);
      attempt();
    });
  }

  /** Resolves once the headers are in. */
  head(): Promise<this> {
    return this.until('the response headers', () => this.status > 0 && this);
  }

  close(): void {
    this.socket.destroy();
  }

  #notify(): void {
    for (const listener of [...this.#listeners]) listener();
  }

  #parse(): void {
    for (;;) {
      switch (this.#state) {
        case 'ahead': {
          // Only Content-Length answers here: enough for a long-poll request ahead of the stream.
          const ahead = parseRawResponse(this.#buf);
          if (!ahead) return;
          this.ahead = ahead;
          this.#buf = this.#buf.subarray(this.#buf.indexOf('\r\n\r\n') + 4 + ahead.body.length);
          this.#state = 'head';
          break;
        }
        case 'head': {
          const end = this.#buf.indexOf('\r\n\r\n');
          if (end < 0) return;
          const lines = this.#buf.subarray(0, end).toString('latin1').split('\r\n');
          this.#buf = this.#buf.subarray(end + 4);
          this.status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '')?.[1]);
          this.headers = readHeaderLines(lines.slice(1));
          const length = this.headers['content-length'];
          if (this.headers['transfer-encoding'] === 'chunked') this.#state = 'size';
          else if (length !== undefined) {
            this.#state = 'data';
            this.#need = Number(length);
            if (this.#need === 0) this.#finish();
          } else this.#state = 'identity';
          break;
        }
        case 'size': {
          const end = this.#buf.indexOf('\r\n');
          if (end < 0) return;
          const size = parseInt(this.#buf.subarray(0, end).toString('latin1').split(';')[0]!, 16);
          this.#buf = this.#buf.subarray(end + 2);
          if (size === 0) this.#state = 'trailers';
          else {
            this.#need = size;
            this.#state = 'data';
          }
          break;
        }
        case 'data': {
          const chunked = this.headers['transfer-encoding'] === 'chunked';
          const want = this.#need + (chunked ? 2 : 0);
          if (this.#buf.length < want) return;
          this.chunks.push(this.#buf.subarray(0, this.#need));
          this.#buf = this.#buf.subarray(want);
          if (chunked) this.#state = 'size';
          else this.#finish();
          break;
        }
        case 'trailers': {
          const end = this.#buf.indexOf('\r\n\r\n');
          if (this.#buf.subarray(0, 2).toString() === '\r\n') {
            this.#buf = this.#buf.subarray(2);
            this.#finish();
            break;
          }
          if (end < 0) return;
          this.trailers = readHeaderLines(this.#buf.subarray(0, end).toString('latin1').split('\r\n'));
          this.#buf = this.#buf.subarray(end + 4);
          this.#finish();
          break;
        }
        case 'identity':
          if (this.#buf.length === 0) return;
          this.chunks.push(this.#buf);
          this.#buf = Buffer.alloc(0);
          break;
        case 'done':
          return;
      }
    }
  }

  #finish(): void {
    this.#state = 'done';
    this.ended = true;
  }
}

function readHeaderLines(lines: string[]): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return headers;
}

/**
 * Server-sent events as the HTML standard's parser reads them (complete events only): comments
 * dropped, `data:` lines joined with \n, events with no data not dispatched. `comments` collects the
 * comment lines.
 */
export function parseSse(text: string, comments: string[] = []): SseEvent[] {
  const events: SseEvent[] = [];
  let id: string | undefined;
  let event = '';
  let data: string[] = [];
  const lines = text.split(/\r\n|\r|\n/);
  // The last piece is an unfinished line (or '' after a final line break): not parsed yet.
  lines.pop();
  for (const line of lines) {
    if (line === '') {
      if (data.length > 0) events.push({ id, event: event || 'message', data: data.join('\n') });
      event = '';
      data = [];
      continue;
    }
    if (line.startsWith(':')) {
      comments.push(line);
      continue;
    }
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'id') id = value;
    else if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
  }
  return events;
}

export interface Part {
  headers: Record<string, string>;
  body: Buffer;
}

/** The complete parts of a multipart/mixed body so far, and whether the closing delimiter came. */
export function parseMultipart(body: Buffer, boundary: string): { parts: Part[]; closed: boolean } {
  const delimiter = Buffer.from(`\r\n--${boundary}`);
  const pieces: Buffer[] = [];
  let from = body.indexOf(delimiter);
  if (from < 0) return { parts: [], closed: false };
  from += delimiter.length;
  for (;;) {
    const at = body.indexOf(delimiter, from);
    if (at < 0) break;
    pieces.push(body.subarray(from, at));
    from = at + delimiter.length;
  }
  const closed = body.subarray(from, from + 2).toString() === '--';
  const parts = pieces.map((piece) => {
    if (piece.subarray(0, 2).toString() !== '\r\n') throw new Error(`part does not start with CRLF: ${JSON.stringify(piece.toString())}`);
    const end = piece.indexOf('\r\n\r\n');
    return { headers: readHeaderLines(piece.subarray(2, end).toString('latin1').split('\r\n')), body: piece.subarray(end + 4) };
  });
  return { parts, closed };
}
