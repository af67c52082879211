/**
 * From a request to a channel: run the resolver, check the id (400 when missing or too long), run the
 * authorize hook (403), and name the channel in the store (with its channel group).
 */
import type { IncomingMessage } from 'node:http';
import { protocolError } from './http/protocol-error.js';
import type { ResolvedCommon, Role } from './options.js';

export interface ResolvedChannel {
  /** The id as the app named it. */
  id: string;
  /** The store's name for it: `group/id`, or `/id` without a group (so no id can reach into a group). */
  key: string;
}

export async function resolveChannel(req: IncomingMessage, options: ResolvedCommon, role: Role): Promise<ResolvedChannel> {
  let id: unknown = await options.channelId(req);
  if (Array.isArray(id)) {
    if (id.length !== 1) {
      throw protocolError(400, `push-relay: a ${role} endpoint takes one channel id (the channelId resolver returned ${id.length})`, 'channel.id.multiple');
    }
    id = id[0];
  }
  const channel = checkChannelId(id, options);
  if (options.authorize && (await options.authorize(req, { channelId: id as string, role })) !== true) {
    throw protocolError(403, `push-relay: not authorized for this channel`, 'channel.forbidden');
  }
  return channel;
}

/** The most channels one subscriber may multiplex (Nchan's limit). */
export const MAX_MULTIPLEXED = 255;

/**
 * As resolveChannel, but a resolver may return several ids (multiplexing, subscribers only): an
 * array of 2+ ids resolves to an array, each id checked and authorized; a one-id array is that id.
 */
export async function resolveChannels(req: IncomingMessage, options: ResolvedCommon, role: Role): Promise<ResolvedChannel | ResolvedChannel[]> {
  let id: unknown = await options.channelId(req);
  if (Array.isArray(id)) {
    if (id.length !== 1) return resolveMany(req, options, role, id);
    id = id[0];
  }
  // The single-channel path, as in resolveChannel (no extra await: this runs on every request).
  const channel = checkChannelId(id, options);
  if (options.authorize && (await options.authorize(req, { channelId: id as string, role })) !== true) {
    throw protocolError(403, `push-relay: not authorized for this channel`, 'channel.forbidden');
  }
  return channel;
}

async function resolveMany(req: IncomingMessage, options: ResolvedCommon, role: Role, ids: unknown[]): Promise<ResolvedChannel[]> {
  if (ids.length === 0) throw protocolError(400, 'push-relay: the channelId resolver returned no channel id (an empty array)', 'channel.id.missing');
  if (ids.length > MAX_MULTIPLEXED) {
    throw protocolError(400, `push-relay: too many channel ids (${ids.length}); a subscriber multiplexes at most ${MAX_MULTIPLEXED}`, 'channel.id.too.many');
  }
  const seen = new Set<string>();
  for (const [i, id] of ids.entries()) {
    if (typeof id !== 'string' || id === '') {
      throw protocolError(400, `push-relay: channel id #${i + 1} of ${ids.length} is ${id === '' ? 'empty' : `not a string (${typeof id})`}`, 'channel.id.invalid');
    }
    if (seen.has(id)) throw protocolError(400, `push-relay: channel id #${i + 1} repeats an earlier one (${JSON.stringify(id)})`, 'channel.id.duplicate');
    seen.add(id);
  }
  const channels = ids.map((id) => checkChannelId(id, options));
  if (options.authorize) {
    const hook = options.authorize;
    const verdicts = await Promise.all(channels.map((c) => hook(req, { channelId: c.id, role })));
    const refused = verdicts.findIndex((ok) => ok !== true);
    if (refused >= 0) throw protocolError(403, `push-relay: not authorized for channel ${JSON.stringify(channels[refused]!.id)}`, 'channel.forbidden');
  }
  return channels;
}

/** Validates an id from a resolver or an in-process call. */
export function checkChannelId(id: unknown, options: Pick<ResolvedCommon, 'channelGroup' | 'maxChannelIdLength'>): ResolvedChannel {
  if (id === undefined || id === null || id === '') {
    throw protocolError(400, 'push-relay: no channel id in the request', 'channel.id.missing');
  }
  if (typeof id !== 'string') {
    throw new TypeError(`push-relay: the channelId resolver must return a string or undefined (got ${typeof id})`);
  }
  // Characters, not UTF-16 units; the length check is enough for the common all-ASCII id.
  if (id.length > options.maxChannelIdLength && [...id].length > options.maxChannelIdLength) {
    throw protocolError(
      400,
      `push-relay: channel id is longer than maxChannelIdLength (${options.maxChannelIdLength} characters)`,
      'channel.id.too.long',
    );
  }
  return { id, key: channelKey(options.channelGroup, id) };
}

export function channelKey(group: string | undefined, id: string): string {
  return `${group ?? ''}/${id}`;
}
