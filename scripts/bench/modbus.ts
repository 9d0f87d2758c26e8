/**
 * ModbusAdapter benchmark (`node dist/bench.js --only modbus`). Not part of the test run.
 *
 * 1. TCP on loopback: one adapter (in this process, measured with process.cpuUsage/memoryUsage)
 *    polls the site simulator (its own process: `dist/cli.js simulator`) with a growing number of
 *    devices, the simulator's device mix (SunSpec inverters and meter, weather station, tracker,
 *    I/O) repeated. The simulator is one endpoint (one port, a unit id per device, as a gateway),
 *    so the devices share the endpoint's connections: first with `endpoints` maxConnections 64
 *    (the most the configuration allows; the adapter's capacity), then with the default of one
 *    connection (how many devices one gateway connection carries). A step is sustained when at
 *    least 95 % of the polls due are completed and none fails. Telemetry goes to a bus that
 *    serialises each message as the IPC client would, and drops it.
 * 2. RTU: devices sharing one bus, the adapter on a socat pty, pymodbus with the RTU framer behind
 *    it, at 9600 and 115200 baud. Bits on the wire per transaction (11 bits per character, Modbus
 *    over Serial Line v1.02 §2.5.1) and the silent intervals (t3.5: 3.5 characters, fixed 1.75 ms
 *    above 19200 baud, §2.5.1.1) give the theoretical maximum transactions per second; the
 *    measured rate is compared with it. A pty does not enforce a baud rate, so each rate is run
 *    twice: with the bytes paced to the line rate (testing/serial-line.ts) and unpaced (the
 *    ceiling of the software path, adapter + pty + pymodbus).
 * 3. Memory over a long run: 200 inverters, each a site simulator of its own on its own port (an
 *    endpoint each, so a connection per device, as inverters with their own addresses have),
 *    polled every second with two reads (models 103 and 160), the adapter alone in a worker
 *    process (./modbus-worker.ts, node --expose-gc) so its RSS and heap are its own: RSS, heap and
 *    heap after a forced GC every 10 s, the least-squares slope over the run and over its second
 *    half, CPU seconds per 1000 polls, and the mean interval between each device's polls. It runs
 *    12 x --seconds (1 minute at the default), or `--long MINUTES` (at least 10 for the figure in
 *    docs/modbus-adapter.md), with node's options and MALLOC_ARENA_MAX as the recipe runs the
 *    adapter; then 12 x --seconds at node's defaults, the side-by-side baseline.
 * 4. Burst: the same 200 inverters for --seconds, with the start times spread across the interval
 *    (as the adapter does) and without (every device starting at once, as before): requests sent
 *    per 10 ms window (on loopback they reach the simulator within a fraction of a millisecond).
 * 5. Through the local runtime: the built adapter (greengrass-build/) deployed into a `dcmms-edge
 *    nucleus` process with the same 200 inverters, and a component subscribed to raw telemetry as
 *    the Processor is (./modbus-worker.ts sink, the SDK IPC client), for 12 x --seconds: CPU of the
 *    adapter's and the nucleus's processes per 1000 polls (/proc), against the in-process figure.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Bus } from '../../components/lib/bus-types';
import { systemClock } from '../../components/lib/clock';
import { validateConfig } from '../../components/lib/config';
import { silentLogger } from '../../components/lib/logger';
import { createMetrics } from '../../components/lib/metrics';
import { createModbusAdapter, type ModbusAdapter } from '../../components/modbus-adapter/adapter';
import { modbusConfigSpec, type DeviceConfig, type RegisterMap } from '../../components/modbus-adapter/config';
import { startPymodbus } from '../../components/modbus-adapter/testing/pymodbus';
import { BITS_PER_CHAR } from '../../components/modbus-adapter/testing/serial-line';
import { modbusSerialTransport, type Transport, type TransportFactory } from '../../components/modbus-adapter/transport';
import YAML from 'yaml';
import { NucleusProcess, bundleWorker, delay, runCli, shellQuote, workerRecipe } from './nucleus-process';
import { ProcSampler, sampleProcess } from './proc-sampler';
import { RESULT_FILE } from './ipc-protocol';
import type { BurstFigures, MemorySample, ModbusWorkerResult, SinkResult } from './modbus-worker';
import { pubsubResource } from '../../components/lib/contract';

const TCP_POLL_MS = 250;
/** Up to the configuration's limit of 512 devices per adapter (config.ts). */
const TCP_STEPS = [25, 50, 100, 200, 400, 512];
/** Connections to the simulator's endpoint: the configuration's maximum, then the default. */
const TCP_CONNECTIONS = [64, 1];
const RTU_REGISTERS = 60;
const USER_HZ = 100;

export interface TcpStep {
  devices: number;
  /** endpoints.maxConnections of the simulator's endpoint. */
  connections: number;
  pollIntervalMs: number;
  pollsDuePerS: number;
  pollsPerS: number;
  requestsPerS: number;
  sustained: boolean;
  failures: number;
  overruns: number;
  avgCycleMs: number;
  adapterCpuPercent: number;
  adapterRssMaxMB: number;
  simulatorCpuPercent: number;
  machineBusyPercent: number;
}

export interface RtuRun {
  baud: number;
  paced: boolean;
  devices: number;
  transactionsPerS: number;
  bitsPerTransaction: number;
  theoreticalTransactionsPerS: number;
  /** Share of the line's bit time carrying frames. */
  wireUtilisationPercent: number;
  /**
   * Measured rate / theoretical maximum (frames + t3.5 silences). The paced relay does not model the
   * silences, so a paced run can exceed 100 %; an unpaced one shows the software ceiling.
   */
  ofTheoreticalPercent: number;
  failures: number;
}

const round = (n: number, d = 1): number => Math.round(n * 10 ** d) / 10 ** d;

/** Inverters of the memory, burst and runtime steps (the side-by-side comparison's load). */
const FLEET = 200;
const MIB = 1024 * 1024;
const ADAPTER = 'com.dcmms.edge.ModbusAdapter';
const SITE = 'bench';

export interface SeriesFigures {
  firstMiB: number;
  lastMiB: number;
  maxMiB: number;
  /** Least squares, MiB per minute: over the whole run, and over its second half (after warm-up). */
  slopeMiBPerMin: number;
  slopeSecondHalfMiBPerMin: number;
}

export interface MemoryRun {
  /** `as the recipe runs it` or `baseline` (node's defaults). */
  runtime: string;
  nodeArgs: string[];
  env: Record<string, string>;
  devices: number;
  readsPerPoll: number;
  pollIntervalMs: number;
  minutes: number;
  polls: number;
  pollsPerS: number;
  failures: number;
  overruns: number;
  /** CPU seconds (user + system) of the adapter's process per 1000 polls. */
  cpuSPer1000Polls: number;
  rss: SeriesFigures;
  /** RSS split at the end: anonymous (heap, native allocations) and file-backed (the node binary, shared with every node process). */
  rssEndSplitMiB: { anon: number; file: number };
  heapUsed: SeriesFigures;
  heapAfterGc?: SeriesFigures;
  meanIntervalMs: ModbusWorkerResult['meanIntervalMs'];
  /** RSS every 10 s, MiB (the curve). */
  rssEvery10sMiB: number[];
}

export interface BurstRun extends BurstFigures {
  spread: boolean;
}

export interface RuntimePathRun {
  devices: number;
  seconds: number;
  /** Telemetry messages the subscriber received (one per poll) in the window. */
  polls: number;
  pollsPerS: number;
  cpuSPer1000Polls: { adapter: number; nucleus: number; subscriber: number };
  cpuPercent: { adapter: number; nucleus: number; subscriber: number; other: number };
  adapterRssMiB: { first: number; last: number; max: number };
  /** The adapter process's RSS split at the end (/proc/<pid>/status). */
  adapterRssEndSplitMiB: { anon: number; file: number };
}

/** Least-squares slope of y over x. */
function slope(xs: number[], ys: number[]): number {
  const n = xs.length;
  if (n < 2) return 0;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i]! - mx) * (ys[i]! - my);
    den += (xs[i]! - mx) ** 2;
  }
  return den > 0 ? num / den : 0;
}

function series(samples: MemorySample[], pick: (s: MemorySample) => number): SeriesFigures {
  const xs = samples.map((s) => s.t / 60);
  const ys = samples.map((s) => pick(s) / MIB);
  const half = Math.floor(samples.length / 2);
  return {
    firstMiB: round(ys[0] ?? 0),
    lastMiB: round(ys[ys.length - 1] ?? 0),
    maxMiB: round(Math.max(...ys)),
    slopeMiBPerMin: round(slope(xs, ys), 3),
    slopeSecondHalfMiBPerMin: round(slope(xs.slice(half), ys.slice(half)), 3),
  };
}

/** A bus that does the work the IPC client does per message (serialise) and keeps nothing. */
function countingBus(): Bus & { published: number; bytes: number } {
  const b = {
    published: 0,
    bytes: 0,
    state: 'connected' as Bus['state'],
    connect: async () => undefined,
    async publish(_topic: string, payload: object) {
      b.published += 1;
      b.bytes += Buffer.byteLength(JSON.stringify(payload));
      return 'sent' as const;
    },
    publishToIoTCore: async () => 'sent' as const,
    subscribe: async () => ({ close: async () => undefined }),
    getConfiguration: async () => ({}),
    subscribeToConfigurationUpdate: async () => ({ close: async () => undefined }),
    updateState: async () => undefined,
    subscribeToComponentUpdates: async () => ({ close: async () => undefined }),
    deferComponentUpdate: async () => undefined,
    close: async () => undefined,
  };
  return b as unknown as Bus & { published: number; bytes: number };
}

/** modbus-serial, counting every read and write sent. */
function countingTransport(counter: { requests: number }): TransportFactory {
  return (conn) => {
    const t = modbusSerialTransport(conn);
    const wrapped: Transport = {
      get isOpen() {
        return t.isOpen;
      },
      open: () => t.open(),
      close: () => t.close(),
      onClose: (l) => t.onClose(l),
      readRegisters: (...a) => ((counter.requests += 1), t.readRegisters(...a)),
      readBits: (...a) => ((counter.requests += 1), t.readBits(...a)),
      writeRegisters: (...a) => ((counter.requests += 1), t.writeRegisters(...a)),
      writeCoil: (...a) => ((counter.requests += 1), t.writeCoil(...a)),
    };
    return wrapped;
  };
}

function findCli(): string {
  for (const p of [path.join(__dirname, 'cli.js'), path.resolve(__dirname, '../../dist/cli.js'), path.resolve('dist/cli.js')]) if (fs.existsSync(p)) return p;
  throw new Error("dist/cli.js is missing: run 'npm run build' first (npm run bench does)");
}

interface SimProcess {
  child: ChildProcess;
  config: { devices: DeviceConfig[]; registerMaps: Record<string, RegisterMap> };
  stop(): Promise<void>;
}

async function startSimulator(inverters: number): Promise<SimProcess> {
  const control = path.join(fs.mkdtempSync('/tmp/mbbench-'), 'sim.sock');
  const child = spawn(process.execPath, [findCli(), 'simulator', '--port', '0', '--inverters', String(inverters), '--cloudiness', '0', '--log-level', 'warn', '--control', control], { stdio: ['ignore', 'pipe', 'pipe'] });
  // Its log goes to stderr: keep the end of it for a failure message, not on our output.
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
  const stop = (): Promise<void> =>
    new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 3000).unref();
    });
  try {
    const config = await new Promise<SimProcess['config']>((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error('simulator: no configuration in 20 s')), 20_000);
      child.once('exit', (code) => reject(new Error(`simulator exited (${String(code)}): ${stderr}`)));
      child.stdout?.on('data', (d: Buffer) => {
        out += d.toString();
        try {
          const parsed = JSON.parse(out) as SimProcess['config'];
          clearTimeout(timer);
          resolve(parsed);
        } catch {
          // not complete yet
        }
      });
    });
    return { child, config, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

function adapterFor(devices: DeviceConfig[], registerMaps: Record<string, RegisterMap>, counter: { requests: number }, endpoints: Record<string, { maxConnections: number }> = {}): { adapter: ModbusAdapter; bus: ReturnType<typeof countingBus> } {
  const bus = countingBus();
  const config = validateConfig(modbusConfigSpec, { siteId: 'bench', devices, registerMaps, endpoints, defaultTimeoutMs: 2000 });
  const adapter = createModbusAdapter({ bus, logger: silentLogger, metrics: createMetrics({ clock: systemClock }), clock: systemClock, transport: countingTransport(counter) }, config);
  return { adapter, bus };
}

async function until(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`modbus bench: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Measure a running adapter for `seconds`: rates from its stats, CPU and RSS of this process. */
async function measure(adapter: ModbusAdapter, counter: { requests: number }, seconds: number, otherPid?: number) {
  const sum = (k: 'polls' | 'failures' | 'overruns'): number => adapter.stats().reduce((a, s) => a + s[k], 0);
  const p0 = sum('polls');
  const f0 = sum('failures');
  const o0 = sum('overruns');
  const r0 = counter.requests;
  const cpu0 = process.cpuUsage();
  const other0 = otherPid !== undefined ? sampleProcess(otherPid) : undefined;
  const t0 = performance.now();
  let rssMax = process.memoryUsage().rss;
  const sampler = setInterval(() => (rssMax = Math.max(rssMax, process.memoryUsage().rss)), 200);
  await new Promise((r) => setTimeout(r, seconds * 1000));
  clearInterval(sampler);
  const wallS = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const other1 = otherPid !== undefined ? sampleProcess(otherPid) : undefined;
  const cycles = adapter.stats().map((s) => s.avgCycleMs ?? 0);
  return {
    wallS,
    polls: sum('polls') - p0,
    failures: sum('failures') - f0,
    overruns: sum('overruns') - o0,
    requests: counter.requests - r0,
    avgCycleMs: cycles.reduce((a, b) => a + b, 0) / Math.max(1, cycles.length),
    cpuPercent: ((cpu.user + cpu.system) / 1e6 / wallS) * 100,
    rssMaxMB: rssMax / 1024 ** 2,
    otherCpuPercent: other0 && other1 ? ((other1.cpuTicks - other0.cpuTicks) / USER_HZ / wallS) * 100 : 0,
    machineBusyPercent: other0 && other1 ? ((other1.sysBusy - other0.sysBusy) / Math.max(1, other1.sysTotal - other0.sysTotal)) * 100 : 0,
  };
}

async function tcpSteps(seconds: number, log: (l: string) => void): Promise<TcpStep[]> {
  // 8 inverters: the simulated meter's current (model 203, A_SF -1) overflows int16 above ~19 x 60 kW.
  const sim = await startSimulator(8);
  const out: TcpStep[] = [];
  try {
    const mix = sim.config.devices;
    const first = mix[0]?.connection;
    const endpoint = first?.type === 'tcp' ? `${first.host}:${String(first.port)}` : '';
    for (const connections of TCP_CONNECTIONS) {
      for (const n of TCP_STEPS) {
        const devices = Array.from({ length: n }, (_v, i) => {
          const d = mix[i % mix.length] as DeviceConfig;
          return { ...d, assetId: `${d.assetId}-${i}`, pollIntervalMs: TCP_POLL_MS };
        });
        const counter = { requests: 0 };
        const { adapter } = adapterFor(devices, sim.config.registerMaps, counter, { [endpoint]: { maxConnections: connections } });
        log(`modbus: TCP ${n} devices every ${TCP_POLL_MS} ms, ${connections} connection${connections > 1 ? 's' : ''} ...`);
        await adapter.start();
        try {
          await until(() => adapter.stats().every((s) => s.polls > 0), 30_000, `a first poll of all ${n} devices`);
          const m = await measure(adapter, counter, seconds, sim.child.pid);
          const due = (n * 1000) / TCP_POLL_MS;
          const step: TcpStep = {
            devices: n,
            connections,
            pollIntervalMs: TCP_POLL_MS,
            pollsDuePerS: due,
            pollsPerS: round(m.polls / m.wallS),
            requestsPerS: round(m.requests / m.wallS),
            sustained: m.polls / m.wallS >= 0.95 * due && m.failures === 0,
            failures: m.failures,
            overruns: m.overruns,
            avgCycleMs: round(m.avgCycleMs),
            adapterCpuPercent: round(m.cpuPercent),
            adapterRssMaxMB: round(m.rssMaxMB),
            simulatorCpuPercent: round(m.otherCpuPercent),
            machineBusyPercent: round(m.machineBusyPercent),
          };
          log(`modbus:   ${step.pollsPerS}/${due} polls/s, ${step.requestsPerS} requests/s, adapter ${step.adapterCpuPercent} % CPU ${step.adapterRssMaxMB} MB, simulator ${step.simulatorCpuPercent} % CPU`);
          out.push(step);
          if (!step.sustained) break;
        } finally {
          await adapter.close();
        }
      }
    }
  } finally {
    await sim.stop();
  }
  return out;
}

// --- memory, burst and the runtime path: 200 inverters, each its own simulator and endpoint ----

interface Fleet {
  devices: DeviceConfig[];
  pid: number;
  stop(): Promise<void>;
}

/** Runs a worker role to its end; resolves with the one JSON line it prints. */
function runWorker<T>(worker: string, nodeArgs: string[], args: string[], timeoutMs: number, env: Record<string, string> = {}): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...nodeArgs, worker, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let out = '';
    let err = '';
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (code !== 0) return reject(new Error(`modbus worker ${args[0] ?? ''} exited ${String(code)}: ${err}`));
      try {
        resolve(JSON.parse(out.trim().split('\n').pop() ?? '') as T);
      } catch {
        reject(new Error(`modbus worker ${args[0] ?? ''}: no result: ${out.slice(-500)} ${err}`));
      }
    });
  });
}

async function startFleet(worker: string, count: number): Promise<Fleet> {
  const child = spawn(process.execPath, [worker, 'sim', '--count', String(count)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
  const stop = (): Promise<void> =>
    new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 5000).unref();
    });
  try {
    const devices = await new Promise<DeviceConfig[]>((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error(`${count} simulators: no configuration in 60 s`)), 60_000);
      child.once('exit', (code) => reject(new Error(`simulators exited (${String(code)}): ${stderr}`)));
      child.stdout?.on('data', (d: Buffer) => {
        out += d.toString();
        if (!out.includes('\n')) return;
        clearTimeout(timer);
        try {
          resolve((JSON.parse(out) as { devices: DeviceConfig[] }).devices);
        } catch (err) {
          reject(err as Error);
        }
      });
    });
    return { devices, pid: child.pid as number, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

function writeConfig(devices: DeviceConfig[]): string {
  const file = path.join(fs.mkdtempSync('/tmp/mbbench-'), 'adapter.json');
  fs.writeFileSync(file, JSON.stringify({ siteId: SITE, devices, registerMaps: {} }));
  return file;
}

/** How the recipe runs the adapter on this architecture: node's options before main.js, and MALLOC_ARENA_MAX. */
export interface AdapterRuntime {
  nodeArgs: string[];
  env: Record<string, string>;
}

export function adapterRuntimeOf(projectRoot: string): AdapterRuntime {
  const recipe = YAML.parse(fs.readFileSync(path.join(projectRoot, 'recipes', 'com.dcmms.edge.ModbusAdapter.yaml'), 'utf8')) as {
    Manifests: { Platform?: { architecture?: string }; Lifecycle?: { Run?: { Script?: string; Setenv?: Record<string, string> } } }[];
  };
  const arch = process.arch === 'arm64' ? 'aarch64' : 'amd64';
  const run = recipe.Manifests.find((m) => m.Platform?.architecture === arch)?.Lifecycle?.Run;
  const words = (run?.Script ?? '').split(/\s+/);
  const env = run?.Setenv?.['MALLOC_ARENA_MAX'];
  return { nodeArgs: words.filter((w) => w.startsWith('--')), env: env !== undefined ? { MALLOC_ARENA_MAX: env } : {} };
}

async function memoryRun(worker: string, fleet: Fleet, seconds: number, rt: AdapterRuntime, label: string, log: (l: string) => void): Promise<MemoryRun> {
  log(`modbus: memory (${label}: ${[...rt.nodeArgs, ...Object.entries(rt.env).map(([k, v]) => `${k}=${v}`)].join(' ') || 'node defaults'}), ${fleet.devices.length} inverters (a connection each) every second, 2 reads a poll, ${round(seconds / 60, 1)} min ...`);
  const r = await runWorker<ModbusWorkerResult>(worker, ['--expose-gc', ...rt.nodeArgs], ['adapter', '--config', writeConfig(fleet.devices), '--seconds', String(seconds), '--sample-ms', '10000'], (seconds + 240) * 1000, rt.env);
  const withGc = r.samples.every((s) => s.heapAfterGcBytes !== undefined);
  const run: MemoryRun = {
    runtime: label,
    nodeArgs: rt.nodeArgs,
    env: rt.env,
    devices: r.devices,
    readsPerPoll: 2,
    pollIntervalMs: fleet.devices[0]?.pollIntervalMs ?? 0,
    minutes: round(r.seconds / 60, 2),
    polls: r.polls,
    pollsPerS: round(r.polls / r.seconds),
    failures: r.failures,
    overruns: r.overruns,
    cpuSPer1000Polls: round(((r.cpuUserS + r.cpuSystemS) / Math.max(1, r.polls)) * 1000, 3),
    rss: series(r.samples, (s) => s.rssBytes),
    rssEndSplitMiB: { anon: round((r.samples[r.samples.length - 1]?.rssAnonBytes ?? 0) / MIB), file: round((r.samples[r.samples.length - 1]?.rssFileBytes ?? 0) / MIB) },
    heapUsed: series(r.samples, (s) => s.heapUsedBytes),
    ...(withGc ? { heapAfterGc: series(r.samples, (s) => s.heapAfterGcBytes ?? 0) } : {}),
    meanIntervalMs: r.meanIntervalMs,
    rssEvery10sMiB: r.samples.map((s) => round(s.rssBytes / MIB)),
  };
  log(`modbus:   RSS ${run.rss.firstMiB} -> ${run.rss.lastMiB} MiB (max ${run.rss.maxMiB}, ${run.rss.slopeSecondHalfMiBPerMin} MiB/min in the second half), heap after GC ${run.heapAfterGc?.firstMiB ?? '-'} -> ${run.heapAfterGc?.lastMiB ?? '-'} MiB, ${run.cpuSPer1000Polls} CPU s / 1000 polls`);
  return run;
}

async function burstRun(worker: string, fleet: Fleet, seconds: number, spread: boolean, log: (l: string) => void): Promise<BurstRun> {
  log(`modbus: burst, ${fleet.devices.length} inverters, start times ${spread ? 'spread over the interval' : 'all at once'}, ${seconds} s ...`);
  const r = await runWorker<ModbusWorkerResult>(worker, [], ['adapter', '--config', writeConfig(fleet.devices), '--seconds', String(seconds), '--sample-ms', String(seconds * 1000), '--spread', String(spread), '--burst-seconds', String(seconds)], (seconds + 240) * 1000);
  if (!r.burst) throw new Error('modbus worker: no burst figures');
  log(`modbus:   requests per 10 ms: max ${r.burst.maxPer10Ms}, p99 ${r.burst.p99Per10Ms}, median ${r.burst.p50Per10Ms}; ${r.burst.idleWindowsPercent} % of windows idle`);
  return { spread, ...r.burst };
}

function readArgv(pid: string): string[] {
  try {
    const raw = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return (raw.endsWith('\0') ? raw.slice(0, -1) : raw).split('\0');
  } catch {
    return [];
  }
}

/** A deployed component's node process (not the `sh -c` around it), by its artifact path under the nucleus root. */
async function componentPid(n: NucleusProcess, component: string): Promise<number> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    for (const entry of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      const argv = readArgv(entry);
      const main = argv.slice(1).find((a) => !a.startsWith('-')) ?? '';
      if ((path.basename(argv[0] ?? '') === 'node' || argv[0] === process.execPath) && main.startsWith(n.root) && main.includes(component) && main.endsWith('main.js')) return Number(entry);
    }
    if (Date.now() > deadline) throw new Error(`no ${component} process under ${n.root}`);
    await delay(100);
  }
}

async function runtimePath(projectRoot: string, worker: string, fleet: Fleet, seconds: number, log: (l: string) => void): Promise<RuntimePathRun> {
  const cli = path.join(projectRoot, 'dist', 'cli.js');
  const build = path.join(projectRoot, 'greengrass-build');
  const version = (JSON.parse(fs.readFileSync(path.join(projectRoot, 'package.json'), 'utf8')) as { version: string }).version;
  const recipe = `${ADAPTER}-${version}.yaml`;
  if (!fs.existsSync(cli) || !fs.existsSync(path.join(build, 'recipes', recipe))) throw new Error(`${cli} or greengrass-build/recipes/${recipe} is missing: run 'npm run build' first (npm run bench does)`);
  log(`modbus: through the local runtime, the built adapter with ${fleet.devices.length} inverters and a telemetry subscriber, ${seconds} s ...`);
  const n = await NucleusProcess.start({ cliPath: cli });
  let ok = false;
  try {
    // The recipe and artifacts copied out of greengrass-build/ first: a build running meanwhile
    // rewrites that folder (see processor-runtime.ts).
    const snap = path.join(n.root, 'bench-build');
    fs.mkdirSync(path.join(snap, 'recipes'), { recursive: true });
    fs.copyFileSync(path.join(build, 'recipes', recipe), path.join(snap, 'recipes', recipe));
    fs.cpSync(path.join(build, 'artifacts', ADAPTER, version), path.join(snap, 'artifacts', ADAPTER, version), { recursive: true });
    const update = { [ADAPTER]: { MERGE: { siteId: SITE, devices: fleet.devices, registerMaps: {} } } };
    const { code, output } = await runCli([cli, 'deployment', 'create', '--root', n.root, '--recipeDir', path.join(snap, 'recipes'), '--artifactDir', path.join(snap, 'artifacts'), '--merge', `${ADAPTER}=${version}`, '--update-config', JSON.stringify(update), '--wait']);
    if (code !== 0 || !output.includes('SUCCEEDED')) throw new Error(`deployment of ${ADAPTER} failed (exit ${String(code)}):\n${output}\n${n.componentLog(ADAPTER)}`);
    const pid = await componentPid(n, ADAPTER);
    const name = 'com.bench.ModbusSink';
    const run = [shellQuote(process.execPath), shellQuote(worker), 'sink', '--name', name, '--site', SITE, '--warmup', '10', '--seconds', String(seconds)].join(' ');
    const adapterSampler = new ProcSampler(pid, 1000);
    const nucleusSampler = new ProcSampler(n.pid, 1000, (argv) => (argv.includes(worker) ? 'subscriber' : undefined));
    adapterSampler.start();
    nucleusSampler.start();
    let r: SinkResult;
    try {
      await n.deploy([workerRecipe(name, 'dCMMS Edge ModbusAdapter benchmark: a raw telemetry subscriber, as the Processor is', [{ description: 'reads raw telemetry', operations: ['aws.greengrass#SubscribeToTopic'], resources: [pubsubResource('rawTelemetry')] }], run)]);
      const file = path.join(n.workDir(name), RESULT_FILE);
      const deadline = Date.now() + (seconds + 120) * 1000;
      while (!fs.existsSync(file)) {
        if (Date.now() > deadline) throw new Error(`no result from ${name}\n${n.componentLog(name)}\n${n.componentLog(ADAPTER)}`);
        await delay(500);
      }
      r = JSON.parse(fs.readFileSync(file, 'utf8')) as SinkResult;
      if (r.role === 'error') throw new Error(`${name} failed: ${r.error ?? '?'}\n${n.componentLog(name)}`);
    } finally {
      adapterSampler.stop();
      nucleusSampler.stop();
    }
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kbMiB = (k: string): number => round((Number(new RegExp(`^${k}:\\s+(\\d+) kB$`, 'm').exec(status)?.[1] ?? 0) * 1024) / MIB);
    const from = BigInt(r.startNs);
    const to = BigInt(r.endNs);
    const a = adapterSampler.window(from, to);
    const w = nucleusSampler.window(from, to);
    const wallS = Number(to - from) / 1e9;
    const sub = w.childrenCpuPercent['subscriber'] ?? 0;
    const per1000 = (cpuPercent: number): number => round((((cpuPercent / 100) * wallS) / Math.max(1, r.received)) * 1000, 3);
    const rss = adapterSampler.samples.filter((x) => x.t >= from && x.t <= to).map((x) => x.rssBytes / MIB);
    const out: RuntimePathRun = {
      devices: fleet.devices.length,
      seconds: round(wallS),
      polls: r.received,
      pollsPerS: round(r.received / wallS),
      cpuSPer1000Polls: { adapter: per1000(a.cpuPercent), nucleus: per1000(w.cpuPercent), subscriber: per1000(sub) },
      cpuPercent: { adapter: round(a.cpuPercent), nucleus: round(w.cpuPercent), subscriber: round(sub), other: round(Math.max(0, w.machineCpuPercent - w.cpuPercent - sub - a.cpuPercent)) },
      adapterRssMiB: { first: round(rss[0] ?? 0), last: round(rss[rss.length - 1] ?? 0), max: round(Math.max(...rss)) },
      adapterRssEndSplitMiB: { anon: kbMiB('RssAnon'), file: kbMiB('RssFile') },
    };
    log(`modbus:   ${out.pollsPerS} polls/s; CPU s per 1000 polls: adapter ${out.cpuSPer1000Polls.adapter}, nucleus ${out.cpuSPer1000Polls.nucleus}, subscriber ${out.cpuSPer1000Polls.subscriber}; adapter RSS ${out.adapterRssMiB.first} -> ${out.adapterRssMiB.last} MiB`);
    ok = true;
    return out;
  } finally {
    await n.stop({ keepRoot: !ok });
    if (!ok) log(`modbus: runtime path failed; nucleus root kept at ${n.root}`);
  }
}

/** Theoretical RTU transaction: request + response characters, plus a t3.5 silence after each. */
function rtuTheory(baud: number, requestBytes: number, responseBytes: number): { bits: number; perS: number } {
  const bits = (requestBytes + responseBytes) * BITS_PER_CHAR;
  const t35Ms = baud > 19200 ? 1.75 : (3.5 * BITS_PER_CHAR * 1000) / baud;
  const ms = (bits * 1000) / baud + 2 * t35Ms;
  return { bits, perS: 1000 / ms };
}

async function rtuRun(baud: number, paced: boolean, devicesOnBus: number, seconds: number, log: (l: string) => void): Promise<RtuRun> {
  const regs = Array.from({ length: RTU_REGISTERS }, (_v, i) => i);
  const server = await startPymodbus({ hr: { 0: regs } }, { framer: 'rtu', ...(paced ? { lineBaud: baud } : {}) });
  try {
    const map: RegisterMap = { points: regs.map((i) => ({ name: `r${i}`, address: i, functionCode: 3 as const, type: 'uint16' as const })) };
    const devices: DeviceConfig[] = Array.from({ length: devicesOnBus }, (_v, i) => ({
      assetId: `rtu-${i + 1}`,
      connection: { type: 'rtu', path: server.serialPath as string, baudRate: baud },
      unitId: i + 1,
      pollIntervalMs: 100,
      timeoutMs: 2000,
      profile: { type: 'registerMap', map: 'block' },
    }));
    const counter = { requests: 0 };
    const { adapter } = adapterFor(devices, { block: map }, counter);
    log(`modbus: RTU ${baud} baud${paced ? ' (paced to the line rate)' : ' (unpaced pty)'}, ${devicesOnBus} devices ...`);
    await adapter.start();
    try {
      await until(() => adapter.stats().every((s) => s.polls > 0), 30_000, 'a first poll of every RTU device');
      const m = await measure(adapter, counter, seconds);
      // FC 3 request: unit, fc, address(2), quantity(2), CRC(2) = 8; answer: unit, fc, count, 2n, CRC(2).
      const theory = rtuTheory(baud, 8, 5 + 2 * RTU_REGISTERS);
      const perS = m.requests / m.wallS;
      const run: RtuRun = {
        baud,
        paced,
        devices: devicesOnBus,
        transactionsPerS: round(perS),
        bitsPerTransaction: theory.bits,
        theoreticalTransactionsPerS: round(theory.perS),
        wireUtilisationPercent: round(((perS * theory.bits) / baud) * 100),
        ofTheoreticalPercent: round((perS / theory.perS) * 100),
        failures: m.failures,
      };
      log(`modbus:   ${run.transactionsPerS} transactions/s of ${run.theoreticalTransactionsPerS} theoretical (${run.ofTheoreticalPercent} %), wire ${run.wireUtilisationPercent} %`);
      return run;
    } finally {
      await adapter.close();
    }
  } finally {
    await server.stop();
  }
}

/**
 * Runs both parts and returns the figures. `seconds`: measured time of each step. `json`: quiet
 * (no progress lines on stderr), for a caller that prints only the JSON figures.
 */
export async function runModbusBench(opts: { seconds: number; json: boolean; projectRoot?: string; longMinutes?: number }): Promise<Record<string, unknown>> {
  const log = (l: string): void => {
    if (!opts.json) process.stderr.write(`${l}\n`);
  };
  const tcp = await tcpSteps(opts.seconds, log);
  const rtu: RtuRun[] = [];
  for (const baud of [9600, 115200]) {
    rtu.push(await rtuRun(baud, true, 8, opts.seconds, log));
    // Unpaced, enough devices (polled every 100 ms) that the bus, not the demand, is the limit.
    rtu.push(await rtuRun(baud, false, 128, opts.seconds, log));
  }
  const projectRoot = opts.projectRoot ?? path.resolve(path.dirname(findCli()), '..');
  const worker = bundleWorker(projectRoot, 'modbus-worker.ts', 'bench-modbus-worker.js');
  const fleet = await startFleet(worker, FLEET);
  let memory: MemoryRun;
  let memoryBaseline: MemoryRun;
  const burst: BurstRun[] = [];
  let runtime: RuntimePathRun;
  try {
    // As the recipe runs it (the figure in the docs), then at node's defaults for the side-by-side
    // baseline (12 x --seconds: the level, not the long-run slope).
    memory = await memoryRun(worker, fleet, opts.longMinutes !== undefined ? opts.longMinutes * 60 : 12 * opts.seconds, adapterRuntimeOf(projectRoot), 'as the recipe runs it', log);
    memoryBaseline = await memoryRun(worker, fleet, 12 * opts.seconds, { nodeArgs: [], env: {} }, 'baseline', log);
    for (const spread of [false, true]) burst.push(await burstRun(worker, fleet, Math.max(5, opts.seconds), spread, log));
    runtime = await runtimePath(projectRoot, worker, fleet, 12 * opts.seconds, log);
  } finally {
    await fleet.stop();
  }
  const best = [...tcp].reverse().find((s) => s.sustained && s.connections > 1);
  const bestOne = [...tcp].reverse().find((s) => s.sustained && s.connections === 1);
  return {
    seconds: opts.seconds,
    tcp,
    maxSustainedDevices: best?.devices ?? 0,
    maxSustainedPollsPerS: best?.pollsPerS ?? 0,
    maxSustainedDevicesOneConnection: bestOne?.devices ?? 0,
    maxSustainedPollsPerSOneConnection: bestOne?.pollsPerS ?? 0,
    rtu,
    memory,
    memoryBaseline,
    burst,
    runtime,
  };
}

/** Human-readable table of runModbusBench's figures. */
export function formatModbusReport(f: Record<string, unknown>): string {
  const tcp = (f['tcp'] ?? []) as TcpStep[];
  const rtu = (f['rtu'] ?? []) as RtuRun[];
  const mems = [f['memory'], f['memoryBaseline']].filter((m): m is MemoryRun => m !== undefined);
  const mem = mems[0];
  const burst = (f['burst'] ?? []) as BurstRun[];
  const rt = f['runtime'] as RuntimePathRun | undefined;
  const sf = (x: SeriesFigures | undefined): string => (x ? `${x.firstMiB} -> ${x.lastMiB} MiB (max ${x.maxMiB}), slope ${x.slopeMiBPerMin} MiB/min, second half ${x.slopeSecondHalfMiBPerMin} MiB/min` : '-');
  const extra = [
    '',
    ...mems.flatMap((mem) => [
          `Memory, ${mem.runtime} (${[...mem.nodeArgs, ...Object.entries(mem.env).map(([k, v]) => `${k}=${v}`)].join(' ') || 'node defaults'}): ${mem.devices} inverters (a connection each), every ${mem.pollIntervalMs} ms, ${mem.readsPerPoll} reads a poll, adapter alone in a process, ${mem.minutes} min:`,
          `  polls/s ${mem.pollsPerS} (${mem.polls} polls, ${mem.failures} failed, ${mem.overruns} overruns), ${mem.cpuSPer1000Polls} CPU s per 1000 polls, mean interval ${mem.meanIntervalMs.mean} ms (devices ${mem.meanIntervalMs.min}-${mem.meanIntervalMs.max})`,
          `  RSS        ${sf(mem.rss)}; at the end ${mem.rssEndSplitMiB.anon} MiB anonymous + ${mem.rssEndSplitMiB.file} MiB mapped files`,
          `  heap used  ${sf(mem.heapUsed)}`,
          `  heap after forced GC ${sf(mem.heapAfterGc)}`,
          `  RSS every 10 s (MiB): ${mem.rssEvery10sMiB.join(' ')}`,
        ]),
    ...(burst.length
      ? ['', 'Burst: requests sent per 10 ms window, 200 inverters every second (2 reads a poll):', 'start times                 max  p99  median  idle windows %', ...burst.map((b) => `${(b.spread ? 'spread over the interval' : 'all at once').padEnd(26)}  ${String(b.maxPer10Ms).padStart(3)}  ${String(b.p99Per10Ms).padStart(3)}  ${String(b.p50Per10Ms).padStart(6)}  ${String(b.idleWindowsPercent).padStart(14)}`)]
      : []),
    ...(rt
      ? [
          '',
          `Through the local runtime: the built adapter in a nucleus, ${rt.devices} inverters, a raw telemetry subscriber, ${rt.seconds} s:`,
          `  ${rt.pollsPerS} polls/s; CPU s per 1000 polls: adapter ${rt.cpuSPer1000Polls.adapter}, nucleus ${rt.cpuSPer1000Polls.nucleus}, subscriber ${rt.cpuSPer1000Polls.subscriber} (in-process adapter: ${mem?.cpuSPer1000Polls ?? '-'})`,
          `  CPU %: adapter ${rt.cpuPercent.adapter}, nucleus ${rt.cpuPercent.nucleus}, subscriber ${rt.cpuPercent.subscriber}, other ${rt.cpuPercent.other}; adapter RSS ${rt.adapterRssMiB.first} -> ${rt.adapterRssMiB.last} MiB (max ${rt.adapterRssMiB.max}; at the end ${rt.adapterRssEndSplitMiB.anon} anonymous + ${rt.adapterRssEndSplitMiB.file} mapped files)`,
        ]
      : []),
  ];
  const lines = [
    `TCP, loopback, simulator (one endpoint) in its own process, poll every ${TCP_POLL_MS} ms, ${String(f['seconds'])} s a step:`,
    'connections  devices  polls/s (due)   requests/s  failures  overruns  avg cycle ms  adapter CPU %  adapter RSS MB  simulator CPU %  machine busy %  sustained',
    ...tcp.map((s) => `${String(s.connections).padStart(11)}  ${String(s.devices).padStart(7)}  ${`${s.pollsPerS} (${s.pollsDuePerS})`.padStart(14)}  ${String(s.requestsPerS).padStart(10)}  ${String(s.failures).padStart(8)}  ${String(s.overruns).padStart(8)}  ${String(s.avgCycleMs).padStart(12)}  ${String(s.adapterCpuPercent).padStart(13)}  ${String(s.adapterRssMaxMB).padStart(14)}  ${String(s.simulatorCpuPercent).padStart(15)}  ${String(s.machineBusyPercent).padStart(14)}  ${s.sustained ? 'yes' : 'no'}`),
    `max sustained: ${String(f['maxSustainedDevices'])} devices, ${String(f['maxSustainedPollsPerS'])} polls/s; over one connection: ${String(f['maxSustainedDevicesOneConnection'])} devices, ${String(f['maxSustainedPollsPerSOneConnection'])} polls/s`,
    '',
    `RTU, socat pty + pymodbus RTU framer, FC 3 of ${RTU_REGISTERS} registers per transaction:`,
    'baud     line     devices  transactions/s  theoretical/s  of theoretical %  wire utilisation %  failures',
    ...rtu.map((r) => `${String(r.baud).padStart(6)}  ${(r.paced ? 'paced' : 'unpaced').padEnd(7)}  ${String(r.devices).padStart(7)}  ${String(r.transactionsPerS).padStart(14)}  ${String(r.theoreticalTransactionsPerS).padStart(13)}  ${String(r.ofTheoreticalPercent).padStart(16)}  ${String(r.wireUtilisationPercent).padStart(18)}  ${String(r.failures).padStart(8)}`),
    ...extra,
  ];
  return lines.join('\n');
}

/** Correctness problems for the bench's exit code: failed polls where none should fail. */
export function modbusProblems(f: Record<string, unknown>): string[] {
  const rtu = (f['rtu'] ?? []) as RtuRun[];
  const out = rtu.filter((r) => r.failures > 0).map((r) => `RTU ${r.baud} baud ${r.paced ? 'paced' : 'unpaced'}: ${r.failures} failed polls`);
  const mem = f['memory'] as MemoryRun | undefined;
  if (mem && mem.failures > 0) out.push(`memory run: ${mem.failures} failed polls`);
  return out;
}
