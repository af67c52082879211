/**
 * What clients that do not read cost the process. A write the client has not taken yet holds its
 * bytes and, while it waits in the stream's queue, a write request of its own on the heap: for the
 * small messages of a busy channel, the request costs more than the bytes. So a stream's backlog is
 * counted as unwritten bytes plus a fixed cost per queued write, capped per stream
 * (`maxStreamBacklog`) and across the relay (`maxTotalBacklog`): past either, the slowest streams are
 * cut. A cut client reconnects and resumes from the last id it has.
 *
 * The fast path costs one property read per write: a stream is tracked only once a write found its
 * socket behind (bytes left in the queue).
 */

/**
 * Heap held by one queued write beyond its bytes, measured on Node 20 (10 paused streams, 50,000
 * tiny messages each): an HTTP stream's write request and queue entry ~67 B; a WebSocket send, with
 * the frame header `ws` builds for it, ~221 B. Rounded down a little, since the frame bytes are
 * counted apart.
 */
export const QUEUED_WRITE_COST = { http: 64, websocket: 192 } as const;

/** One stream's account: what it holds now, as of its last write. */
export interface BacklogEntry {
  /** Unwritten bytes plus its cost per queued write (QUEUED_WRITE_COST). */
  cost: number;
  /** What one queued write costs besides its bytes. */
  readonly perWrite: number;
  /** Writes queued since the socket fell behind and not yet taken. */
  queued: number;
  /** Most it may hold before it is cut (maxStreamBacklog). */
  readonly limit: number;
  /** Cuts the stream (it frees what it holds). */
  cut(): void;
  /** Its unwritten bytes now. */
  unwritten(): number;
}

/** Every stream of one relay that is behind, and what they hold together. */
export class Backlog {
  readonly #streams = new Set<BacklogEntry>();
  #total = 0;

  constructor(
    /** Most every stream of the relay may hold together (maxTotalBacklog). */
    readonly total: number,
  ) {}

  /** What the tracked streams held at their last writes (an upper bound: they only drain since). */
  get held(): number {
    return this.#total;
  }

  /** Streams behind now. */
  get behind(): number {
    return this.#streams.size;
  }

  /** `entry` wrote while behind (or fell behind): recount it; cut it, or the slowest, past a cap. Returns false when `entry` was cut. */
  wrote(entry: BacklogEntry): boolean {
    this.#recount(entry);
    if (entry.cost > entry.limit) {
      this.#cut(entry);
      return false;
    }
    if (this.#total > this.total) this.#shed();
    return this.#streams.has(entry);
  }

  /** `entry`'s socket took everything (drain), or the stream ended. */
  settled(entry: BacklogEntry): void {
    if (!this.#streams.delete(entry)) return;
    this.#total -= entry.cost;
    entry.cost = 0;
    entry.queued = 0;
  }

  #recount(entry: BacklogEntry): void {
    const before = this.#streams.has(entry) ? entry.cost : 0;
    entry.cost = entry.unwritten() + entry.queued * entry.perWrite;
    this.#streams.add(entry);
    this.#total += entry.cost - before;
  }

  /** Over the relay's cap: recount every stream behind, then cut the slowest until back under it. */
  #shed(): void {
    for (const e of this.#streams) this.#recount(e);
    if (this.#total <= this.total) return;
    const slowest = [...this.#streams].sort((a, b) => b.cost - a.cost);
    for (const e of slowest) {
      if (this.#total <= this.total) break;
      this.#cut(e);
    }
  }

  #cut(entry: BacklogEntry): void {
    this.settled(entry);
    entry.cut();
  }
}

/**
 * The account of one stream, for its transport to call around each write: `before()` gives the
 * callback to pass to the write (only while the stream is behind, so the fast path allocates and
 * schedules nothing), `after()` recounts and applies the caps.
 */
export class StreamBacklog implements BacklogEntry {
  cost = 0;
  queued = 0;
  readonly #backlog: Backlog;
  readonly #onWritten = (): void => {
    if (this.queued > 0) this.queued--;
    if (this.queued === 0 && this.cost > 0 && this.unwritten() === 0) this.#backlog.settled(this);
  };

  constructor(
    backlog: Backlog,
    readonly limit: number,
    readonly perWrite: number,
    readonly unwritten: () => number,
    readonly cut: () => void,
  ) {
    this.#backlog = backlog;
  }

  /** Before a write: the write's callback while the stream is behind, else undefined. */
  before(): (() => void) | undefined {
    if (this.unwritten() === 0) return undefined;
    this.queued++;
    return this.#onWritten;
  }

  /** After a write: false when that made the stream (or the relay) go past its cap and it was cut. */
  after(): boolean {
    if (this.queued === 0 && this.unwritten() === 0) {
      if (this.cost > 0) this.#backlog.settled(this);
      return true;
    }
    return this.#backlog.wrote(this);
  }

  /** The stream ended: it holds nothing any more. */
  end(): void {
    this.#backlog.settled(this);
  }
}
