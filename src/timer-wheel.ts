/**
 * Coarse timers for many deadlines: subscriber time-outs, message expiry, channel time-outs.
 *
 * Deadlines are rounded up to `resolution` ms and kept in one bucket per slot, so adding or
 * cancelling one is O(1) and 10k parked subscribers cost one interval timer, not 10k. The interval
 * runs (unref'd) while something is scheduled, and stops at the first tick that finds nothing: a
 * wheel that empties and fills again many times a second (a channel's only subscriber coming and
 * going) keeps one interval instead of creating and clearing one each time.
 *
 * Slots are counted from the wheel's creation, not from the epoch: they stay small integers, which
 * V8 keeps unboxed (an epoch slot number at 1-second resolution is a heap-allocated double).
 */
export interface WheelEntry {
  /** Slot the entry sits in; -1 when not scheduled. */
  slot: number;
}

export class TimerWheel<T extends WheelEntry> {
  readonly #resolution: number;
  readonly #fire: (entry: T) => void;
  readonly #now: () => number;
  /** Epoch ms of slot 0. */
  readonly #origin: number;
  readonly #slots = new Map<number, Set<T>>();
  #size = 0;
  #lastSlot: number;
  #interval: NodeJS.Timeout | undefined;

  constructor(resolution: number, fire: (entry: T) => void, now: () => number = Date.now) {
    this.#resolution = resolution;
    this.#fire = fire;
    this.#now = now;
    this.#origin = now();
    this.#lastSlot = 0;
  }

  get size(): number {
    return this.#size;
  }

  /** (Re)schedules `entry` to fire at `at` (epoch ms), never earlier. */
  schedule(entry: T, at: number): void {
    // lastSlot >= 0: a slot is at least 1 (-1 is "not scheduled").
    const slot = Math.max(Math.ceil((at - this.#origin) / this.#resolution), this.#lastSlot + 1);
    if (entry.slot === slot) return;
    if (entry.slot >= 0) this.cancel(entry);
    let bucket = this.#slots.get(slot);
    if (!bucket) this.#slots.set(slot, (bucket = new Set()));
    bucket.add(entry);
    entry.slot = slot;
    this.#size++;
    if (!this.#interval) {
      this.#lastSlot = this.#slotNow();
      this.#interval = setInterval(() => this.tick(), this.#resolution);
      this.#interval.unref();
    }
  }

  cancel(entry: T): void {
    if (entry.slot < 0) return;
    const bucket = this.#slots.get(entry.slot);
    if (bucket?.delete(entry)) {
      this.#size--;
      if (bucket.size === 0) this.#slots.delete(entry.slot);
    }
    entry.slot = -1;
  }

  /** Fires every entry whose slot has come. Called by the interval; public for tests with fake clocks. */
  tick(): void {
    const current = this.#slotNow();
    // Walk slot by slot unless the wheel is sparse compared with the gap (a stalled event loop).
    const gap = current - this.#lastSlot;
    const slots = gap <= this.#slots.size * 4 ? range(this.#lastSlot + 1, current) : [...this.#slots.keys()].filter((s) => s <= current).sort((a, b) => a - b);
    this.#lastSlot = Math.max(this.#lastSlot, current);
    for (const slot of slots) {
      const bucket = this.#slots.get(slot);
      if (!bucket) continue;
      this.#slots.delete(slot);
      for (const entry of bucket) {
        this.#size--;
        entry.slot = -1;
        try {
          this.#fire(entry);
        } catch (err) {
          // A failing callback must not stop the others; surface it without crashing the host.
          process.emitWarning(err instanceof Error ? err : new Error(String(err)), 'PushRelayTimerWarning');
        }
      }
    }
    if (this.#size === 0) this.#stop();
  }

  /** Cancels everything. */
  clear(): void {
    for (const bucket of this.#slots.values()) for (const entry of bucket) entry.slot = -1;
    this.#slots.clear();
    this.#size = 0;
    this.#stop();
  }

  /** The current slot; never below 0, also when the clock steps back past the wheel's creation. */
  #slotNow(): number {
    return Math.max(0, Math.floor((this.#now() - this.#origin) / this.#resolution));
  }

  #stop(): void {
    if (this.#interval) clearInterval(this.#interval);
    this.#interval = undefined;
  }
}

function range(from: number, to: number): number[] {
  const out: number[] = [];
  for (let i = from; i <= to; i++) out.push(i);
  return out;
}
