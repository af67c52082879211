/**
 * From a request to its channels: run the app's resolver, check the ids, run the authorize hook
 * (403). A resolver may name up to 255 channels (a multiplexed subscriber, a publish to several).
 */
import type { IncomingMessage } from 'node:http';
import { authorizeNotBoolean, notAuthorized } from '../protocol/answers.js';
import { checkChannelId, checkChannelList, type ResolvedChannel } from '../protocol/channel-id.js';
import type { ResolvedCommon, Role } from '../options.js';

/** Only `true` lets a request through. */
function refuseUnless(verdict: unknown, channelId?: string): void {
  if (verdict === true) return;
  throw typeof verdict === 'boolean' || verdict === undefined ? notAuthorized(channelId) : authorizeNotBoolean(verdict);
}

/** The channels of a request, in the resolver's order: one, or several. */
export async function resolveChannels(req: IncomingMessage, options: ResolvedCommon, role: Role): Promise<ResolvedChannel[]> {
  const id: unknown = await options.channelId(req);
  if (!Array.isArray(id) || id.length === 1) {
    // One channel: no list to build or Promise.all to wait for (this runs on every request).
    const channel = checkChannelId(Array.isArray(id) ? id[0] : id, options);
    if (options.authorize) refuseUnless(await options.authorize(req, { channelId: channel.id, role }));
    return [channel];
  }
  const channels = checkChannelList(id, options);
  if (options.authorize) {
    const hook = options.authorize;
    const verdicts = await Promise.all(channels.map((c) => hook(req, { channelId: c.id, role })));
    const refused = verdicts.findIndex((ok) => ok !== true);
    if (refused >= 0) refuseUnless(verdicts[refused], channels[refused]!.id);
  }
  return channels;
}
