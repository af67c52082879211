/**
 * Mounts every profile of the shared conformance suite's profiles.json on an Express 5 app with the
 * public API, so the black-box suite tests the library as users use it.
 */
import express from 'express';
import { readFileSync } from 'node:fs';
import { createPushRelay, type ChannelStore, type PublisherOptions, type PushRelay, type SubscriberOptions } from '../../src/index.js';

type Settings = Record<string, unknown>;
interface Profiles {
  channelIdParam?: string;
  global?: { maxReservedMemory?: string };
  defaults?: Settings;
  profiles: Record<string, { publisher: string; subscriber: string; settings?: Settings; skip?: string }>;
}

const seconds = (v: unknown) => (v as number) * 1000;

/** Suite setting -> [side, our option, value conversion]. */
const MAPPING: Record<string, [side: 'P' | 'S' | 'both', option: string, convert?: (v: unknown) => unknown]> = {
  mechanism: ['S', 'mode'],
  concurrency: ['S', 'concurrency'],
  storeMessages: ['P', 'storeMessages'],
  maxMessages: ['P', 'maxMessageBufferLength'],
  minMessages: ['P', 'minMessageBufferLength'],
  messageBufferLength: ['P', 'messageBufferLength'],
  messageTimeout: ['P', 'messageTimeout', seconds],
  deleteOldestReceivedMessage: ['S', 'deleteOldestReceivedMessage'],
  subscriberTimeout: ['S', 'subscriberTimeout', seconds],
  channelTimeout: ['both', 'channelTimeout', seconds],
  authorizedChannelsOnly: ['S', 'authorizedChannelsOnly'],
  channelGroup: ['both', 'channelGroup'],
  maxChannelIdLength: ['both', 'maxChannelIdLength'],
  maxChannelSubscribers: ['S', 'maxChannelSubscribers'],
};

function optionsFor(settings: Settings, side: 'P' | 'S'): Settings {
  const out: Settings = {};
  for (const [key, value] of Object.entries(settings)) {
    const map = MAPPING[key];
    if (!map) throw new Error(`profiles.json: unknown setting "${key}"`);
    const [where, option, convert] = map;
    if (value === null || (where !== 'both' && where !== side)) continue;
    out[option] = convert ? convert(value) : value;
  }
  return out;
}

export function createProfileApp(profilesPath: string, store?: ChannelStore): { app: express.Express; relay: PushRelay } {
  const pf = JSON.parse(readFileSync(profilesPath, 'utf8')) as Profiles;
  const param = pf.channelIdParam ?? 'id';
  const { concurrency: _leftUnconfigured, ...defaults } = pf.defaults ?? {};
  const channelId = (req: express.Request) => (typeof req.query[param] === 'string' ? (req.query[param] as string) : undefined);
  const relay = createPushRelay({
    ...(store ? { store } : { maxReservedMemory: pf.global?.maxReservedMemory ?? '32mb' }),
    channelId: channelId as never,
  });
  const app = express();
  const mounted = new Set<string>();
  for (const profile of Object.values(pf.profiles)) {
    if (profile.skip) continue;
    // Profile defaults apply to every endpoint; "concurrency" stays unconfigured (the suite checks our default).
    const settings = { ...defaults, ...profile.settings };
    if (!mounted.has(profile.publisher)) {
      mounted.add(profile.publisher);
      app.all(profile.publisher, relay.publisher(optionsFor(settings, 'P') as PublisherOptions));
    }
    if (!mounted.has(profile.subscriber)) {
      mounted.add(profile.subscriber);
      app.all(profile.subscriber, relay.subscriber(optionsFor(settings, 'S') as SubscriberOptions));
    }
  }
  return { app, relay };
}
