/**
 * What the statistics show, read from the store: the summary (relay.stats(), the endpoint without an
 * id), channel listings (relay.channels(), `ALL` and `prefix*`) and chosen channels. The store lists
 * page by page, so a relay of 100,000 channels is read without holding the event loop.
 */
import { hostname } from 'node:os';
import { idOfKey, isWildcardKey } from '../protocol/channel-id.js';
import { statisticsUnsupported } from '../protocol/answers.js';
import { statisticsTime, type ChannelStatistics, type StatisticsSummary } from '../protocol/statistics.js';
import type { ChannelStats, ChannelStore } from '../store/channel-store.js';

type StatisticsStore = ChannelStore & Required<Pick<ChannelStore, 'listChannels' | 'channelStats' | 'summary'>>;

/** What decides how a channel is counted: the wildcard prefix, and the events channel's store name. */
export interface StatisticsScope {
  readonly store: ChannelStore;
  readonly wildcardPrefix: string | undefined;
  readonly eventsKey: string | undefined;
}

/** The store, if it keeps statistics; 501 otherwise. */
export function statisticsStore(store: ChannelStore): StatisticsStore {
  if (!store.listChannels || !store.channelStats || !store.summary) throw statisticsUnsupported();
  return store as StatisticsStore;
}

/** The wildcard prefix a store counts apart (push_stream_wildcard_channel_prefix), if any. */
export function wildcardPrefixOf(store: ChannelStore): string | undefined {
  const prefix = (store as { wildcardChannelPrefix?: unknown }).wildcardChannelPrefix;
  return typeof prefix === 'string' && prefix !== '' ? prefix : undefined;
}

export function toStatistics(stats: ChannelStats): ChannelStatistics {
  return { channel: idOfKey(stats.channel), published_messages: stats.published, stored_messages: stats.messages, subscribers: stats.subscribers };
}

const seconds = (since: number, now: number) => Math.max(0, Math.floor((now - since) / 1000));

export async function summarize(scope: StatisticsScope): Promise<StatisticsSummary> {
  const store = statisticsStore(scope.store);
  const figures = await store.summary();
  let channels = 0;
  let wildcards = 0;
  let stored = 0;
  let subscribers = 0;
  for await (const page of store.listChannels('')) {
    for (const c of page) {
      if (isWildcardKey(c.channel, scope.wildcardPrefix)) wildcards++;
      else channels++;
      if (c.channel !== scope.eventsKey) stored += c.messages;
      subscribers += c.subscribers;
    }
  }
  const now = Date.now();
  return {
    hostname: hostname(),
    time: statisticsTime(now),
    channels,
    wildcard_channels: wildcards,
    published_messages: figures.published,
    stored_messages: stored,
    subscribers,
    uptime: seconds(figures.since, now),
    by_worker: figures.workers.map((w) => ({ pid: w.pid, hostname: w.hostname, subscribers: w.subscribers, uptime: seconds(w.since, now) })),
  };
}

/** The channels whose store name starts with `keyPrefix`, page by page. */
export async function* listPages(store: ChannelStore, keyPrefix: string): AsyncGenerator<ChannelStatistics[]> {
  for await (const page of statisticsStore(store).listChannels(keyPrefix)) yield page.map(toStatistics);
}

/** Each of the channels named by store name that exists, in the order asked. */
export async function chosenChannels(store: ChannelStore, keys: readonly string[]): Promise<ChannelStatistics[]> {
  const found = await statisticsStore(store).channelStats(keys);
  return found.filter((c): c is ChannelStats => c !== undefined).map(toStatistics);
}
