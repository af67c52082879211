/**
 * `message/http` publishing (the push module README's idea, `messageHttp`): a POST whose body is a
 * whole HTTP response (status line, headers, body) becomes what long-poll subscribers are answered.
 * Only 2xx statuses; hop-by-hop headers and the framing (`Content-Length`, `Transfer-Encoding`) are
 * never copied, the relay frames the answer itself; the relay's own cursor headers win over the
 * publisher's. Anything malformed is a 400 and nothing is stored.
 */
import { protocolError, type ProtocolError } from './protocol-error.js';

/** The status and headers a long-poll subscriber is answered with (the body is the message's data). */
export interface HttpResponseHead {
  readonly status: number;
  readonly headers: ReadonlyArray<readonly [string, string]>;
}

export interface ParsedHttpMessage {
  head: HttpResponseHead;
  /** The embedded Content-Type, if any: the message's own. */
  contentType: string | undefined;
  body: Buffer;
}

/** Whether a Content-Type is `message/http` (any parameters). */
export function isMessageHttp(contentType: string | undefined): boolean {
  return contentType !== undefined && /^\s*message\/http\s*(;|$)/i.test(contentType);
}

/** Headers the relay sets or that belong to one connection: never taken from the publisher. */
const NOT_COPIED = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'content-length',
  'content-type',
  'last-modified',
  'etag',
  'vary',
  'date',
]);

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
// Visible characters, spaces and tabs (no control characters): what a header value may hold.
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
const STATUS_LINE = /^HTTP\/1\.[01] ([1-9]\d\d)(?: [^\r\n]*)?$/;

const malformed = (why: string): ProtocolError => protocolError(400, `push-relay: the message/http body is not an HTTP response: ${why}`, 'message.http.invalid');

/** Parses a published `message/http` body; throws a 400 ProtocolError when it is not a valid 2xx response. */
export function parseHttpMessage(data: Buffer): ParsedHttpMessage {
  let end = data.indexOf('\r\n\r\n');
  let bodyAt = end + 4;
  const lf = data.indexOf('\n\n');
  if (lf >= 0 && (end < 0 || lf < end)) {
    end = lf;
    bodyAt = lf + 2;
  }
  if (end < 0) throw malformed('no blank line after the headers');
  const lines = data.toString('latin1', 0, end).split(/\r?\n/);
  const status = STATUS_LINE.exec(lines[0] ?? '');
  if (!status) throw malformed('the first line must be a status line such as "HTTP/1.1 200 OK"');
  const code = Number(status[1]);
  if (code < 200 || code > 299) throw malformed(`status ${code}: only 2xx answers can be relayed`);
  const headers: Array<[string, string]> = [];
  let contentType: string | undefined;
  let length: number | undefined;
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon <= 0) throw malformed(`header line ${JSON.stringify(line.slice(0, 40))} has no name`);
    const name = line.slice(0, colon);
    const value = line.slice(colon + 1).trim();
    if (!TOKEN.test(name)) throw malformed(`header name ${JSON.stringify(name.slice(0, 40))} is not a token`);
    if (!FIELD_VALUE.test(value)) throw malformed(`header ${name} holds control characters`);
    const lower = name.toLowerCase();
    if (lower === 'content-type') contentType = value;
    else if (lower === 'content-length') {
      if (!/^\d{1,15}$/.test(value)) throw malformed('Content-Length is not a number');
      length = Number(value);
    } else if (lower === 'transfer-encoding' && value.toLowerCase() !== 'identity') {
      throw malformed('a Transfer-Encoding other than identity: send the body as it is');
    }
    if (!NOT_COPIED.has(lower)) headers.push([name, Buffer.from(value, 'latin1').toString('latin1')]);
  }
  const body = data.subarray(bodyAt);
  if (length !== undefined && length !== body.length) throw malformed(`Content-Length ${length}, but the body has ${body.length} bytes`);
  return { head: { status: code, headers }, contentType, body };
}
