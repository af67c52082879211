/**
 * multipart/mixed (`Accept: multipart/mixed`, as Nchan): each message is one part with its own
 * `Last-Modified`, `Etag` and `Content-Type` headers. The delimiter is written right after each part
 * (`\r\n--boundary`), so a client knows a part is complete without waiting for the next one; the
 * stream ends with a part carrying `X-Push-Relay-End` and the closing `--`.
 */
import { randomBytes } from 'node:crypto';
import type { OutgoingHttpHeaders } from 'node:http';
import { END_HEADER, endSentence, MISSED_HEADER, type EndReason } from '../protocol/answers.js';
import { cursorHeaders } from '../protocol/cursor.js';
import type { MessageId } from '../protocol/message-id.js';
import type { StoredMessage } from '../store/channel-store.js';
import { HttpStream } from './http-stream.js';
import { oneLine } from './transport.js';

const partHeads = new WeakMap<StoredMessage, Map<string, string>>();

/**
 * `\r\n` + the part's header lines (Last-Modified, Etag, Content-Type if any); shared per message
 * unless `position` (a composite cursor) replaces the Etag.
 */
function partHead(message: StoredMessage, defaultContentType: string | undefined, position: string | undefined): string {
  const key = message.contentType ? '' : (defaultContentType ?? '');
  let byDefault = partHeads.get(message);
  const hit = position === undefined ? byDefault?.get(key) : undefined;
  if (hit !== undefined) return hit;
  const { lastModified, etag } = cursorHeaders(message.id);
  const contentType = message.contentType ?? defaultContentType;
  let head = `\r\nLast-Modified: ${lastModified}\r\nEtag: ${position ?? etag}`;
  if (contentType) head += `\r\nContent-Type: ${contentType}`;
  if (position !== undefined) return head;
  if (!byDefault) partHeads.set(message, (byDefault = new Map()));
  byDefault.set(key, head);
  return head;
}

export class MultipartStream extends HttpStream {
  /** Per stream and unguessable, so that no publisher can forge a part boundary into a body. */
  readonly #boundary = randomBytes(16).toString('hex');

  protected headers(): OutgoingHttpHeaders {
    return {
      'Content-Type': `multipart/mixed; boundary=${this.#boundary}`,
      'Cache-Control': 'no-cache, no-transform',
      'X-Accel-Buffering': 'no',
    };
  }

  protected override preamble(): string {
    return `\r\n--${this.#boundary}`;
  }

  protected frame(message: StoredMessage, gapAfter: MessageId | undefined, position: string | undefined): Array<string | Buffer> {
    const head = partHead(message, this.settings.defaultContentType, position) + (gapAfter ? `\r\n${MISSED_HEADER}: 1` : '');
    return [`${head}\r\n\r\n`, message.data, `\r\n--${this.#boundary}`];
  }

  protected epilogue(reason: EndReason, endedBy: string | undefined): string {
    const sentence = oneLine(endSentence(reason, endedBy));
    return `\r\n${END_HEADER}: ${reason}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n${sentence}\r\n--${this.#boundary}--\r\n`;
  }
}
