/**
 * Delivery checks and latency samples. Every message body is the message's sequence number in its
 * channel; each subscriber must see 0, 1, 2, ... exactly once and in order.
 */

/** Bodies are fixed-width so that a publish request's bytes only differ in the body. */
export const BODY_DIGITS = 12;
export const messageBody = (seq: number) => String(seq).padStart(BODY_DIGITS, '0');

export function parseSeq(body: Buffer | string): number {
  const text = typeof body === 'string' ? body : body.toString("latin1", 0, body.length);
  const n = Number(text);
  return Number.isInteger(n) ? n : -1;
}

export class DeliveryCheck {
  lost = 0;
  duplicated = 0;
  reordered = 0;
  /** Bodies that were not a sequence number at all. */
  garbled = 0;

  /** Checks `seq` against the subscriber's last one; returns what the subscriber's last one is now. */
  check(last: number, seq: number): number {
    if (seq < 0) {
      this.garbled++;
      return last;
    }
    if (seq === last + 1) return seq;
    if (seq === last) {
      this.duplicated++;
      return last;
    }
    if (seq < last) {
      this.reordered++;
      return last;
    }
    this.lost += seq - last - 1;
    return seq;
  }

  get errors(): number {
    return this.lost + this.duplicated + this.reordered + this.garbled;
  }
}

/** Latency samples in ms, kept whole so percentiles are exact. */
export class Latencies {
  #samples = new Float64Array(1 << 16);
  #count = 0;

  add(ms: number): void {
    if (this.#count === this.#samples.length) {
      const grown = new Float64Array(this.#samples.length * 2);
      grown.set(this.#samples);
      this.#samples = grown;
    }
    this.#samples[this.#count++] = ms;
  }

  get count(): number {
    return this.#count;
  }

  summary(): { count: number; p50: number; p90: number; p99: number; max: number } | undefined {
    if (this.#count === 0) return undefined;
    const sorted = this.#samples.slice(0, this.#count).sort();
    const at = (q: number) => round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!);
    return { count: this.#count, p50: at(0.5), p90: at(0.9), p99: at(0.99), max: round(sorted[sorted.length - 1]!) };
  }
}

const round = (ms: number) => Math.round(ms * 100) / 100;
