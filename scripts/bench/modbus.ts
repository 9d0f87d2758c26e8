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
import { sampleProcess } from './proc-sampler';

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
export async function runModbusBench(opts: { seconds: number; json: boolean }): Promise<Record<string, unknown>> {
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
  };
}

/** Human-readable table of runModbusBench's figures. */
export function formatModbusReport(f: Record<string, unknown>): string {
  const tcp = (f['tcp'] ?? []) as TcpStep[];
  const rtu = (f['rtu'] ?? []) as RtuRun[];
  const lines = [
    `TCP, loopback, simulator (one endpoint) in its own process, poll every ${TCP_POLL_MS} ms, ${String(f['seconds'])} s a step:`,
    'connections  devices  polls/s (due)   requests/s  failures  overruns  avg cycle ms  adapter CPU %  adapter RSS MB  simulator CPU %  machine busy %  sustained',
    ...tcp.map((s) => `${String(s.connections).padStart(11)}  ${String(s.devices).padStart(7)}  ${`${s.pollsPerS} (${s.pollsDuePerS})`.padStart(14)}  ${String(s.requestsPerS).padStart(10)}  ${String(s.failures).padStart(8)}  ${String(s.overruns).padStart(8)}  ${String(s.avgCycleMs).padStart(12)}  ${String(s.adapterCpuPercent).padStart(13)}  ${String(s.adapterRssMaxMB).padStart(14)}  ${String(s.simulatorCpuPercent).padStart(15)}  ${String(s.machineBusyPercent).padStart(14)}  ${s.sustained ? 'yes' : 'no'}`),
    `max sustained: ${String(f['maxSustainedDevices'])} devices, ${String(f['maxSustainedPollsPerS'])} polls/s; over one connection: ${String(f['maxSustainedDevicesOneConnection'])} devices, ${String(f['maxSustainedPollsPerSOneConnection'])} polls/s`,
    '',
    `RTU, socat pty + pymodbus RTU framer, FC 3 of ${RTU_REGISTERS} registers per transaction:`,
    'baud     line     devices  transactions/s  theoretical/s  of theoretical %  wire utilisation %  failures',
    ...rtu.map((r) => `${String(r.baud).padStart(6)}  ${(r.paced ? 'paced' : 'unpaced').padEnd(7)}  ${String(r.devices).padStart(7)}  ${String(r.transactionsPerS).padStart(14)}  ${String(r.theoreticalTransactionsPerS).padStart(13)}  ${String(r.ofTheoreticalPercent).padStart(16)}  ${String(r.wireUtilisationPercent).padStart(18)}  ${String(r.failures).padStart(8)}`),
  ];
  return lines.join('\n');
}

/** Correctness problems for the bench's exit code: failed polls where none should fail. */
export function modbusProblems(f: Record<string, unknown>): string[] {
  const rtu = (f['rtu'] ?? []) as RtuRun[];
  return rtu.filter((r) => r.failures > 0).map((r) => `RTU ${r.baud} baud ${r.paced ? 'paced' : 'unpaced'}: ${r.failures} failed polls`);
}
