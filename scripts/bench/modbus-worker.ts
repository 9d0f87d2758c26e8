/**
 * The ModbusAdapter benchmark's processes (./modbus.ts), bundled to dist/bench-modbus-worker.js:
 *
 *   node bench-modbus-worker.js sim --count N
 *       N site simulators with one inverter each, each on its own port of 127.0.0.1 (so each
 *       inverter is an endpoint of its own, as inverters with their own addresses are, and the
 *       adapter opens a connection per device). Prints one JSON line, the adapter's device
 *       configuration, and serves until SIGTERM.
 *   node [--expose-gc] bench-modbus-worker.js adapter --config FILE --seconds S --sample-ms MS
 *             [--spread true|false] [--burst-seconds B]
 *       One adapter, alone in this process (so RSS and heap are the adapter's), on the system
 *       clock, modbus-serial underneath, telemetry to a bus that serialises each message as the IPC
 *       client would and keeps nothing. After every device's first poll it measures for S seconds:
 *       RSS and heap every MS (heap also after a forced GC when run with --expose-gc), CPU, polls,
 *       the mean interval between each device's telemetry timestamps, and for the first B seconds
 *       the requests sent per 10 ms window. Prints one JSON line (ModbusWorkerResult) and exits.
 *   node bench-modbus-worker.js sink --name N --site S --warmup W --seconds D
 *       A component run by the local runtime (the unmodified SDK IPC client): subscribes to raw
 *       telemetry as the Processor does, waits W seconds after the first message, counts messages
 *       for D seconds, writes result.json (SinkResult) to its work folder and exits.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { systemClock } from '../../components/lib/clock';
import { validateConfig } from '../../components/lib/config';
import { filters } from '../../components/lib/contract';
import { silentLogger } from '../../components/lib/logger';
import { createMetrics } from '../../components/lib/metrics';
import { createModbusAdapter } from '../../components/modbus-adapter/adapter';
import { modbusConfigSpec, type DeviceConfig } from '../../components/modbus-adapter/config';
import { modbusSerialTransport, type Transport, type TransportFactory } from '../../components/modbus-adapter/transport';
import { createSiteSimulator, type SiteSimulator } from '../simulator';
import { RESULT_FILE } from './ipc-protocol';

export interface MemorySample {
  /** Seconds since the measurement began. */
  t: number;
  rssBytes: number;
  heapUsedBytes: number;
  /** After a forced GC (only with --expose-gc). */
  heapAfterGcBytes?: number;
  /** /proc/self/status: anonymous memory (heap, native allocations) and mapped files (the node binary, shared). */
  rssAnonBytes: number;
  rssFileBytes: number;
  polls: number;
}

export interface BurstFigures {
  seconds: number;
  requests: number;
  /** Requests sent in one 10 ms window: the most, the 99th percentile and the median over every window. */
  maxPer10Ms: number;
  p99Per10Ms: number;
  p50Per10Ms: number;
  /** Share of 10 ms windows without a request, %. */
  idleWindowsPercent: number;
}

export interface ModbusWorkerResult {
  devices: number;
  seconds: number;
  polls: number;
  failures: number;
  overruns: number;
  requests: number;
  cpuUserS: number;
  cpuSystemS: number;
  samples: MemorySample[];
  /** Per device: (last ts - first ts) / (polls - 1) inside the measurement; summarised over devices. */
  meanIntervalMs: { min: number; mean: number; max: number };
  burst?: BurstFigures;
}

export interface SinkResult {
  role: 'sink' | 'error';
  error?: string;
  received: number;
  assets: number;
  /** hrtime ns of the counting window. */
  startNs: string;
  endNs: string;
}

const MODELS_POLLED = [103, 160];

async function runSim(count: number): Promise<void> {
  const sims: SiteSimulator[] = [];
  const devices: DeviceConfig[] = [];
  for (let i = 0; i < count; i++) {
    const sim = await createSiteSimulator({ port: 0, inverters: 1, cloudiness: 0, seed: i + 1 });
    sims.push(sim);
    const inv = sim.deviceConfig().devices.find((d) => d.assetId === 'INV-01');
    if (!inv) throw new Error('the simulator has no INV-01');
    // Two reads a poll (AC measurements and the MPPT inputs).
    devices.push({ ...inv, assetId: `INV-${String(i + 1).padStart(3, '0')}`, profile: { type: 'sunspec', baseAddress: 40000, models: MODELS_POLLED } });
  }
  process.stdout.write(`${JSON.stringify({ devices })}\n`);
  await new Promise<void>((resolve) => process.once('SIGTERM', () => resolve()));
  await Promise.all(sims.map((s) => s.close()));
  process.exit(0);
}

function quantile(sorted: number[], q: number): number {
  return sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

function burstOf(times: number[], fromMs: number, seconds: number): BurstFigures {
  const bins = new Array<number>(Math.round(seconds * 100)).fill(0);
  for (const t of times) {
    const i = Math.floor((t - fromMs) / 10);
    if (i >= 0 && i < bins.length) bins[i] += 1;
  }
  const sorted = [...bins].sort((a, b) => a - b);
  return {
    seconds,
    requests: bins.reduce((a, b) => a + b, 0),
    maxPer10Ms: sorted[sorted.length - 1] ?? 0,
    p99Per10Ms: quantile(sorted, 0.99),
    p50Per10Ms: quantile(sorted, 0.5),
    idleWindowsPercent: Math.round((bins.filter((b) => b === 0).length / bins.length) * 1000) / 10,
  };
}

async function runAdapter(o: { config: string; seconds: number; sampleMs: number; spread: boolean; burstSeconds: number }): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  const spec = JSON.parse(fs.readFileSync(o.config, 'utf8')) as Record<string, unknown>;
  const config = validateConfig(modbusConfigSpec, spec);
  const firstTs = new Map<string, number>();
  const lastTs = new Map<string, number>();
  const counted = new Map<string, number>();
  let measuring = false;
  const bus = {
    state: 'connected',
    criticalDropped: 0,
    connect: async () => undefined,
    async publish(topic: string, payload: { ts?: number; assetId?: string; points?: unknown }) {
      JSON.stringify(payload);
      if (measuring && payload.points !== undefined && typeof payload.assetId === 'string' && typeof payload.ts === 'number') {
        if (!firstTs.has(payload.assetId)) firstTs.set(payload.assetId, payload.ts);
        lastTs.set(payload.assetId, payload.ts);
        counted.set(payload.assetId, (counted.get(payload.assetId) ?? 0) + 1);
      }
      void topic;
      return 'sent' as const;
    },
    subscribe: async () => ({ close: async () => undefined }),
    close: async () => undefined,
  };
  let requests = 0;
  const sent: number[] = [];
  let recordUntil = 0;
  const mark = (): void => {
    requests += 1;
    const now = performance.now();
    if (now < recordUntil) sent.push(now);
  };
  const transport: TransportFactory = (conn) => {
    const t = modbusSerialTransport(conn);
    const w: Transport = {
      get isOpen() {
        return t.isOpen;
      },
      open: () => t.open(),
      close: () => t.close(),
      onClose: (l) => t.onClose(l),
      readRegisters: (...a) => (mark(), t.readRegisters(...a)),
      readBits: (...a) => (mark(), t.readBits(...a)),
      writeRegisters: (...a) => (mark(), t.writeRegisters(...a)),
      writeCoil: (...a) => (mark(), t.writeCoil(...a)),
    };
    return w;
  };
  const adapter = createModbusAdapter({ bus: bus as never, logger: silentLogger, metrics: createMetrics({ clock: systemClock }), clock: systemClock, transport, spreadStarts: o.spread }, config);
  await adapter.start();
  const sum = (k: 'polls' | 'failures' | 'overruns'): number => adapter.stats().reduce((a, s) => a + s[k], 0);
  const deadline = Date.now() + 60_000;
  while (!adapter.stats().every((s) => s.polls > 0)) {
    if (Date.now() > deadline) throw new Error('not every device polled within 60 s');
    await new Promise((r) => setTimeout(r, 100));
  }
  // A full interval more, so every device is on its phase.
  await new Promise((r) => setTimeout(r, Math.max(...config.devices.map((d) => d.pollIntervalMs))));
  const p0 = sum('polls');
  const f0 = sum('failures');
  const o0 = sum('overruns');
  const r0 = requests;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  recordUntil = t0 + o.burstSeconds * 1000;
  measuring = true;
  const samples: MemorySample[] = [];
  const sample = (): void => {
    const m = process.memoryUsage();
    const status = fs.readFileSync('/proc/self/status', 'utf8');
    const kb = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+) kB$`, 'm').exec(status)?.[1] ?? 0) * 1024;
    const s: MemorySample = { t: Math.round((performance.now() - t0) / 100) / 10, rssBytes: m.rss, heapUsedBytes: m.heapUsed, rssAnonBytes: kb('RssAnon'), rssFileBytes: kb('RssFile'), polls: sum('polls') - p0 };
    if (gc) {
      gc();
      s.heapAfterGcBytes = process.memoryUsage().heapUsed;
    }
    samples.push(s);
  };
  sample();
  for (let k = 1; k * o.sampleMs <= o.seconds * 1000; k++) {
    await new Promise((r) => setTimeout(r, Math.max(0, t0 + k * o.sampleMs - performance.now())));
    sample();
  }
  const rest = o.seconds * 1000 - (performance.now() - t0);
  if (rest > 0) await new Promise((r) => setTimeout(r, rest));
  measuring = false;
  const cpu = process.cpuUsage(cpu0);
  const wallS = (performance.now() - t0) / 1000;
  const intervals = [...counted].filter(([, n]) => n > 1).map(([a, n]) => ((lastTs.get(a) ?? 0) - (firstTs.get(a) ?? 0)) / (n - 1));
  const round = (x: number, d = 2): number => Math.round(x * 10 ** d) / 10 ** d;
  const result: ModbusWorkerResult = {
    devices: config.devices.length,
    seconds: round(wallS, 1),
    polls: sum('polls') - p0,
    failures: sum('failures') - f0,
    overruns: sum('overruns') - o0,
    requests: requests - r0,
    cpuUserS: round(cpu.user / 1e6, 3),
    cpuSystemS: round(cpu.system / 1e6, 3),
    samples,
    meanIntervalMs: {
      min: round(Math.min(...intervals)),
      mean: round(intervals.reduce((a, b) => a + b, 0) / Math.max(1, intervals.length)),
      max: round(Math.max(...intervals)),
    },
    ...(o.burstSeconds > 0 ? { burst: burstOf(sent, t0, Math.min(o.burstSeconds, o.seconds)) } : {}),
  };
  await adapter.close();
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(0);
}

function writeResult(r: SinkResult): void {
  const file = path.join(process.cwd(), RESULT_FILE);
  fs.writeFileSync(`${file}.tmp`, JSON.stringify(r));
  fs.renameSync(`${file}.tmp`, file);
}

async function runSink(o: { site: string; warmupS: number; seconds: number }): Promise<void> {
  // Loaded here only: the SDK's native library would otherwise count in the adapter role's RSS.
  const { greengrasscoreipc } = await import('aws-iot-device-sdk-v2');
  const client = greengrasscoreipc.createClient();
  await client.connect();
  let counting = false;
  let received = 0;
  const assets = new Set<string>();
  let first: () => void = () => undefined;
  const firstMessage = new Promise<void>((resolve) => (first = resolve));
  const sub = client.subscribeToTopic({ topic: filters.rawTelemetry(o.site).filter, receiveMode: greengrasscoreipc.model.ReceiveMode.RECEIVE_ALL_MESSAGES });
  sub.on('message', (ev) => {
    first();
    if (!counting) return;
    received += 1;
    const m = ev.jsonMessage?.message as { assetId?: unknown } | undefined;
    if (typeof m?.assetId === 'string') assets.add(m.assetId);
  });
  await sub.activate();
  await firstMessage;
  await new Promise((r) => setTimeout(r, o.warmupS * 1000));
  counting = true;
  const startNs = process.hrtime.bigint();
  await new Promise((r) => setTimeout(r, o.seconds * 1000));
  counting = false;
  const endNs = process.hrtime.bigint();
  writeResult({ role: 'sink', received, assets: assets.size, startNs: String(startNs), endNs: String(endNs) });
  await client.close().catch(() => undefined);
  process.exit(0);
}

function positive(v: string | undefined, flag: string, fallback?: number): number {
  if (v === undefined && fallback !== undefined) return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${flag} must be a number >= 0, not ${String(v)}`);
  return n;
}

async function main(): Promise<void> {
  const [role, ...rest] = process.argv.slice(2);
  const { values } = parseArgs({
    args: rest,
    strict: true,
    options: {
      count: { type: 'string' },
      config: { type: 'string' },
      seconds: { type: 'string' },
      'sample-ms': { type: 'string' },
      spread: { type: 'string' },
      'burst-seconds': { type: 'string' },
      name: { type: 'string' },
      site: { type: 'string' },
      warmup: { type: 'string' },
    },
  });
  switch (role) {
    case 'sim':
      return runSim(positive(values.count, 'count'));
    case 'adapter':
      if (values.config === undefined) throw new Error('--config is required');
      // Never outlive a benchmark that went wrong.
      setTimeout(() => process.exit(3), (positive(values.seconds, 'seconds') + 180) * 1000).unref();
      return runAdapter({
        config: values.config,
        seconds: positive(values.seconds, 'seconds'),
        sampleMs: positive(values['sample-ms'], 'sample-ms', 10_000),
        spread: values.spread !== 'false',
        burstSeconds: positive(values['burst-seconds'], 'burst-seconds', 0),
      });
    case 'sink':
      setTimeout(() => process.exit(3), (positive(values.seconds, 'seconds') + positive(values.warmup, 'warmup', 0) + 180) * 1000).unref();
      return runSink({ site: values.site ?? 's1', warmupS: positive(values.warmup, 'warmup', 0), seconds: positive(values.seconds, 'seconds') });
    default:
      throw new Error(`role must be sim, adapter or sink, not ${JSON.stringify(role)}`);
  }
}

main().catch((err: unknown) => {
  const message = err instanceof Error ? (err.stack ?? err.message) : String(err);
  if (process.argv[2] === 'sink') {
    try {
      writeResult({ role: 'error', error: message, received: 0, assets: 0, startNs: '0', endNs: '0' });
    } catch {
      // nowhere to report it
    }
  }
  process.stderr.write(`${message}\n`);
  process.exit(1);
});
