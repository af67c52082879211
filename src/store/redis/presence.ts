/**
 * Which waiting subscribers this process holds, and the heartbeat that keeps them counted. A process
 * holds a lease per channel (`leases` hash, Redis time); the Lua scripts count out the subscribers of
 * any process whose lease has passed, so a crashed process stops counting within one lease, with no
 * INCR/DECR to drift. Per channel rather than one global key per process so that every key a script
 * reads is one of the channel's own (one Redis Cluster slot).
 */
import { log } from '../../log.js';
import { compareIds, type MessageId } from '../../protocol/message-id.js';

const debug = log('redis');

interface Held {
  readonly ids: Set<string>;
  /** The newest message id this process has seen on the channel (see the refresh script). */
  floor: MessageId | undefined;
  /** Whether the joins could create the channel, and its channelTimeout then (to recreate it after Redis lost it). */
  create: boolean;
  channelTimeout: number;
}

/**
 * How a refresh runs: a heartbeat, or a recovery after a reconnect (which may recreate the channel);
 * `floorOnly`: only move the channel's last id up to `floor` (a channel this process holds nobody on).
 */
export type Recovery = Pick<Held, 'create' | 'channelTimeout' | 'floor'> & { floorOnly?: boolean };

/**
 * How many channels this process remembers the newest id of without holding subscribers on them
 * (those it published to or read last): after a failover to a replica that had not got their newest
 * messages, it moves their last ids up again, so that a subscriber that had not got those messages
 * is told it missed them (the loss signal) instead of skipping them silently. About 100 bytes each.
 */
const RECENT_CHANNELS = 10_000;
/** Runs the refresh script for `channel`: -1 gone, 1 new lease, 0 renewed. */
export type RefreshCall = (channel: string, recovery: Recovery | undefined, ids: readonly string[]) => Promise<number>;
/** Runs the leave script for `channel`. */
export type LeaveCall = (channel: string, ids: readonly string[]) => Promise<void>;

export class Presence {
  readonly #held = new Map<string, Held>();
  /** Newest id seen on channels held by nobody here, oldest first (see RECENT_CHANNELS). */
  readonly #recent = new Map<string, MessageId>();
  /** Leaves Redis did not take (it was down): retried on each heartbeat so counts do not drift. */
  readonly #leaving = new Map<string, Set<string>>();
  /** Channels whose subscribers a failed batch did not count in: counted in again by the next heartbeat. */
  readonly #recount = new Set<string>();
  readonly #refresh: RefreshCall;
  readonly #leave: LeaveCall;
  #timer: NodeJS.Timeout | undefined;
  #beating: Promise<void> | undefined;

  constructor(refresh: RefreshCall, leave: LeaveCall) {
    this.#refresh = refresh;
    this.#leave = leave;
  }

  start(interval: number): void {
    this.#timer = setInterval(() => void this.beat(), interval);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Waiting subscribers this process holds, on every channel. */
  get count(): number {
    let n = 0;
    for (const held of this.#held.values()) n += held.ids.size;
    return n;
  }

  /** Channels this process holds subscribers on. */
  get channels(): string[] {
    return [...this.#held.keys()];
  }

  /** Whether this process holds subscriber `id` on `channel` (counted in Redis for it). */
  holds(channel: string, id: string): boolean {
    return this.#held.get(channel)?.ids.has(id) ?? false;
  }

  /** The channel was deleted: Redis counts none of its subscribers any more. */
  forget(channel: string): void {
    const held = this.#held.get(channel);
    if (!held) return;
    this.#held.delete(channel);
    this.#leaving.delete(channel);
    this.#recount.delete(channel);
    if (held.floor) this.#remember(channel, held.floor);
  }

  /** The subscribers this process holds on `channel`. */
  idsOf(channel: string): string[] {
    return [...(this.#held.get(channel)?.ids ?? [])];
  }

  joined(channel: string, id: string, create: boolean, channelTimeout: number): void {
    let held = this.#held.get(channel);
    if (!held) {
      this.#held.set(channel, (held = { ids: new Set(), floor: this.#recent.get(channel), create, channelTimeout }));
      this.#recent.delete(channel);
    }
    held.create ||= create;
    held.channelTimeout = channelTimeout;
    held.ids.add(id);
  }

  /** Notes a message id seen on `channel` (read, published or woken up with). */
  saw(channel: string, id: MessageId | undefined): void {
    if (!id) return;
    const held = this.#held.get(channel);
    if (held) {
      if (!held.floor || compareIds(id, held.floor) > 0) held.floor = id;
      return;
    }
    this.#remember(channel, id);
  }

  left(channel: string, ids: readonly string[]): void {
    const held = this.#held.get(channel);
    if (!held) return;
    for (const id of ids) held.ids.delete(id);
    if (held.ids.size > 0) return;
    this.#held.delete(channel);
    if (held.floor) this.#remember(channel, held.floor);
  }

  /** The newest id seen on a channel nobody here waits on, kept among the most recent ones. */
  #remember(channel: string, id: MessageId): void {
    const known = this.#recent.get(channel);
    if (known && compareIds(id, known) <= 0) return;
    this.#recent.delete(channel);
    this.#recent.set(channel, id);
    if (this.#recent.size > RECENT_CHANNELS) this.#recent.delete(this.#recent.keys().next().value!);
  }

  /** The leaves Redis did not take yet, forgotten here (the store sends them on close). */
  takeFailedLeaves(): Array<[string, string[]]> {
    const failed = [...this.#leaving].map(([channel, ids]): [string, string[]] => [channel, [...ids]]);
    this.#leaving.clear();
    return failed;
  }

  /** Subscribers counted in here did not reach Redis: the next heartbeat counts the channel's in again. */
  joinFailed(channel: string): void {
    this.#recount.add(channel);
  }

  leaveFailed(channel: string, ids: readonly string[]): void {
    let set = this.#leaving.get(channel);
    if (!set) this.#leaving.set(channel, (set = new Set()));
    for (const id of ids) set.add(id);
  }

  /**
   * Renews this process's leases on every channel it holds (and retries failed leaves). After a
   * reconnect (`recover`), also counts its subscribers in again and recreates channels Redis lost.
   */
  beat(recover = false): Promise<void> {
    if (this.#beating && !recover) return this.#beating;
    const current: Promise<void> = (this.#beating ?? Promise.resolve()).then(() => this.#beat(recover)).finally(() => {
      if (this.#beating === current) this.#beating = undefined;
    });
    this.#beating = current;
    return current;
  }

  async #beat(recover: boolean): Promise<void> {
    for (const [channel, ids] of [...this.#leaving]) {
      this.#leaving.delete(channel);
      try {
        await this.#leave(channel, [...ids]);
      } catch (err) {
        debug('leave retry on %s failed: %s', channel, err);
        this.leaveFailed(channel, [...ids]);
      }
    }
    const floors = recover
      ? [...this.#recent].map(async ([channel, floor]) => {
          try {
            await this.#refresh(channel, { create: false, channelTimeout: 0, floor, floorOnly: true }, []);
          } catch (err) {
            debug('moving the last id of %s up after a reconnect failed: %s', channel, err);
          }
        })
      : [];
    await Promise.all(
      [...floors, ...[...this.#held].map(async ([channel, held]) => {
        try {
          const ids = [...held.ids];
          if (recover) {
            await this.#refresh(channel, held, ids);
          } else if (this.#recount.delete(channel)) {
            await this.#refresh(channel, undefined, ids);
          } else if ((await this.#refresh(channel, undefined, [])) === 1 && ids.length > 0) {
            // Our lease had lapsed (or Redis lost it) and the scripts counted our subscribers out.
            await this.#refresh(channel, undefined, ids);
          }
        } catch (err) {
          debug('heartbeat on %s failed: %s', channel, err);
        }
      })],
    );
  }
}
