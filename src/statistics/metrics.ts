/**
 * Metrics for Prometheus: what this process published and delivered, its subscribers by transport,
 * the store's channels and messages, and how the store's operations fare (errors, latency). As the
 * text exposition format (relay.metrics()), or registered on a prom-client registry the app already
 * serves (relay.registerMetrics(registry)): the same families either way.
 */
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
const TIMED = ['publish', 'create', 'next', 'startCursor', 'received', 'info', 'delete', 'join', 'leave', 'watch'] as const;
type Operation = (typeof TIMED)[number];

/** This process's counters, kept by the relay as it works. */
export class RelayCounters {
  /** Messages published through this relay (HTTP and relay.publish()). */
  published = 0;
  /** Messages sent to subscribers (one per subscriber and message). */
  delivered = 0;
  readonly #latency = new Map<Operation, Histogram>();
  readonly #errors = new Map<Operation, number>();

  /**
   * `store`, with each request-path operation timed and its failures counted. Everything else (its
   * own properties and methods) reads through to the store itself.
   */
  instrument(store: ChannelStore): ChannelStore {
    const timed = new Map<PropertyKey, unknown>();
    for (const op of TIMED) {
      const method = store[op] as (...args: unknown[]) => Promise<unknown>;
      const histogram = new Histogram();
      this.#latency.set(op, histogram);
      timed.set(op, (...args: unknown[]) => {
        const start = performance.now();
        return method.apply(store, args).then(
          (result) => {
            histogram.observe((performance.now() - start) / 1000);
            return result;
          },
          (err: unknown) => {
            histogram.observe((performance.now() - start) / 1000);
            this.#errors.set(op, (this.#errors.get(op) ?? 0) + 1);
            throw err;
          },
        );
      });
    }
    return new Proxy(store, {
      get(target, prop) {
        if (timed.has(prop)) return timed.get(prop);
        const value: unknown = Reflect.get(target, prop, target);
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
  }

  latencyFamily(): MetricFamily {
    const values: Sample[] = [];
    for (const [operation, h] of this.#latency) {
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
      values: [...this.#errors].map(([operation, value]) => ({ labels: { operation }, value })),
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
