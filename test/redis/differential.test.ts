/**
 * RedisStore against the reference, MemoryStore: the same random sequence of operations (publish with
 * varying buffer rules, reads from random cursors, startCursor, received, joins with every concurrency
 * mode, leaves, create, delete) must give the same answers from both. Ids differ between the stores
 * (different clocks), so answers are compared by which publish an id belongs to. No message timeouts:
 * the answers must not depend on timing. What does depend on the second (ids, and for how long a
 * removed channel's last id is followed) is kept apart: no step runs across a second's end.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it, test } from 'node:test';
import { MemoryStore, type BufferRules, type ChannelInfo, type ChannelStore, type MessageId } from '../../src/index.js';
import { RedisStore } from '../../src/redis.js';
import { deleteKeys, REDIS_URL, redisSkipReason, testPrefix } from './redis-env.js';

const skip = await redisSkipReason();

/** mulberry32: a small seeded PRNG, so that a failure can be replayed. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Side {
  store: ChannelStore;
  /** Ids this store gave, by publish number. */
  ids: MessageId[];
  /** The channel of each id in `ids` (ids are per channel: two channels may give the same one). */
  channels: string[];
}

const CHANNELS = ['/d1', '/d2', 'g/d3'];

/**
 * Resolves at once, or just after the second's end when it is near: the two stores run a step a few
 * milliseconds apart, and one must not give an id of the next second when the other gave one of this.
 */
async function clearOfSecondsEnd(margin = 30): Promise<void> {
  const left = 1000 - (Date.now() % 1000);
  if (left <= margin) await new Promise((resolve) => setTimeout(resolve, left + 1));
}

if (skip) test('RedisStore answers like MemoryStore', { skip }, () => {});
else
  describe('RedisStore answers like MemoryStore', () => {
    const prefix = testPrefix('differential');
    let redis: RedisStore;

    before(async () => {
      redis = new RedisStore({ url: REDIS_URL, prefix });
      await redis.ready();
    });
    after(async () => {
      await redis.close();
      await deleteKeys(prefix);
    });

    for (const seed of (process.env.SEEDS ? Array.from({ length: Number(process.env.SEEDS) }, (_, i) => i + 1) : [1, 2, 3, 4])) {
      it(`random operation sequence, seed ${seed}`, async () => {
        const rand = random(seed);
        const pick = <T>(items: readonly T[]): T => items[Math.floor(rand() * items.length)]!;
        const int = (n: number) => Math.floor(rand() * n);
        const memory: Side = { store: new MemoryStore(), ids: [], channels: [] };
        const shared: Side = { store: redis, ids: [], channels: [] };
        const sides = [memory, shared];
        // Channel names unique to this seed on the shared Redis.
        const name = (c: string) => `${c}-${seed}`;
        const joined = new Map<string, Set<string>>();

        const indexOf = (side: Side, channel: string, id: MessageId | undefined) =>
          id === undefined ? 'none' : side.ids.findIndex((x, i) => side.channels[i] === channel && x.time === id.time && x.tag === id.tag);
        const infoOf = (side: Side, channel: string, info: ChannelInfo | undefined) =>
          info && { messages: info.messages, subscribers: info.subscribers, last: indexOf(side, channel, info.lastMessageId), requested: info.requested >= 0 };
        const cursor = (side: Side, k: number | undefined) => (k === undefined ? undefined : side.ids[k]);

        for (let step = 0; step < 150; step++) {
          const channel = name(pick(CHANNELS));
          const rules: BufferRules = {
            storeMessages: rand() < 0.85,
            minMessages: int(3),
            maxMessages: 1 + int(4),
            messageTimeout: 0,
            channelTimeout: pick([0, 3_600_000]),
          };
          const published = memory.ids.length;
          // A cursor from this channel's own ids: ids of different channels (and of the two stores) need not line up.
          const own = memory.channels.flatMap((c, i) => (c === channel ? [i] : []));
          const k = own.length > 0 && rand() < 0.8 ? own[int(own.length)] : undefined;
          const op = pick(['publish', 'publish', 'publish', 'next', 'next', 'start', 'received', 'info', 'join', 'join', 'leave', 'create', 'delete']);
          // Every random choice is made once, before either store runs the step.
          const newest = int(4);
          const waiting = joined.get(channel) ?? new Set<string>();
          joined.set(channel, waiting);
          const join = {
            subscriberId: `s${step}`,
            concurrency: pick(['broadcast', 'broadcast', 'last', 'first'] as const),
            maxSubscribers: int(3),
            create: rand() < 0.8,
            channelTimeout: rules.channelTimeout,
          };
          const leaving = [...waiting].filter(() => rand() < 0.5);
          const answers: unknown[] = [];
          await clearOfSecondsEnd();
          for (const side of sides) {
            const s = side.store;
            switch (op) {
              case 'publish': {
                const existed = (await s.info(channel)) !== undefined;
                const { message, info } = await s.publish(channel, { data: Buffer.from(`m${published}`), contentType: undefined }, rules);
                side.ids.push(message.id);
                side.channels.push(channel);
                // A history's first message names the instant before it (not a published id): read as 'none'. So does the
                // first message of a channel created by this publish: whether it follows the ids of a channel of that name
                // removed at a second's end depends on each store's clock (the two stores run the step a moment apart).
                const previous = indexOf(side, channel, message.previousId);
                answers.push({ previous: previous === -1 || !existed ? 'none' : previous, info: infoOf(side, channel, info) });
                break;
              }
              case 'next': {
                const r = await s.next(channel, cursor(side, k));
                answers.push({ exists: r.exists, message: r.message?.data.toString() });
                break;
              }
              case 'start':
                answers.push(indexOf(side, channel, await s.startCursor(channel, newest)));
                break;
              case 'received':
                if (k !== undefined) await s.received(channel, side.ids[k]!);
                answers.push(infoOf(side, channel, await s.info(channel)));
                break;
              case 'info':
                answers.push(infoOf(side, channel, await s.info(channel)));
                break;
              case 'create':
                answers.push(infoOf(side, channel, await s.create(channel, rules)));
                break;
              case 'delete':
                answers.push(infoOf(side, channel, await s.delete(channel)));
                break;
              case 'join': {
                const r = await s.join(channel, join);
                // As the relay does on the conflict event: the older subscribers get 409 and leave.
                if (r.ok && join.concurrency === 'last') await s.leave(channel, [...waiting]);
                // `newest` is a hint that only a store whose join takes a round trip gives (JoinResult).
                answers.push({ join: r.ok ? { ok: true } : r, info: infoOf(side, channel, await s.info(channel)) });
                break;
              }
              case 'leave':
                await s.leave(channel, leaving);
                answers.push(infoOf(side, channel, await s.info(channel)));
                break;
            }
          }
          assert.deepEqual(answers[1], answers[0], `seed ${seed}, step ${step}: ${op} on ${channel} (rules ${JSON.stringify(rules)}, k ${k})`);
          // The model of who waits, as the relay would see it.
          const answer = answers[0] as { join?: { ok: boolean } } | undefined;
          if (op === 'join' && answer?.join?.ok) {
            if (join.concurrency === 'last') waiting.clear();
            waiting.add(join.subscriberId);
          }
          if (op === 'leave') for (const id of leaving) waiting.delete(id);
          if (op === 'delete') waiting.clear();
        }
        await memory.store.close();
      });
    }
  });
