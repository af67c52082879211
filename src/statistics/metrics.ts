/**
 * Metrics for Prometheus: what this process published and delivered, its subscribers by transport,
 * the store's channels and messages, and how the store's operations fare (errors, latency). As the
 * text exposition format (relay.metrics()), or registered on a prom-client registry the app already
 * serves (relay.registerMetrics(registry)): the same families either way.
 */
import { isPromiseLike } from '../maybe-async.js';
import type { ChannelStore } from '../store/channel-store.js';

/** One sample: a value, its labels, and the sample's name when not the family's (histogram parts). */
export interface Sample {
  value: number;
  labels?: Record<string, string>;
  metricName?: string;
}

export interface MetricFamily {
  name: string;
  help: string;
  type: 'counter' | 'gauge' | 'histogram';
  values: Sample[];
}

/** Seconds; Prometheus' default buckets, shifted to a store that answers in about a millisecond. */
const BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

class Histogram {
  readonly counts = new Array<number>(BUCKETS.length).fill(0);
  count = 0;
  sum = 0;

  observe(seconds: number): void {
    this.count++;
    this.sum += seconds;
    for (let i = 0; i < BUCKETS.length; i++) {
      if (seconds <= BUCKETS[i]!) {
        this.counts[i]!++;
        return;
      }
    }
  }
}

/** Store operations timed and counted (the methods every request calls). */
const TIMED = ['publish', 'create', 'next', 'nextOrJoin', 'startCursor', 'received', 'info', 'delete', 'join', 'leave', 'watch'] as const;
type Operation = (typeof TIMED)[number];

/** One timed operation: its histogram, and its failures. */
class Timed {
  readonly histogram = new Histogram();
  errors = 0;

  constructor(
    readonly store: ChannelStore,
    readonly method: (...args: unknown[]) => unknown,
  ) {}

  /** Calls the store; a store may answer some operations at once (a value, not a Promise): timed all the same. */
  call(args: unknown[]): unknown {
    const start = performance.now();
    let result: unknown;
    try {
      result = this.method.apply(this.store, args);
    } catch (err) {
      this.#failed(start);
      throw err;
    }
    if (!isPromiseLike(result)) {
      this.histogram.observe((performance.now() - start) / 1000);
      return result;
    }
    return Promise.resolve(result).then(
      (value) => {
        this.histogram.observe((performance.now() - start) / 1000);
        return value;
      },
      (err: unknown) => {
        this.#failed(start);
        throw err;
      },
    );
  }

  #failed(start: number): void {
    this.histogram.observe((performance.now() - start) / 1000);
    this.errors++;
  }
}

/** This process's counters, kept by the relay as it works. */
export class RelayCounters {
  /** Messages published through this relay (HTTP and relay.publish()). */
  published = 0;
  /** Messages sent to subscribers (one per subscriber and message). */
  delivered = 0;
  readonly #timed = new Map<Operation, Timed>();

  /**
   * `store`, with each request-path operation timed and its failures counted. Everything else (its
   * own properties and methods) reads through to the store itself. A plain object, not a Proxy: the
   * relay reaches the store several times per request.
   */
  instrument(store: ChannelStore): ChannelStore {
    const wrapper = Object.create(null) as Record<PropertyKey, unknown>;
    const seen = new Set<PropertyKey>(['constructor']);
    for (let o: object | null = store; o && o !== Object.prototype; o = Object.getPrototypeOf(o) as object | null) {
      for (const name of Reflect.ownKeys(o)) {
        if (seen.has(name)) continue;
        seen.add(name);
        // Accessors are read when asked for (a getter may not run on a half-made store); methods are
        // read through the store itself, so that a store wrapped in a Proxy hands out its own.
        const descriptor = Reflect.getOwnPropertyDescriptor(o, name);
        const value: unknown = descriptor && 'value' in descriptor ? Reflect.get(store, name, store) : undefined;
        if (typeof value !== 'function') {
          Object.defineProperty(wrapper, name, { get: () => Reflect.get(store, name, store), enumerable: true });
        } else if ((TIMED as readonly PropertyKey[]).includes(name)) {
          const timed = new Timed(store, value as (...args: unknown[]) => unknown);
          this.#timed.set(name as Operation, timed);
          wrapper[name] = (...args: unknown[]) => timed.call(args);
        } else {
          wrapper[name] = (value as (...a: unknown[]) => unknown).bind(store);
        }
      }
    }
    return wrapper as unknown as ChannelStore;
  }

  latencyFamily(): MetricFamily {
    const values: Sample[] = [];
    for (const [operation, { histogram: h }] of this.#timed) {
      if (h.count === 0) continue;
      let cumulative = 0;
      BUCKETS.forEach((le, i) => {
        cumulative += h.counts[i]!;
        values.push({ metricName: 'push_relay_store_operation_seconds_bucket', labels: { operation, le: String(le) }, value: cumulative });
      });
      values.push({ metricName: 'push_relay_store_operation_seconds_bucket', labels: { operation, le: '+Inf' }, value: h.count });
      values.push({ metricName: 'push_relay_store_operation_seconds_sum', labels: { operation }, value: h.sum });
      values.push({ metricName: 'push_relay_store_operation_seconds_count', labels: { operation }, value: h.count });
    }
    return { name: 'push_relay_store_operation_seconds', help: 'How long store operations took, by operation (failures included).', type: 'histogram', values };
  }

  errorsFamily(): MetricFamily {
    return {
      name: 'push_relay_store_errors_total',
      help: 'Store operations that failed (Redis down or hung, store full, limits), by operation.',
      type: 'counter',
      values: [...this.#timed].filter(([, t]) => t.errors > 0).map(([operation, t]) => ({ labels: { operation }, value: t.errors })),
    };
  }
}

/** Prometheus label values: backslash, quote and line feed escaped. */
function label(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** The text exposition format (version 0.0.4). */
export function formatExposition(families: readonly MetricFamily[]): string {
  let out = '';
  for (const f of families) {
    out += `# HELP ${f.name} ${f.help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}\n# TYPE ${f.name} ${f.type}\n`;
    for (const s of f.values) {
      const labels = s.labels ? Object.entries(s.labels).map(([k, v]) => `${k}="${label(v)}"`) : [];
      out += `${s.metricName ?? f.name}${labels.length ? `{${labels.join(',')}}` : ''} ${Number.isFinite(s.value) ? s.value : s.value > 0 ? '+Inf' : '-Inf'}\n`;
    }
  }
  return out;
}

/** What prom-client's Registry takes (`registry.registerMetric`); no import of prom-client needed. */
export interface PromRegistry {
  registerMetric(metric: unknown): void;
}

/**
 * Registers every family on a prom-client registry. Its scrape asks each family in turn: one
 * collection serves them all (collected again once that scrape is over).
 */
export function registerFamilies(registry: PromRegistry, names: readonly string[], collect: () => Promise<MetricFamily[]>): void {
  if (!registry || typeof registry.registerMetric !== 'function') throw new TypeError('push-relay: registerMetrics() takes a prom-client Registry (e.g. `register` from "prom-client")');
  let pending: Promise<MetricFamily[]> | undefined;
  const shared = () => {
    if (!pending) {
      pending = collect();
      const clear = () => setTimeout(() => (pending = undefined), 0);
      pending.then(clear, clear);
    }
    return pending;
  };
  for (const name of names) {
    registry.registerMetric({
      name,
      help: '',
      type: 'gauge',
      aggregator: 'sum',
      async get() {
        const family = (await shared()).find((f) => f.name === name);
        return { name, help: family?.help ?? '', type: family?.type ?? 'gauge', aggregator: 'sum', values: family?.values ?? [] };
      },
      reset() {},
    });
  }
}
