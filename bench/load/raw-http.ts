/**
 * A minimal HTTP/1.1 client over raw `net` sockets, so the load generator is never the bottleneck:
 * keep-alive, requests written as pre-built bytes, responses parsed only as far as the benchmark needs
 * (status line, Content-Length, Transfer-Encoding, Content-Type, Last-Modified, Etag, body).
 *
 * A response whose Content-Type is text/event-stream turns the connection into a stream: every later
 * byte (de-chunked when the server uses chunked encoding) goes to `onStreamData`.
 */
import { connect, type Socket } from 'node:net';

export interface RawResponse {
  status: number;
  contentType: string | undefined;
  lastModified: string | undefined;
  etag: string | undefined;
  body: Buffer;
}

const HEADER_END = Buffer.from('\r\n\r\n', 'latin1');
const EMPTY = Buffer.alloc(0);
/**
 * Every socket reads into this one buffer (net's `onread`): no Buffer per read and no stream
 * machinery. Safe because each read is handled synchronously; whatever is kept is copied.
 */
const READ_BUFFER = Buffer.allocUnsafe(256 * 1024);

const CR = 13;
const LOWER = 0x20;
const nameBytes = (name: string) => Buffer.from(name, 'latin1');
const CONTENT_LENGTH = nameBytes('content-length:');
const CONTENT_TYPE = nameBytes('content-type:');
const LAST_MODIFIED = nameBytes('last-modified:');
const ETAG = nameBytes('etag:');
const TRANSFER_ENCODING = nameBytes('transfer-encoding:');

/** Whether the header line at `at` has the (lower-case, colon-ended) name. */
function isHeader(buf: Buffer, at: number, eol: number, name: Buffer): boolean {
  if (eol - at < name.length) return false;
  for (let i = 0; i < name.length; i++) if ((buf[at + i]! | LOWER) !== name[i]) return false;
  return true;
}

function valueStart(buf: Buffer, at: number, eol: number): number {
  while (at < eol && buf[at] === 32) at++;
  return at;
}

export class RawConnection {
  readonly socket: Socket;
  onResponse: (res: RawResponse) => void = () => {};
  onStreamData: (data: Buffer) => void = () => {};
  onClose: (hadError: boolean) => void = () => {};
  /** True once the TCP connection is up. */
  connected = false;
  #closedByUs = false;
  #pending: Buffer = EMPTY;
  /** Parsed head of a response whose body has not fully arrived. */
  #head: RawResponse | undefined;
  #bodyLength = 0;
  #chunked = false;
  #streaming = false;
  /** Left of the current chunk in streaming chunked mode; -1 while reading a chunk-size line. */
  #chunkLeft = -1;

  constructor(port: number, host = '127.0.0.1', onConnect?: () => void) {
    this.socket = connect(
      {
        port,
        host,
        noDelay: true,
        onread: {
          buffer: READ_BUFFER,
          callback: (size: number, buf: Uint8Array) => {
            this.#data(Buffer.from(buf.buffer, buf.byteOffset, size));
            return true;
          },
        },
      },
      () => {
        this.connected = true;
        onConnect?.();
      },
    );
    this.socket.on('error', () => {});
    this.socket.on('close', (hadError) => {
      if (!this.#closedByUs) this.onClose(hadError);
    });
  }

  write(request: Buffer | string): void {
    this.socket.write(request);
  }

  /** Closes with an RST: no TIME_WAIT left behind, so back-to-back runs do not run out of ports. */
  reset(): void {
    this.#closedByUs = true;
    if (!this.socket.destroyed) this.socket.resetAndDestroy();
  }

  #data(chunk: Buffer): void {
    if (this.#streaming) {
      this.#stream(chunk);
      return;
    }
    const buf = this.#pending.length ? Buffer.concat([this.#pending, chunk]) : chunk;
    let offset = 0;
    for (;;) {
      if (this.#head === undefined) {
        const end = buf.indexOf(HEADER_END, offset);
        if (end < 0) break;
        this.#parseHead(buf, offset, end + 2);
        offset = end + 4;
        if (this.#streaming) {
          this.#pending = EMPTY;
          this.#emit(EMPTY);
          if (offset < buf.length) this.#stream(buf.subarray(offset));
          return;
        }
      }
      if (this.#chunked) {
        // Chunked non-stream bodies are rare here (error pages): read until the 0-size chunk.
        const endAt = buf.indexOf('\r\n0\r\n\r\n', offset, 'latin1');
        const atStart = buf.indexOf('0\r\n\r\n', offset, 'latin1') === offset;
        if (endAt < 0 && !atStart) break;
        const stop = atStart ? offset + 5 : endAt + 7;
        this.#emit(buf.subarray(offset, stop));
        offset = stop;
        continue;
      }
      if (buf.length - offset < this.#bodyLength) break;
      const body = buf.subarray(offset, offset + this.#bodyLength);
      offset += this.#bodyLength;
      this.#emit(body);
    }
    // Copied: `buf` may be the shared read buffer.
    this.#pending = offset >= buf.length ? EMPTY : Buffer.from(buf.subarray(offset));
  }

  /** Parses the head in buf[start, end) (end is past the last header line's CRLF). */
  #parseHead(buf: Buffer, start: number, end: number): void {
    const status = (buf[start + 9]! - 48) * 100 + (buf[start + 10]! - 48) * 10 + (buf[start + 11]! - 48);
    let contentType: string | undefined;
    let lastModified: string | undefined;
    let etag: string | undefined;
    let length = 0;
    let chunked = false;
    let at = buf.indexOf(CR, start) + 2;
    while (at < end) {
      let eol = at;
      while (buf[eol] !== CR) eol++;
      switch (buf[at]! | LOWER) {
        case 0x63: // c
          if (isHeader(buf, at, eol, CONTENT_LENGTH)) {
            length = 0;
            for (let i = valueStart(buf, at + CONTENT_LENGTH.length, eol); i < eol && buf[i] !== 32; i++) length = length * 10 + buf[i]! - 48;
          } else if (isHeader(buf, at, eol, CONTENT_TYPE)) {
            contentType = buf.toString('latin1', valueStart(buf, at + CONTENT_TYPE.length, eol), eol);
          }
          break;
        case 0x6c: // l
          if (isHeader(buf, at, eol, LAST_MODIFIED)) lastModified = buf.toString('latin1', valueStart(buf, at + LAST_MODIFIED.length, eol), eol);
          break;
        case 0x65: // e
          if (isHeader(buf, at, eol, ETAG)) etag = buf.toString('latin1', valueStart(buf, at + ETAG.length, eol), eol);
          break;
        case 0x74: // t
          if (isHeader(buf, at, eol, TRANSFER_ENCODING)) {
            chunked = buf.toString('latin1', valueStart(buf, at + TRANSFER_ENCODING.length, eol), eol).trim().toLowerCase() === 'chunked';
          }
          break;
      }
      at = eol + 2;
    }
    this.#chunked = chunked;
    this.#bodyLength = length;
    this.#streaming = status === 200 && contentType !== undefined && contentType.startsWith('text/event-stream');
    this.#chunkLeft = -1;
    this.#head = { status, contentType, lastModified, etag, body: EMPTY };
  }

  #emit(body: Buffer): void {
    const head = this.#head!;
    this.#head = undefined;
    head.body = body;
    this.onResponse(head);
  }

  #stream(chunk: Buffer): void {
    if (!this.#chunked) {
      this.onStreamData(chunk);
      return;
    }
    const buf = this.#pending.length ? Buffer.concat([this.#pending, chunk]) : chunk;
    let offset = 0;
    while (offset < buf.length) {
      if (this.#chunkLeft < 0) {
        const eol = buf.indexOf('\r\n', offset, 'latin1');
        if (eol < 0) break;
        this.#chunkLeft = parseInt(buf.toString("latin1", offset, eol), 16);
        offset = eol + 2;
        continue;
      }
      if (this.#chunkLeft === 0) {
        // A chunk's data is followed by CRLF.
        if (buf.length - offset < 2) break;
        offset += 2;
        this.#chunkLeft = -1;
        continue;
      }
      const take = Math.min(this.#chunkLeft, buf.length - offset);
      this.onStreamData(buf.subarray(offset, offset + take));
      offset += take;
      this.#chunkLeft -= take;
    }
    this.#pending = offset >= buf.length ? EMPTY : Buffer.from(buf.subarray(offset));
  }
}

/**
 * Opens `count` connections, round-robin over `ports`, at most `burst` handshakes at a time (the
 * listen backlog is finite).
 */
export async function openConnections(count: number, ports: number[], burst = 256): Promise<RawConnection[]> {
  const all: RawConnection[] = [];
  let next = 0;
  await new Promise<void>((resolve, reject) => {
    let inFlight = 0;
    let done = 0;
    const launch = () => {
      while (inFlight < burst && next < count) {
        inFlight++;
        const conn = new RawConnection(ports[next % ports.length]!, '127.0.0.1', () => {
          inFlight--;
          done++;
          if (done === count) resolve();
          else launch();
        });
        conn.socket.once('error', (err) => reject(new Error(`connect failed after ${done} connections: ${err.message}`)));
        all.push(conn);
        next++;
      }
    };
    if (count === 0) resolve();
    else launch();
  });
  return all;
}
