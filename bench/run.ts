/**
 * `npm run bench [-- --quick] [-- --only fanout,latency] [-- --runs 3] [-- --targets express,nchan] [-- --redis] [-- --baseline] [-- --profile]`
 *
 * For each scenario and each server (Nchan when installed, push-relay under Express 5 and on
 * `relay.handler` (node:http), the Node alternatives; with --redis also two Express processes sharing
 * a RedisStore; with --baseline also minimal Express and node:http apps without push-relay, the floor
 * of each host), one at a time: starts the server pinned to CPU 0, runs the load generator
 * (bench/load/loadgen.c) pinned to CPU 1, stops the server. Prints one table (medians when
 * --runs > 1) and writes the raw results to bench/results/<timestamp>.json.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, release, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildBench, type Built } from './build.js';
import { renderChart } from './chart.js';
import { SCENARIOS, type LoadConfig, type LoadResult, type ScenarioName } from './load/protocol.js';
import { benchNice, freePort, maxNofile, pinned, TARGETS, type Target, type TargetName } from './targets.js';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..');
const SERVER_CPU = 0;
const LOADGEN_CPU = 1;

const SCENARIO_LABELS: Record<ScenarioName, string> = {
  fanout: '(a) 1 ch x 1,000 long-poll, lockstep, deliveries/s',
  channels: '(b) 1,000 ch x 10 long-poll, deliveries/s',
  latency: '(c) 1 ch x N long-poll, publish->receive p99 ms',
  publish: '(d) publishes/s, 1,000 ch, 0 subs, 8 conns',
  eventsource: '(e) 1 ch x 1,000 EventSource, deliveries/s',
  memory: '(f) RSS per idle long-poll subscriber, bytes',
  websocket: '(g) 1 ch x 1,000 WebSocket, deliveries/s',
};
/** Scenarios whose figure is better when lower: their ratio reads "x Nchan's". */
const LOWER_IS_BETTER = new Set<ScenarioName>(['latency', 'memory']);

interface Args {
  quick: boolean;
  only: ScenarioName[];
  targets: TargetName[];
  runs: number;
  profile: boolean;
  /** Re-measure when other processes and the hypervisor took more than this much CPU (% of one core) meanwhile. */
  noisyAbove: number;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { quick: false, only: [...SCENARIOS], targets: TARGETS.filter((t) => !t.optIn).map((t) => t.name), runs: 1, profile: false, noisyAbove: 25 };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${arg} needs a value`);
      return v;
    };
    if (arg === '--quick') args.quick = true;
    else if (arg === '--profile') args.profile = true;
    else if (arg === '--no-nice') benchNice.value = 0;
    else if (arg === '--redis') args.targets.push(...TARGETS.filter((t) => t.optIn === 'redis').map((t) => t.name));
    else if (arg === '--baseline') args.targets.push(...TARGETS.filter((t) => t.optIn === 'baseline').map((t) => t.name));
    else if (arg === '--noisy-above') args.noisyAbove = Number(value());
    else if (arg === '--runs') args.runs = Math.max(1, Number(value()) || 1);
    else if (arg === '--only') {
      const names = value().split(',');
      for (const n of names) if (!(SCENARIOS as readonly string[]).includes(n)) throw new Error(`unknown scenario "${n}" (known: ${SCENARIOS.join(', ')})`);
      args.only = names as ScenarioName[];
    } else if (arg === '--targets') {
      const names = value().split(',');
      for (const n of names) if (!TARGETS.some((t) => t.name === n)) throw new Error(`unknown target "${n}" (known: ${TARGETS.map((t) => t.name).join(', ')})`);
      args.targets = names as TargetName[];
    } else throw new Error(`unknown argument "${arg}" (use --quick, --only <scenarios>, --targets <names>, --runs <n>, --redis, --baseline, --profile, --no-nice, --noisy-above <cpu %>)`);
  }
  return args;
}

/** The load generator's command line (bench/load/loadgen.c) for `config`. */
function loadArgs(config: LoadConfig): string[] {
  return [
    ['--scenario', config.scenario],
    ['--port', String(config.port)],
    ['--publish-path', config.publishPath],
    ['--subscribe-path', config.subscribePath],
    ['--eventsource-path', config.eventSourcePath],
    ...(config.webSocketPath ? [['--websocket-path', config.webSocketPath]] : []),
    ['--server-pids', config.serverPids.join(',')],
    ['--aux-pids', config.auxPids.join(',')],
    ['--subscribe-ports', config.subscribePorts.join(',')],
    ['--channel-prefix', config.channelPrefix],
    ['--warmup-ms', String(config.warmupMs)],
    ['--duration-ms', String(config.durationMs)],
    ['--rounds', String(config.rounds)],
    ['--many', String(config.manySubscribers)],
  ].flat();
}

function runLoad(config: LoadConfig, nofile: number, loadGenerator: string): Promise<LoadResult> {
  const child = pinned(LOADGEN_CPU, nofile, [loadGenerator, ...loadArgs(config)], repoRoot);
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => {
      const line = out.trim().split('\n').pop() ?? '';
      if (code === 0 && line.startsWith('{')) resolve(JSON.parse(line) as LoadResult);
      else reject(new Error(`load generator exited (${code}): ${err.trim() || out.trim()}`));
    });
  });
}

/** Busy CPU time of the whole machine (user + nice + system ticks, all CPUs). */
function machineBusyTicks(): number {
  const line = readFileSync('/proc/stat', 'latin1').split('\n', 1)[0]!;
  const [user, nice, system] = line.split(/\s+/).slice(1, 4).map(Number) as [number, number, number];
  return user + nice + system;
}

/** Waits (up to 5 s) until the machine is nearly idle, so that a measurement starts on quiet CPUs. */
async function waitForQuiet(): Promise<void> {
  if (!existsSync('/proc/stat')) return;
  const until = Date.now() + 5_000;
  while (Date.now() < until) {
    const before = machineBusyTicks();
    await new Promise((r) => setTimeout(r, 300));
    // Ticks are 10 ms: under 6 ticks in 300 ms is under 20% of one core.
    if (machineBusyTicks() - before < 6) return;
  }
}

async function runOne(target: Target, scenario: ScenarioName, args: Args, nofile: number, run: number, built: Built): Promise<LoadResult> {
  const port = await freePort();
  // tsx's loader thread writes its own (small) profile next to the main thread's.
  const profileDir = args.profile && target.name !== 'nchan' ? join(repoRoot, 'bench/results/profiles', `${target.name}-${scenario}`) : undefined;
  if (profileDir) mkdirSync(profileDir, { recursive: true });
  const server = await target.start(port, { repoRoot, builtServers: built.servers, serverCpu: SERVER_CPU, nofile, ...(profileDir ? { cpuProfileDir: profileDir } : {}) });
  try {
    const result = await runLoad(
      {
        scenario,
        port,
        publishPath: target.publishPath,
        subscribePath: target.subscribePath,
        eventSourcePath: target.eventSourcePath,
        webSocketPath: target.webSocketPath,
        serverPids: server.pids,
        subscribePorts: server.ports,
        auxPids: server.auxPids ?? [],
        channelPrefix: `b${run}${scenario}${Date.now().toString(36)}`,
        warmupMs: args.quick ? 500 : 1000,
        durationMs: args.quick ? 1500 : 3000,
        rounds: args.quick ? 8 : 20,
        manySubscribers: args.quick ? 5000 : 10_000,
      },
      nofile,
      built.loadGenerator,
    );
    const trouble = server.trouble();
    if (trouble) result.problems.push(trouble);
    return result;
  } finally {
    await server.stop();
  }
}

// ---------------------------------------------------------------------------------------------
// Reporting.

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

function formatValue(scenario: ScenarioName, v: number | undefined): string {
  if (v === undefined) return 'n/a';
  if (scenario === 'latency') return `${v.toFixed(v < 10 ? 1 : 0)} ms`;
  if (scenario === 'memory') return `${(v / 1024).toFixed(1)} KB`;
  return v >= 10_000 ? `${(v / 1000).toFixed(1)}k` : v.toFixed(0);
}

/** CPU taken from the measurement meanwhile (% of one core): other processes', and the hypervisor's steal. */
const noise = (r: LoadResult) => r.otherCpu + r.stealCpu;

/** Server CPU time per delivery or publish over the measured window: steadier than throughput on a shared machine. */
function serverCostPerOp(r: LoadResult): string {
  const cost = cpuPerOp(r);
  return cost === undefined ? '' : ` (${cost.toFixed(1)} us/op${r.auxCpu ? ' with redis' : ''})`;
}

/**
 * Server-side CPU per delivery (or per publish), in microseconds: the app processes plus their
 * helpers (redis-server), so that a store that moves work into Redis is charged for it.
 */
function cpuPerOp(r: LoadResult): number | undefined {
  const ops = r.scenario === 'publish' ? r.publishes : r.deliveries;
  if (!ops || !r.elapsedMs || r.scenario === 'latency' || r.scenario === 'memory') return undefined;
  return (((r.serverCpu + r.auxCpu) / 100) * r.elapsedMs * 1000) / ops;
}

function formatRatio(scenario: ScenarioName, ours: number | undefined, nchan: number | undefined): string {
  if (ours === undefined || nchan === undefined || nchan === 0) return '-';
  const r = ours / nchan;
  return LOWER_IS_BETTER.has(scenario) ? `${r.toFixed(2)}x (lower=better)` : `${r.toFixed(2)}x`;
}

/** lost/duplicated/reordered over every run: `0/0/0`, or each target that had any, named. */
function lossColumn(runsByTarget: Array<[TargetName, LoadResult[]]>): string {
  const counts = runsByTarget.map(([name, runs]) => {
    const sum = (f: (r: LoadResult) => number) => runs.reduce((n, r) => n + f(r), 0);
    return { name, lost: sum((r) => r.lost + r.garbled), dup: sum((r) => r.duplicated), reordered: sum((r) => r.reordered) };
  });
  const bad = counts.filter((c) => c.lost + c.dup + c.reordered > 0);
  return bad.length === 0 ? '0/0/0' : bad.map((c) => `${c.name}: ${c.lost}/${c.dup}/${c.reordered}`).join(', ');
}

interface Cell {
  value: number | undefined;
  runs: LoadResult[];
}

function cell(results: LoadResult[]): Cell {
  const values = results.map((r) => r.value).filter((v): v is number => v !== undefined);
  return { value: values.length ? median(values) : undefined, runs: results };
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  const line = (r: string[]) => `| ${r.map((v, c) => v.padEnd(widths[c]!)).join(' | ')} |`;
  return [line(rows[0]!), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.slice(1).map(line)].join('\n');
}

/** Which code was measured: the commit, and the src/ files that differed from it. */
function tree(): { commit: string; changedSrcFiles: string[] } {
  const git = (...a: string[]) => spawnSync('git', a, { cwd: repoRoot, encoding: 'utf8' });
  const head = git('rev-parse', 'HEAD');
  const status = git('status', '--porcelain', '--', 'src');
  return {
    commit: head.status === 0 ? head.stdout.trim() : 'unknown',
    changedSrcFiles: status.status === 0 ? status.stdout.split('\n').filter(Boolean).map((l) => l.slice(3)) : [],
  };
}

function machine(): Record<string, string> {
  const nginx = spawnSync('nginx', ['-v'], { encoding: 'utf8' });
  const nchan = spawnSync('dpkg-query', ['-W', '-f', '${Version}', 'libnginx-mod-nchan'], { encoding: 'utf8' });
  let memory = `${(totalmem() / 2 ** 30).toFixed(1)} GiB`;
  try {
    memory = /MemTotal:\s+(\d+ kB)/.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? memory;
  } catch {
    /* not Linux */
  }
  return {
    cpus: String(cpus().length),
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memory,
    kernel: release(),
    node: process.version,
    nginx: nginx.error ? 'not installed' : nginx.stderr.trim().replace('nginx version: ', ''),
    nchan: nchan.status === 0 ? nchan.stdout.trim() : 'not installed',
  };
}

/** The run's figures as a picture beside its raw results (docs/benchmarks.md shows one). */
function writeChart(file: string, args: Pick<Args, 'runs' | 'only' | 'quick'>, targets: ReadonlyArray<Pick<Target, 'name' | 'label'>>, value: (t: TargetName, s: ScenarioName) => number | undefined, date = new Date()): void {
  const chart = renderChart(
    `push-relay against Nchan and the Node peers (${args.runs > 1 ? `medians of ${args.runs} runs` : 'one run'}, ${date.toISOString().slice(0, 10)})`,
    targets.map((t) => ({ name: t.name, label: t.label })),
    args.only.map((scenario) => ({
      title: SCENARIO_LABELS[scenario].replace(' N ', ` ${(args.quick ? 5000 : 10_000).toLocaleString('en')} `),
      lowerIsBetter: LOWER_IS_BETTER.has(scenario),
      values: new Map(targets.map((t) => [t.name, value(t.name, scenario)])),
      format: (v) => formatValue(scenario, v),
    })),
  );
  const svg = file.replace(/\.json$/, '.svg');
  writeFileSync(svg, chart);
  console.log(`chart: ${svg}`);
}

/** `--chart <results.json>`: draws the chart of an earlier run again, from its raw results. */
function chartFrom(file: string): void {
  const run = JSON.parse(readFileSync(file, 'utf8')) as { date: string; args: Args; results: Record<string, LoadResult[]> };
  const targets = TARGETS.filter((t) => run.args.targets.includes(t.name) && run.args.only.some((s) => run.results[`${t.name}/${s}`]?.length));
  writeChart(file, run.args, targets, (t, s) => cell(run.results[`${t}/${s}`] ?? []).value, new Date(run.date));
}

async function main(): Promise<void> {
  const chart = process.argv.indexOf('--chart');
  if (chart >= 0) return chartFrom(process.argv[chart + 1] ?? '');
  const args = parseArgs(process.argv.slice(2));
  const nofile = maxNofile();
  const targets: Target[] = [];
  for (const t of TARGETS.filter((t) => args.targets.includes(t.name))) {
    const why = await t.unavailable();
    if (why) console.log(`${t.label}: skipped, ${why}. Our figures are printed alone.`);
    else targets.push(t);
  }
  if (spawnSync('taskset', ['-V']).error) throw new Error('taskset (util-linux) is needed to pin the server and the load generator');
  if (cpus().length < 2) console.log('warning: fewer than 2 CPUs, the server and the load generator share one');
  console.log(
    `open files limit ${nofile}; server on CPU ${SERVER_CPU}, load generator on CPU ${LOADGEN_CPU}, nice ${benchNice.value}; ` +
      `${args.quick ? 'quick' : 'full'} run x${args.runs}`,
  );

  const measured = tree();
  const built = buildBench(repoRoot, args.profile ? join(repoRoot, 'bench/results/profiles/build') : undefined);
  const results = new Map<string, LoadResult[]>();
  const key = (t: TargetName, s: ScenarioName) => `${t}/${s}`;
  for (let run = 0; run < args.runs; run++) {
    for (const scenario of args.only) {
      for (const target of targets) {
        if (target.scenarios && !target.scenarios.includes(scenario)) continue;
        let result: LoadResult | undefined;
        // A measurement disturbed by other processes is taken again (twice at most); the quietest is kept.
        for (let attempt = 0; attempt < 3 && (!result || noise(result) > args.noisyAbove); attempt++) {
          await waitForQuiet();
          try {
            const r = await runOne(target, scenario, args, nofile, run, built);
            if (!result || noise(r) < noise(result)) result = r;
          } catch (err) {
            console.log(`  ${target.name} ${scenario}: FAILED ${(err as Error).message}`);
            break;
          }
        }
        if (!result) continue;
        const list = results.get(key(target.name, scenario)) ?? [];
        list.push(result);
        results.set(key(target.name, scenario), list);
        const flags = [
          result.notApplicable ? `n/a: ${result.notApplicable}` : '',
          result.loadgenCpu > 90 && scenario !== 'memory' ? 'LOAD GENERATOR SATURATED' : '',
          noise(result) > args.noisyAbove ? `NOISY: other processes used ${result.otherCpu}% CPU and the hypervisor stole ${result.stealCpu}% meanwhile` : '',
          result.problems.length ? result.problems.join('; ') : '',
        ].filter(Boolean);
        console.log(
          `  run ${run + 1} ${scenario.padEnd(11)} ${target.name.padEnd(9)} ${formatValue(scenario, result.value).padStart(9)}` +
            `  server cpu ${result.serverCpu}%${serverCostPerOp(result)}  loadgen cpu ${result.loadgenCpu}%${result.auxCpu ? `  redis cpu ${result.auxCpu}%` : ''}  other ${result.otherCpu}%${result.stealCpu ? `  steal ${result.stealCpu}%` : ''}  lost/dup/reorder ${result.lost}/${result.duplicated}/${result.reordered}` +
            (result.latency ? `  p50 ${result.latency.p50} p99 ${result.latency.p99} ms` : '') +
            (flags.length ? `  [${flags.join(' | ')}]` : ''),
        );
      }
    }
  }

  const names = targets.map((t) => t.name);
  const header = ['scenario', ...targets.map((t) => t.label)];
  const ours = targets.filter((t) => t.name !== 'nchan');
  if (names.includes('nchan')) for (const t of ours) header.push(`${t.name} / Nchan`);
  header.push('loadgen CPU % (max)', 'lost/dup/reorder');
  const rows = [header];
  for (const scenario of args.only) {
    const cells = new Map(targets.map((t) => [t.name, cell(results.get(key(t.name, scenario)) ?? [])]));
    const row = [SCENARIO_LABELS[scenario].replace(' N ', ` ${(args.quick ? 5000 : 10_000).toLocaleString('en')} `)];
    for (const t of targets) row.push(formatValue(scenario, cells.get(t.name)!.value));
    if (names.includes('nchan')) for (const t of ours) row.push(formatRatio(scenario, cells.get(t.name)!.value, cells.get('nchan')!.value));
    const all = [...cells.values()].flatMap((c) => c.runs);
    row.push(all.length ? String(Math.max(...all.map((r) => r.loadgenCpu))) : '-');
    row.push(lossColumn(targets.map((t) => [t.name, cells.get(t.name)!.runs])));
    rows.push(row);
  }
  console.log(`\n${args.runs > 1 ? `medians of ${args.runs} runs` : 'one run'}:\n${table(rows)}`);

  // Per server CPU-second: on 2 cores a figure per wall-clock second hides what Redis costs.
  const costHeader = ['server CPU per op, us (app processes + Redis); ops per server CPU-second', ...targets.map((t) => t.label)];
  const costRows = [costHeader];
  for (const scenario of args.only) {
    const costs = targets.map((t) => (results.get(key(t.name, scenario)) ?? []).map(cpuPerOp).filter((c): c is number => c !== undefined));
    if (costs.every((c) => c.length === 0)) continue;
    costRows.push([SCENARIO_LABELS[scenario], ...costs.map((c) => (c.length ? `${median(c).toFixed(1)} us; ${formatValue(scenario, 1e6 / median(c))}/CPU-s` : '-'))]);
  }
  if (costRows.length > 1) console.log(`\n${table(costRows)}`);

  const dir = join(repoRoot, 'bench/results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeChart(file, args, targets, (t, s) => cell(results.get(key(t, s)) ?? []).value);
  writeFileSync(
    file,
    JSON.stringify(
      { date: new Date().toISOString(), machine: machine(), tree: measured, args, results: Object.fromEntries(results) },
      null,
      2,
    ),
  );
  console.log(`\nraw results: ${file}`);

}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
