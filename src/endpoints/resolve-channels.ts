/**
 * From a request to its channels: run the app's resolver, check the ids, run the authorize hook
 * (403). A resolver may name up to 255 channels (a multiplexed subscriber, a publish to several).
 */
import type { IncomingMessage } from 'node:http';
import { authorizeNotBoolean, notAuthorized } from '../protocol/answers.js';
import { checkChannelId, checkChannelList, type ResolvedChannel } from '../protocol/channel-id.js';
import type { ResolvedCommon, Role } from '../options.js';
import { isPromiseLike, type MaybePromise } from '../maybe-async.js';

/** Only `true` lets a request through. */
function refuseUnless(verdict: unknown, channelId?: string): void {
  if (verdict === true) return;
  throw typeof verdict === 'boolean' || verdict === undefined ? notAuthorized(channelId) : authorizeNotBoolean(verdict);
}

/**
 * The channels of a request, in the resolver's order: one, or several. At once (no Promise) when the
 * resolver and the authorize hook answer at once; a hook that throws throws here.
 */
export function resolveChannels(req: IncomingMessage, options: ResolvedCommon, role: Role): MaybePromise<ResolvedChannel[]> {
  const id: unknown = options.channelId(req);
  if (isPromiseLike(id)) return Promise.resolve(id).then((resolved) => checkAndAuthorize(req, options, role, resolved));
  return checkAndAuthorize(req, options, role, id);
}

function checkAndAuthorize(req: IncomingMessage, options: ResolvedCommon, role: Role, id: unknown): MaybePromise<ResolvedChannel[]> {
  if (!Array.isArray(id) || id.length === 1) {
    // One channel: no list of verdicts to build and wait for (this runs on every request).
    const channel = checkChannelId(Array.isArray(id) ? id[0] : id, options);
    if (!options.authorize) return [channel];
    const verdict: unknown = options.authorize(req, { channelId: channel.id, role });
    if (isPromiseLike(verdict)) {
      return Promise.resolve(verdict).then((v) => {
        refuseUnless(v);
        return [channel];
      });
    }
    refuseUnless(verdict);
    return [channel];
  }
  const channels = checkChannelList(id, options);
  if (!options.authorize) return channels;
  const hook = options.authorize;
  return Promise.all(channels.map((c) => hook(req, { channelId: c.id, role }))).then((verdicts) => {
    const refused = verdicts.findIndex((ok) => ok !== true);
    if (refused >= 0) refuseUnless(verdicts[refused], channels[refused]!.id);
    return channels;
  });
}
