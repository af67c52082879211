/**
 * Keep-alive pings for open streams and WebSockets: one timer per ping interval for every stream
 * of the process, not one per stream.
 */
/** Anything with a keep-alive: the HTTP streams (http-stream.ts), WebSocket subscribers (websocket.ts). */
export interface Pingable {
  ping(): void;
}

/** Pings `s` every `interval` ms, from the one timer every subscriber with that interval shares. */
export function startPings(s: Pingable, interval: number): void {
  if (interval > 0) pingerFor(interval).add(s);
}

export function stopPings(s: Pingable, interval: number): void {
  pingers.get(interval)?.delete(s);
}

/** Ping timers running now (one per distinct interval in use). */
export function pingTimers(): number {
  return pingers.size;
}

/** One timer per ping interval for every open stream, not one per stream. */
class Pinger {
  readonly #streams = new Set<Pingable>();
  #timer: NodeJS.Timeout | undefined;

  constructor(readonly interval: number) {}

  add(stream: Pingable): void {
    this.#streams.add(stream);
    if (this.#timer) return;
    this.#timer = setInterval(() => {
      for (const s of this.#streams) s.ping();
    }, this.interval);
    this.#timer.unref();
  }

  delete(stream: Pingable): void {
    if (!this.#streams.delete(stream) || this.#streams.size > 0) return;
    clearInterval(this.#timer);
    this.#timer = undefined;
    pingers.delete(this.interval);
  }
}

const pingers = new Map<number, Pinger>();

function pingerFor(interval: number): Pinger {
  let pinger = pingers.get(interval);
  if (!pinger) pingers.set(interval, (pinger = new Pinger(interval)));
  return pinger;
}
