/**
 * Channel information, the body of every 2xx publisher answer (rev 2.23 §3.2), in the exact layouts
 * of the push module: text/plain, JSON, XML and YAML, chosen by `Accept`.
 */
import Negotiator from 'negotiator';
import { formatId, type MessageId } from './message-id.js';

export interface ChannelInfo {
  /** Messages stored now. */
  messages: number;
  /** Seconds since a subscriber last requested the channel; -1 if never. */
  requested: number;
  /** Subscriber requests held (waiting) on the channel. */
  subscribers: number;
  /** Newest message ever published to the channel, stored or not; undefined if none. */
  lastMessageId: MessageId | undefined;
}

/** Media types we can answer, in order of preference when `Accept` allows several equally. */
const MEDIA_TYPES = [
  'text/plain',
  'text/json',
  'application/json',
  'text/xml',
  'application/xml',
  'text/yaml',
  'application/yaml',
  'application/x-yaml',
] as const;
export type ChannelInfoType = (typeof MEDIA_TYPES)[number];

/** The media type to answer for an `Accept` header (q-values honoured); text/plain when nothing fits. */
export function negotiateInfoType(accept: string | undefined): ChannelInfoType {
  if (!accept) return 'text/plain';
  const best = new Negotiator({ headers: { accept } }).mediaType(MEDIA_TYPES as unknown as string[]);
  return (best as ChannelInfoType | undefined) ?? 'text/plain';
}

export function formatChannelInfo(info: ChannelInfo, type: ChannelInfoType): string {
  const id = formatId(info.lastMessageId);
  switch (type) {
    case 'text/json':
    case 'application/json':
      return `{"messages": ${info.messages}, "requested": ${info.requested}, "subscribers": ${info.subscribers}, "last_message_id": "${id}" }`;
    case 'text/xml':
    case 'application/xml':
      return (
        '<?xml version="1.0" encoding="UTF-8" ?>\r\n<channel>\r\n' +
        `  <messages>${info.messages}</messages>\r\n` +
        `  <requested>${info.requested}</requested>\r\n` +
        `  <subscribers>${info.subscribers}</subscribers>\r\n` +
        `  <last_message_id>${id}</last_message_id>\r\n</channel>`
      );
    case 'text/yaml':
    case 'application/yaml':
    case 'application/x-yaml':
      return `---\r\nmessages: ${info.messages}\r\nrequested: ${info.requested}\r\nsubscribers: ${info.subscribers}\r\nlast_message_id: "${id}"\r\n\r\n`;
    default:
      return (
        `queued messages: ${info.messages}\r\n` +
        `last requested: ${info.requested} sec. ago\r\n` +
        `active subscribers: ${info.subscribers}\r\n` +
        `last message id: ${id}`
      );
  }
}

/**
 * The channel info of several channels (a publish to several at once), in request order: each entry
 * as formatChannelInfo lays out one, named by its channel id.
 */
export function formatChannelInfoList(items: ReadonlyArray<{ channel: string; info: ChannelInfo }>, type: ChannelInfoType): string {
  switch (type) {
    case 'text/json':
    case 'application/json':
      return `{"channels": [${items.map(({ channel, info }) => `{"channel": ${JSON.stringify(channel)}, ${formatChannelInfo(info, type).slice(1)}`).join(', ')}]}`;
    case 'text/xml':
    case 'application/xml':
      return (
        '<?xml version="1.0" encoding="UTF-8" ?>\r\n<channels>\r\n' +
        items
          .map(({ channel, info }) => formatChannelInfo(info, type).replace(/^[^]*?<channel>\r\n/, `<channel>\r\n  <name>${escapeXml(channel)}</name>\r\n`))
          .join('\r\n') +
        '\r\n</channels>'
      );
    case 'text/yaml':
    case 'application/yaml':
    case 'application/x-yaml':
      return `---\r\n${items.map(({ channel, info }) => `- channel: ${JSON.stringify(channel)}\r\n${formatChannelInfo(info, type).slice(5).trimEnd().split('\r\n').map((line) => `  ${line}`).join('\r\n')}\r\n`).join('')}\r\n`;
    default:
      return items.map(({ channel, info }) => `channel: ${JSON.stringify(channel)}\r\n${formatChannelInfo(info, type)}`).join('\r\n\r\n');
  }
}

function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
