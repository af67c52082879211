/**
 * The statistics endpoint (the Push Stream Module's push_stream_channels_statistics): GET only. No id:
 * the summary; `ALL`, `*` or `prefix*`: the detailed list, written as the store reads it; one id: that
 * channel (404 if missing); several: those that exist (404 if none). Channels of the endpoint's own
 * channel group only.
 */
import { hostname } from 'node:os';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { allowCrossOrigin, answerPreflight, STATISTICS_CORS } from '../http/cors.js';
import { answerError, type Middleware } from '../http/respond.js';
import { log } from '../log.js';
import type { ResolvedStatistics } from '../options.js';
import { authorizeNotBoolean, channelIdTooLong, methodNotAllowed, noSuchChannel, notAuthorized, tooManyChannels } from '../protocol/answers.js';
import { channelKey, isWildcardKey, MAX_MULTIPLEXED } from '../protocol/channel-id.js';
import {
  formatChannel,
  formatSummary,
  listingHead,
  listingItem,
  listingTail,
  negotiateStatisticsType,
  statisticsTime,
  type ChannelStatistics,
  type StatisticsType,
} from '../protocol/statistics.js';
import { chosenChannels, listPages, statisticsStore, summarize, wildcardPrefixOf, type StatisticsScope } from '../statistics/collect.js';
import type { RelayContext } from './context.js';

const debug = log('statistics');

/** What a request asks for. */
type Selection = { kind: 'summary' } | { kind: 'prefix'; prefix: string } | { kind: 'ids'; ids: string[] };

export function statisticsMiddleware(relay: RelayContext, options: ResolvedStatistics): Middleware {
  return function pushRelayStatistics(req, res, next) {
    if (options.allowOrigin) {
      if (req.method === 'OPTIONS') return answerPreflight(req, res, options.allowOrigin, STATISTICS_CORS);
      allowCrossOrigin(req, res, options.allowOrigin, STATISTICS_CORS);
    }
    if (req.method !== 'GET') {
      answerError(methodNotAllowed('GET'), req, res, next);
      return;
    }
    serveStatistics(relay, options, req, res).catch((err: unknown) => {
      debug('GET %s failed: %s', req.url, err);
      if (res.headersSent) res.destroy();
      else answerError(err, req, res, next);
    });
  };
}

async function serveStatistics(relay: RelayContext, options: ResolvedStatistics, req: IncomingMessage, res: ServerResponse): Promise<void> {
  relay.assertOpen();
  statisticsStore(relay.store);
  const selection = await select(req, options);
  const type = negotiateStatisticsType(req.headers.accept);
  const scope = { store: relay.store, wildcardPrefix: wildcardPrefixOf(relay.store), eventsKey: relay.eventsChannel?.key };
  switch (selection.kind) {
    case 'summary':
      send(res, type, formatSummary(await summarize(scope), type));
      return;
    case 'prefix':
      await streamListing(res, type, listPages(relay.store, channelKey(options.channelGroup, selection.prefix)), scope, options.channelGroup);
      return;
    case 'ids': {
      const keys = selection.ids.map((id) => channelKey(options.channelGroup, id));
      const found = await chosenChannels(relay.store, keys);
      if (found.length === 0) throw noSuchChannel();
      if (selection.ids.length === 1) send(res, type, formatChannel(found[0]!, type));
      else await streamListing(res, type, (async function* () { yield found; })(), scope, options.channelGroup);
      return;
    }
  }
}

/** The resolver's answer read as the Push Stream Module reads `id`; then the authorize hook. */
async function select(req: IncomingMessage, options: ResolvedStatistics): Promise<Selection> {
  const raw: unknown = await options.channelId(req);
  let ids: string[];
  if (raw === undefined || raw === null || raw === '') ids = [];
  else if (typeof raw === 'string') ids = options.splitChannelIds ? raw.split(options.splitChannelIds).filter((id) => id !== '') : [raw];
  else if (Array.isArray(raw) && raw.every((id) => typeof id === 'string')) ids = (raw as string[]).filter((id) => id !== '');
  else throw new TypeError(`push-relay: the statistics channelId resolver must return a string, an array of strings or undefined (got ${typeof raw})`);
  if (ids.length > MAX_MULTIPLEXED) throw tooManyChannels(ids.length, MAX_MULTIPLEXED);

  let selection: Selection;
  // As the Push Stream Module does: the first id that is ALL or holds a `*` names the listing.
  const wildcard = ids.find((id) => id === 'ALL' || id.includes('*'));
  if (ids.length === 0) selection = { kind: 'summary' };
  else if (wildcard !== undefined) selection = { kind: 'prefix', prefix: wildcard === 'ALL' ? '' : wildcard.slice(0, wildcard.indexOf('*')) };
  else selection = { kind: 'ids', ids: [...new Set(ids)] };
  const named = selection.kind === 'ids' ? selection.ids : selection.kind === 'prefix' ? [selection.prefix] : [];
  for (const id of named) if (id.length > options.maxChannelIdLength && [...id].length > options.maxChannelIdLength) throw channelIdTooLong(options.maxChannelIdLength);

  if (options.authorize) {
    // The summary is asked about as '', a listing as its pattern ('*' or 'prefix*'), each id as itself.
    const asked = selection.kind === 'summary' ? [''] : selection.kind === 'prefix' ? [`${selection.prefix}*`] : selection.ids;
    for (const channelId of asked) {
      const verdict: unknown = await options.authorize(req, { channelId, role: 'statistics' });
      if (verdict !== true) throw typeof verdict === 'boolean' || verdict === undefined ? notAuthorized(channelId || undefined) : authorizeNotBoolean(verdict);
    }
  }
  return selection;
}

function headers(type: StatisticsType): Record<string, string> {
  return {
    'Content-Type': `${type}; charset=utf-8`,
    'Cache-Control': 'no-cache, no-store, must-revalidate',
    Vary: 'Accept',
  };
}

function send(res: ServerResponse, type: StatisticsType, body: string): void {
  res.writeHead(200, { ...headers(type), 'Content-Length': String(Buffer.byteLength(body)) });
  res.end(body);
}

/**
 * Writes the detailed list as the pages come, waiting for the client to read each before asking the
 * store for more; a client that leaves stops the listing.
 */
async function streamListing(
  res: ServerResponse,
  type: StatisticsType,
  pages: AsyncIterable<ChannelStatistics[]>,
  scope: StatisticsScope,
  group: string | undefined,
): Promise<void> {
  const { since } = await statisticsStore(scope.store).summary();
  const wildcardPrefix = scope.wildcardPrefix;
  const start = Date.now();
  const head = { hostname: hostname(), time: statisticsTime(start) };
  let channels = 0;
  let wildcards = 0;
  let started = false;
  for await (const page of pages) {
    if (res.destroyed) return;
    let chunk = '';
    if (!started) {
      res.writeHead(200, headers(type));
      chunk = listingHead(head, type);
      started = true;
    }
    for (const c of page) {
      chunk += listingItem(c, type, channels + wildcards === 0);
      if (isWildcardKey(channelKey(group, c.channel), wildcardPrefix)) wildcards++;
      else channels++;
    }
    if (!res.write(chunk) && !(await drained(res))) return;
  }
  const tail = listingTail({ channels, wildcard_channels: wildcards, uptime: Math.max(0, Math.floor((Date.now() - since) / 1000)) }, type);
  if (!started) {
    send(res, type, listingHead(head, type, true) + tail);
    return;
  }
  res.end(tail);
}

/** Resolves true once `res` can take more, false if the client left first. */
function drained(res: ServerResponse): Promise<boolean> {
  return new Promise((resolve) => {
    const done = (ok: boolean) => () => {
      res.off('drain', onDrain);
      res.off('close', onClose);
      resolve(ok && !res.destroyed);
    };
    const onDrain = done(true);
    const onClose = done(false);
    res.on('drain', onDrain);
    res.on('close', onClose);
  });
}
