/**
 * The statistics answers (the Push Stream Module's push_stream_channels_statistics): the summary of
 * the relay, the detailed list of channels (written as it is read, item by item) and one channel, in
 * JSON, text/plain, XML and YAML, chosen by `Accept` with q-values honoured (JSON by default). Every
 * string is escaped for its format, so no channel id can break out of its field.
 */
import Negotiator from 'negotiator';

/** One channel, as the endpoint, relay.channels() and the detailed list show it. */
export interface ChannelStatistics {
  /** The channel id (without its channel group). */
  channel: string;
  /** Messages published to it since it was created. */
  published_messages: number;
  /** Messages stored now. */
  stored_messages: number;
  /** Waiting subscribers, in every process sharing the store. */
  subscribers: number;
}

export interface WorkerStatistics {
  pid: number;
  hostname: string;
  subscribers: number;
  /** Seconds since the process's store was made. */
  uptime: number;
}

/** The summary: the endpoint without an id, and relay.stats(). */
export interface StatisticsSummary {
  hostname: string;
  /** ISO 8601, UTC, whole seconds. */
  time: string;
  /** Channels, wildcard channels left out. */
  channels: number;
  wildcard_channels: number;
  /** Messages published since the store's data began (the events channel's left out). */
  published_messages: number;
  /** Messages stored now (the events channel's left out). */
  stored_messages: number;
  subscribers: number;
  /** Seconds since the store's data began. */
  uptime: number;
  /** Every process sharing the store. */
  by_worker: WorkerStatistics[];
}

/** What the detailed list says besides its channels (written after them: the list is streamed). */
export interface ListingHead {
  hostname: string;
  time: string;
}
export interface ListingTail {
  /** Channels listed, wildcard channels left out. */
  channels: number;
  /** Wildcard channels listed. */
  wildcard_channels: number;
  uptime: number;
}

const MEDIA_TYPES = [
  'application/json',
  'text/json',
  'text/x-json',
  'text/plain',
  'application/xml',
  'text/xml',
  'application/yaml',
  'text/yaml',
  'application/x-yaml',
  'text/x-yaml',
] as const;
export type StatisticsType = (typeof MEDIA_TYPES)[number];
type Format = 'json' | 'text' | 'xml' | 'yaml';

/** The media type to answer for `Accept` (q-values honoured); JSON when nothing fits. */
export function negotiateStatisticsType(accept: string | undefined): StatisticsType {
  if (!accept) return 'application/json';
  const best = new Negotiator({ headers: { accept } }).mediaType(MEDIA_TYPES as unknown as string[]);
  return (best as StatisticsType | undefined) ?? 'application/json';
}

function formatOf(type: StatisticsType): Format {
  if (type.endsWith('json')) return 'json';
  if (type.endsWith('xml')) return 'xml';
  if (type.endsWith('yaml')) return 'yaml';
  return 'text';
}

/** The time field: ISO 8601 UTC without fractions. */
export function statisticsTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

// ---------------------------------------------------------------------------------------------
// Escaping

/** XML 1.0 text: markup escaped, line breaks kept as references, characters XML cannot hold as U+FFFD. */
function xml(value: string): string {
  return value.replace(/[&<>"'\r\n]|[^\t\n\r\x20-\ud7ff\ue000-\ufffd\u{10000}-\u{10ffff}]/gu, (c) => XML_ENTITIES[c] ?? '\ufffd');
}
const XML_ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;', '\r': '&#13;', '\n': '&#10;' };

/** A YAML double-quoted scalar: JSON's escapes, plus those YAML needs for DEL and the C1 controls. */
function yaml(value: string): string {
  return JSON.stringify(value).replace(/[\x7f-\x9f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** text/plain: a value as it is when it is plain printable ASCII, else quoted as a JSON string. */
function plain(value: string): string {
  return /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/.test(value) && !value.startsWith('"') ? value : JSON.stringify(value);
}

// ---------------------------------------------------------------------------------------------
// One channel

function channelJson(c: ChannelStatistics): string {
  return `{"channel": ${JSON.stringify(c.channel)}, "published_messages": ${c.published_messages}, "stored_messages": ${c.stored_messages}, "subscribers": ${c.subscribers}}`;
}

function channelXml(c: ChannelStatistics, indent: string): string {
  return (
    `${indent}<channel>\r\n` +
    `${indent}  <name>${xml(c.channel)}</name>\r\n` +
    `${indent}  <published_messages>${c.published_messages}</published_messages>\r\n` +
    `${indent}  <stored_messages>${c.stored_messages}</stored_messages>\r\n` +
    `${indent}  <subscribers>${c.subscribers}</subscribers>\r\n` +
    `${indent}</channel>\r\n`
  );
}

/** `key: value` lines, the first after `first`, the rest after `rest`. */
function lines(pairs: Array<[string, string | number]>, first: string, rest: string): string {
  return pairs.map(([k, v], i) => `${i === 0 ? first : rest}${k}: ${v}\r\n`).join('');
}

function channelPairs(c: ChannelStatistics, quote: (s: string) => string): Array<[string, string | number]> {
  return [
    ['channel', quote(c.channel)],
    ['published_messages', c.published_messages],
    ['stored_messages', c.stored_messages],
    ['subscribers', c.subscribers],
  ];
}

/** The answer for one channel. */
export function formatChannel(c: ChannelStatistics, type: StatisticsType): string {
  switch (formatOf(type)) {
    case 'json':
      return `${channelJson(c)}\r\n`;
    case 'xml':
      return `<?xml version="1.0" encoding="UTF-8" ?>\r\n${channelXml(c, '')}`;
    case 'yaml':
      return `---\r\n${lines(channelPairs(c, yaml), '', '')}`;
    case 'text':
      return lines(channelPairs(c, plain), '', '');
  }
}

// ---------------------------------------------------------------------------------------------
// The detailed list, in three parts: head, each channel, tail.

/** `empty`: no channel follows (YAML and text then say `infos: []`). */
export function listingHead(head: ListingHead, type: StatisticsType, empty = false): string {
  const none = empty ? ' []' : '';
  switch (formatOf(type)) {
    case 'json':
      return `{"hostname": ${JSON.stringify(head.hostname)}, "time": "${head.time}", "infos": [\r\n`;
    case 'xml':
      return `<?xml version="1.0" encoding="UTF-8" ?>\r\n<root>\r\n  <hostname>${xml(head.hostname)}</hostname>\r\n  <time>${head.time}</time>\r\n  <infos>\r\n`;
    case 'yaml':
      return `---\r\nhostname: ${yaml(head.hostname)}\r\ntime: "${head.time}"\r\ninfos:${none}\r\n`;
    case 'text':
      return `hostname: ${plain(head.hostname)}\r\ntime: ${head.time}\r\ninfos:${none}\r\n`;
  }
}

/** One channel of the list; `first` for the first one (JSON separates the others with a comma). */
export function listingItem(c: ChannelStatistics, type: StatisticsType, first: boolean): string {
  switch (formatOf(type)) {
    case 'json':
      return `${first ? '' : ',\r\n'}${channelJson(c)}`;
    case 'xml':
      return channelXml(c, '    ');
    case 'yaml':
      return lines(channelPairs(c, yaml), '  - ', '    ');
    case 'text':
      return lines(channelPairs(c, plain), '  - ', '    ');
  }
}

export function listingTail(tail: ListingTail, type: StatisticsType): string {
  const pairs: Array<[string, number]> = [
    ['channels', tail.channels],
    ['wildcard_channels', tail.wildcard_channels],
    ['uptime', tail.uptime],
  ];
  switch (formatOf(type)) {
    case 'json':
      return `${tail.channels + tail.wildcard_channels > 0 ? '\r\n' : ''}], ${pairs.map(([k, v]) => `"${k}": ${v}`).join(', ')}}\r\n`;
    case 'xml':
      return `  </infos>\r\n${pairs.map(([k, v]) => `  <${k}>${v}</${k}>\r\n`).join('')}</root>\r\n`;
    case 'yaml':
    case 'text':
      return lines(pairs, '', '');
  }
}

// ---------------------------------------------------------------------------------------------
// The summary

/** JSON with a space after each `:` and `,`, as the module writes it (and the other answers here are). */
function spacedJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(spacedJson).join(', ')}]`;
  if (value !== null && typeof value === 'object') {
    // Left out, as JSON.stringify leaves them out (a store's summary may lack an optional field).
    const entries = Object.entries(value).filter(([, v]) => v !== undefined);
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}: ${spacedJson(v)}`).join(', ')}}`;
  }
  return JSON.stringify(value);
}

export function formatSummary(s: StatisticsSummary, type: StatisticsType): string {
  const format = formatOf(type);
  if (format === 'json') return `${spacedJson(s)}\r\n`;
  const quote = format === 'yaml' ? yaml : format === 'xml' ? xml : plain;
  const time = format === 'yaml' ? `"${s.time}"` : s.time;
  const pairs: Array<[string, string | number]> = [
    ['hostname', quote(s.hostname)],
    ['time', time],
    ['channels', s.channels],
    ['wildcard_channels', s.wildcard_channels],
    ['published_messages', s.published_messages],
    ['stored_messages', s.stored_messages],
    ['subscribers', s.subscribers],
    ['uptime', s.uptime],
  ];
  const workerPairs = (w: WorkerStatistics): Array<[string, string | number]> => [
    ['pid', w.pid],
    ['hostname', quote(w.hostname)],
    ['subscribers', w.subscribers],
    ['uptime', w.uptime],
  ];
  if (format === 'xml') {
    const tags = (list: Array<[string, string | number]>, indent: string) => list.map(([k, v]) => `${indent}<${k}>${v}</${k}>\r\n`).join('');
    const workers = s.by_worker.map((w) => `    <worker>\r\n${tags(workerPairs(w), '      ')}    </worker>\r\n`).join('');
    return `<?xml version="1.0" encoding="UTF-8" ?>\r\n<infos>\r\n${tags(pairs, '  ')}  <by_worker>\r\n${workers}  </by_worker>\r\n</infos>\r\n`;
  }
  const workers = s.by_worker.map((w) => lines(workerPairs(w), '  - ', '    ')).join('');
  return `${format === 'yaml' ? '---\r\n' : ''}${lines(pairs, '', '')}by_worker:${s.by_worker.length === 0 ? ' []' : ''}\r\n${workers}`;
}
