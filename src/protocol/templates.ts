/**
 * Message templates (the Push Stream Module's header, message and footer templates): what a
 * subscriber receives around and instead of each message's bare body. Placeholders are matched
 * case-insensitively and substituted in one pass, so a `~id~` inside a message's text or a channel
 * id is never expanded again.
 *
 * Also here: the synthetic messages a template is applied to (ping -1, channel deleted -2, long-poll
 * time-out -3), padding by user agent, and the JSONP callback check.
 */
import { httpDate } from './cursor.js';
import type { MessageId } from './message-id.js';

/** What a template reads of a stored message (the store's StoredMessage is one). */
export interface StoredMessage {
  readonly id: MessageId;
  readonly data: Buffer;
  readonly seq?: number | undefined;
  readonly eventId?: string | undefined;
  readonly eventType?: string | undefined;
}

/** What a placeholder can name. */
export interface TemplateFields {
  /** `~id~`: the message's sequence number in its channel, or -1 / -2 / -3 for the synthetic ones. */
  id: number;
  /** `~channel~`: the channel id ('' for a ping or a time-out). */
  channel: string;
  /** `~text~`: the body, as it is. */
  text: Buffer;
  /** `~time~` (an HTTP date): the unix second it was published. */
  time: number;
  /** `~tag~`. */
  tag: number;
  /** `~event-id~`, `~event-type~`: '' when the publisher gave none. */
  eventId: string;
  eventType: string;
}

export type Synthetic = 'ping' | 'deleted' | 'timeout';
const SYNTHETIC_ID: Readonly<Record<Synthetic, number>> = { ping: -1, deleted: -2, timeout: -3 };

const PLACEHOLDER = /~(id|channel|text|size|time|tag|event-id|event-type)~/gi;
type Field = 'id' | 'channel' | 'text' | 'size' | 'time' | 'tag' | 'event-id' | 'event-type';

/** A template compiled once: literal text and placeholders, in order. */
export class Template {
  readonly #parts: Array<Buffer | Field> = [];

  constructor(readonly source: string) {
    let at = 0;
    for (const m of source.matchAll(PLACEHOLDER)) {
      if (m.index > at) this.#parts.push(Buffer.from(source.slice(at, m.index), 'utf8'));
      this.#parts.push(m[1]!.toLowerCase() as Field);
      at = m.index + m[0].length;
    }
    if (at < source.length) this.#parts.push(Buffer.from(source.slice(at), 'utf8'));
  }

  render(fields: TemplateFields): Buffer {
    const out: Buffer[] = [];
    for (const part of this.#parts) out.push(typeof part === 'string' ? fieldBytes(part, fields) : part);
    return Buffer.concat(out);
  }
}

function fieldBytes(field: Field, f: TemplateFields): Buffer {
  switch (field) {
    case 'text':
      return f.text;
    case 'id':
      return Buffer.from(String(f.id));
    case 'channel':
      return Buffer.from(f.channel, 'utf8');
    case 'size':
      return Buffer.from(String(f.text.length));
    case 'time':
      return Buffer.from(httpDate(f.time));
    case 'tag':
      return Buffer.from(String(f.tag));
    case 'event-id':
      return Buffer.from(f.eventId, 'utf8');
    case 'event-type':
      return Buffer.from(f.eventType, 'utf8');
  }
}

/** push_stream_padding_by_user_agent: one rule. */
export interface PaddingRule {
  /** Matched against the request's User-Agent. */
  userAgent: RegExp;
  /** The least bytes the stream's opening (the header) takes. */
  header: number;
  /** The least bytes each message takes. */
  message: number;
}

/** What a subscriber endpoint's template options become. */
export interface TemplateSettings {
  header: string | undefined;
  message: string | undefined;
  footer: string | undefined;
  pingMessageText: string;
  channelDeletedMessageText: string;
  timeoutWithBody: boolean;
  padding: readonly PaddingRule[];
}

/** The padding a request gets: the first rule matching its User-Agent, capped at the largest minimum. */
export interface Padding {
  header: number;
  message: number;
  max: number;
}

/**
 * One subscriber endpoint's templates. A message's rendering is cached per message (every
 * subscriber of the endpoint gets the same bytes: one channel key is one channel id per endpoint).
 */
export class Templates {
  readonly header: Buffer | undefined;
  readonly footer: Buffer | undefined;
  readonly message: Template | undefined;
  readonly settings: TemplateSettings;
  readonly #rendered = new WeakMap<StoredMessage, Buffer>();
  /** Frames built from the rendering, one cache per transport kind (see frameCache()). */
  readonly frames = new Map<string, unknown>();
  readonly #maxPadding: number;

  constructor(settings: TemplateSettings) {
    this.settings = settings;
    this.header = settings.header ? Buffer.from(settings.header, 'utf8') : undefined;
    this.footer = settings.footer ? Buffer.from(settings.footer, 'utf8') : undefined;
    this.message = settings.message !== undefined ? new Template(settings.message) : undefined;
    this.#maxPadding = Math.max(0, ...settings.padding.flatMap((r) => [r.header, r.message]));
  }

  /** Whether anything is templated at all: an endpoint without templates answers as it always did. */
  static from(settings: TemplateSettings): Templates | undefined {
    const any = settings.header !== undefined || settings.message !== undefined || settings.footer !== undefined || settings.timeoutWithBody || settings.padding.length > 0;
    return any ? new Templates(settings) : undefined;
  }

  /** The message as the message template renders it (its body as it is without one). */
  render(message: StoredMessage, channel: string): Buffer {
    const template = this.message;
    if (!template) return message.data;
    let out = this.#rendered.get(message);
    if (!out) {
      out = template.render(fieldsOf(message, channel));
      this.#rendered.set(message, out);
    }
    return out;
  }

  /** The message template applied to one line of a message (EventSource applies it per `data:` line). */
  renderLine(message: StoredMessage, channel: string, line: Buffer): Buffer {
    const template = this.message;
    if (!template) return line;
    return template.render({ ...fieldsOf(message, channel), text: line });
  }

  /** A ping (-1), a channel deleted (-2) or a time-out (-3), rendered; undefined without a message template. */
  synthetic(kind: Synthetic, channel: string, text?: Buffer): Buffer | undefined {
    const template = this.message;
    if (!template) return undefined;
    return template.render(syntheticFields(kind, channel, text ?? Buffer.from(this.textOf(kind), 'utf8')));
  }

  /** The text a synthetic message carries. */
  textOf(kind: Synthetic): string {
    return kind === 'ping' ? this.settings.pingMessageText : kind === 'deleted' ? this.settings.channelDeletedMessageText : 'Timed out';
  }

  /** The padding for a request with this User-Agent, or undefined. */
  paddingFor(userAgent: string | undefined): Padding | undefined {
    if (this.settings.padding.length === 0 || userAgent === undefined) return undefined;
    const rule = this.settings.padding.find((r) => r.userAgent.test(userAgent));
    return rule ? { header: rule.header, message: rule.message, max: this.#maxPadding } : undefined;
  }
}

/** Fields of a stored message. */
export function fieldsOf(message: StoredMessage, channel: string): TemplateFields {
  return {
    id: message.seq ?? 0,
    channel,
    text: message.data,
    time: message.id.time,
    tag: message.id.tag,
    eventId: message.eventId ?? '',
    eventType: message.eventType ?? '',
  };
}

/** Fields of a synthetic message: its id, time 0 (1 Jan 1970) and tag 0. */
export function syntheticFields(kind: Synthetic, channel: string, text: Buffer): TemplateFields {
  return { id: SYNTHETIC_ID[kind], channel, text, time: 0, tag: 0, eventId: '', eventType: '' };
}

/**
 * How many padding bytes a frame of `length` bytes needs to reach `min`: the Push Stream Module's
 * 100-byte steps, `(floor(deficit / 100) + 1) * 100`, never more than `max`.
 */
export function paddingBytes(length: number, min: number, max: number): number {
  if (length >= min) return 0;
  return Math.min((Math.floor((min - length) / 100) + 1) * 100, max);
}

/** `n` bytes of padding: `\r\n` runs on byte streams, `:` comment lines on EventSource. */
export function paddingText(n: number, eventSource: boolean): string {
  if (n <= 0) return '';
  if (eventSource) return `${':'.repeat(n - 1)}\n`;
  return '\r\n'.repeat(n >> 1) + (n & 1 ? ' ' : '');
}

/** A DELETE's notice as the channel deleted message's text; undefined (the configured text) when it gave none. */
export function noticeText(notice: string | undefined): Buffer | undefined {
  return notice ? Buffer.from(notice, 'utf8') : undefined;
}

/** A JSONP callback name: dotted JavaScript identifiers, at most 128 characters. */
const CALLBACK = /^[A-Za-z_$][\w$]*(\.[A-Za-z_$][\w$]*)*$/;
export const MAX_CALLBACK_LENGTH = 128;

export function validCallback(name: string): boolean {
  return name.length <= MAX_CALLBACK_LENGTH && CALLBACK.test(name);
}
