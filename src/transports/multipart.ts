/**
 * multipart/mixed (`Accept: multipart/mixed`, as Nchan): each message is one part with its own
 * `Last-Modified`, `Etag` and `Content-Type` headers. The delimiter is written right after each part
 * (`\r\n--boundary`), so a client knows a part is complete without waiting for the next one; the
 * stream ends with a part carrying `X-Push-Relay-End` and the closing `--`.
 */
import { randomBytes } from 'node:crypto';
import type { OutgoingHttpHeaders } from 'node:http';
import { cursorHeaders } from '../cursor.js';
import { MISSED_HEADER } from '../http/message-response.js';
import type { EndReason } from '../parked-subscribers.js';
import type { StoredMessage } from '../store/channel-store.js';
import { END_HEADER, END_SENTENCES, StreamSubscriber } from './stream-subscriber.js';

const partHeads = new WeakMap<StoredMessage, Map<string, string>>();

/** `\r\n` + the part's header lines (Last-Modified, Etag, Content-Type if any); shared per message. */
function partHead(message: StoredMessage, defaultContentType: string | undefined): string {
  const key = message.contentType ? '' : (defaultContentType ?? '');
  let byDefault = partHeads.get(message);
  const hit = byDefault?.get(key);
  if (hit !== undefined) return hit;
  const { lastModified, etag } = cursorHeaders(message.id);
  const contentType = message.contentType ?? defaultContentType;
  let head = `\r\nLast-Modified: ${lastModified}\r\nEtag: ${etag}`;
  if (contentType) head += `\r\nContent-Type: ${contentType}`;
  if (!byDefault) partHeads.set(message, (byDefault = new Map()));
  byDefault.set(key, head);
  return head;
}

export class MultipartSubscriber extends StreamSubscriber {
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

  protected frame(message: StoredMessage, missed: boolean): Array<string | Buffer> {
    const head = partHead(message, this.settings.defaultContentType) + (missed ? `\r\n${MISSED_HEADER}: 1` : '');
    return [`${head}\r\n\r\n`, message.data, `\r\n--${this.#boundary}`];
  }

  protected epilogue(reason: EndReason): string {
    return `\r\n${END_HEADER}: ${reason}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n${END_SENTENCES[reason]}\r\n--${this.#boundary}--\r\n`;
  }
}
