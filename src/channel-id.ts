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
  const id = await options.channelId(req);
  const channel = checkChannelId(id, options);
  if (options.authorize && (await options.authorize(req, { channelId: id as string, role })) !== true) {
    throw protocolError(403, `push-relay: not authorized for this channel`, 'channel.forbidden');
  }
  return channel;
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
