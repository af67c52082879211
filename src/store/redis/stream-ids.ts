/** Message ids as Redis Stream entry ids: `(time, tag)` <-> `time-tag`. */
import type { MessageId } from '../../protocol/message-id.js';

export function toStreamId(id: MessageId): string {
  return `${id.time}-${id.tag}`;
}

/** undefined for '' (no id). */
export function fromStreamId(text: string): MessageId | undefined {
  if (text === '') return undefined;
  const dash = text.indexOf('-');
  return { time: Number(text.slice(0, dash)), tag: Number(text.slice(dash + 1)) };
}
