/** What bench/run.ts and the load generator exchange: a scenario's settings in, its figures out. */

export const SCENARIOS = ['fanout', 'channels', 'latency', 'publish', 'eventsource', 'memory', 'websocket'] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

export interface LoadConfig {
  scenario: ScenarioName;
  port: number;
  publishPath: string;
  subscribePath: string;
  /** Path of the EventSource endpoint (asked with `Accept: text/event-stream`). */
  eventSourcePath: string;
  /** Where WebSocket subscribers connect (the subscriber path when not given). */
  webSocketPath?: string | undefined;
  /** Processes that hold the subscribers (nginx: its worker), for RSS and CPU figures. */
  serverPids: number[];
  /** Helper processes of the server side (redis-server): their CPU is reported, not counted as noise. */
  auxPids: number[];
  /** Subscribers connect to these round-robin (several app processes); publishers use `port`. */
  subscribePorts: number[];
  /** Channel names start with this, so runs never collide. */
  channelPrefix: string;
  warmupMs: number;
  durationMs: number;
  /** Publish rounds measured by the latency scenario. */
  rounds: number;
  /** Subscribers of the latency scenario and parked ones of the memory scenario. */
  manySubscribers: number;
}

export interface LatencySummary {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export interface LoadResult {
  scenario: ScenarioName;
  /** The headline figure (deliveries/s, publishes/s, p99 ms, bytes per subscriber); undefined when n/a. */
  value: number | undefined;
  unit: string;
  /** Why there is no figure (e.g. the server does not serve EventSource). */
  notApplicable?: string;
  latency?: LatencySummary;
  deliveries?: number;
  publishes?: number;
  elapsedMs?: number;
  /** Load generator CPU over the measured window, % of one core. */
  loadgenCpu: number;
  /** Server process CPU over the measured window, % of one core. */
  serverCpu: number;
  /** CPU of the server side's helper processes (redis-server), % of one core. */
  auxCpu: number;
  /** CPU other processes of the machine used meanwhile, % of one core (tick-granular: +-10% is noise). */
  otherCpu: number;
  /** CPU time the hypervisor stole meanwhile, % of one core. */
  stealCpu: number;
  lost: number;
  duplicated: number;
  reordered: number;
  garbled: number;
  /** Unexpected statuses, dropped connections, time-outs. */
  problems: string[];
  extra?: Record<string, number>;
}
