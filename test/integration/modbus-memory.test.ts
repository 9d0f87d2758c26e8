/**
 * The adapter's memory stays flat however long it polls. modbus-serial keeps an entry per TCP
 * transaction id (256 per connection) with the request's answer unless transport.ts releases it
 * after each request; without the release a connection held about 0.45 MB of old answers, and an
 * adapter with a connection per device grew by that much per device.
 *
 * The adapter runs in a child process started with --expose-gc (so heapUsed after a forced GC is
 * the live heap, not whatever the collector left), bundled as scripts/build.js bundles a component,
 * and polls the site simulator (in this process) with 64 inverters every 100 ms over 64
 * connections (thousands of polls). The child counts the entries of every modbus-serial client
 * and samples its heap after a forced GC every second.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildSync } from 'esbuild';
import { createSiteSimulator, type SiteSimulator } from '../../scripts/simulator';

jest.setTimeout(90_000);

const ROOT = path.resolve(__dirname, '../..');
const DEVICES = 64;
const INTERVAL_MS = 100;
const SECONDS = 10;

const CHILD = `
import fs from 'node:fs';
import ModbusRTU from 'modbus-serial';
import { systemClock } from './components/lib/clock';
import { validateConfig } from './components/lib/config';
import { silentLogger } from './components/lib/logger';
import { createMetrics } from './components/lib/metrics';
import { createModbusAdapter } from './components/modbus-adapter/adapter';
import { modbusConfigSpec } from './components/modbus-adapter/config';

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with --expose-gc');
const spec = JSON.parse(fs.readFileSync(process.argv[2]!, 'utf8'));
// Every modbus-serial client the transport links to a socket, to count its entries.
const clients = new Set<ModbusRTU>();
const proto = ModbusRTU.prototype as unknown as { linkTCP: (...a: unknown[]) => unknown };
const linkTCP = proto.linkTCP;
proto.linkTCP = function (this: ModbusRTU, ...a: unknown[]) {
  clients.add(this);
  this.on('close', () => clients.delete(this));
  return linkTCP.apply(this, a);
};
// A bus that serialises each message, as the IPC client would, and keeps nothing.
const bus = {
  state: 'connected', criticalDropped: 0,
  connect: async () => undefined,
  publish: async (_t: string, p: object) => (JSON.stringify(p), 'sent'),
  subscribe: async () => ({ close: async () => undefined }),
  close: async () => undefined,
};
const config = validateConfig(modbusConfigSpec, spec);
const adapter = createModbusAdapter({ bus: bus as never, logger: silentLogger, metrics: createMetrics({ clock: systemClock }), clock: systemClock }, config);
const sample = (t: number) => {
  gc();
  const counts = [...clients].map((c) => Object.keys((c as unknown as { _transactions: object })._transactions).length);
  const polls = adapter.stats().reduce((a, s) => a + s.polls, 0);
  const failures = adapter.stats().reduce((a, s) => a + s.failures, 0);
  process.stdout.write(JSON.stringify({ t, heapUsed: process.memoryUsage().heapUsed, clients: counts.length, entries: counts.reduce((a, b) => a + b, 0), maxEntries: Math.max(0, ...counts), polls, failures }) + '\\n');
};
void adapter.start().then(async () => {
  for (let t = 1; t <= Number(process.argv[3]); t++) {
    await new Promise((r) => setTimeout(r, 1000));
    sample(t);
  }
  await adapter.close();
  process.exit(0);
});
`;

interface Sample {
  t: number;
  heapUsed: number;
  clients: number;
  entries: number;
  maxEntries: number;
  polls: number;
  failures: number;
}

let dir: string;
let childJs: string;
let sim: SiteSimulator;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'modbus-memory-'));
  childJs = path.join(dir, 'child.js');
  buildSync({ stdin: { contents: CHILD, resolveDir: ROOT, loader: 'ts', sourcefile: 'child.ts' }, bundle: true, platform: 'node', target: 'node20', outfile: childJs, logLevel: 'error' });
  sim = await createSiteSimulator({ port: 0, inverters: 8, cloudiness: 0 });
});

afterAll(async () => {
  await sim.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

function runChild(spec: object, seconds: number): Promise<Sample[]> {
  const file = path.join(dir, 'config.json');
  fs.writeFileSync(file, JSON.stringify(spec));
  const child = spawn(process.execPath, ['--expose-gc', childJs, file, String(seconds)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve, reject) => {
    child.on('close', (code) => {
      if (code !== 0) reject(new Error(`child exited ${String(code)}: ${err}`));
      else resolve(out.trim().split('\n').map((l) => JSON.parse(l) as Sample));
    });
  });
}

test(`${DEVICES} inverters every ${INTERVAL_MS} ms over ${DEVICES} connections: at most one modbus-serial entry per connection, and a flat heap`, async () => {
  const base = sim.deviceConfig({ pollIntervalMs: INTERVAL_MS });
  const inverters = base.devices.filter((d) => d.profile.type === 'sunspec' && d.assetId.startsWith('INV-'));
  const devices = Array.from({ length: DEVICES }, (_v, i) => ({ ...inverters[i % inverters.length]!, assetId: `INV-${i}` }));
  const endpoint = `${devices[0]!.connection.host}:${devices[0]!.connection.port}`;
  const samples = await runChild({ siteId: 'mem', devices, registerMaps: base.registerMaps, endpoints: { [endpoint]: { maxConnections: DEVICES } } }, SECONDS);
  const last = samples[samples.length - 1]!;
  // Thousands of polls over many connections (about 4,400 on an idle machine; 2,621 seen on a CI
  // machine busy with other suites: the count is the machine's, not the adapter's). A leak of one
  // entry per answer grows the heap by about 3 KB a poll, so 1,500 polls would add over 4 MiB,
  // twice the limit below. A poll timed out by a busy machine is not what this test is about
  // either (a timed-out request's entry is released too).
  expect(last.polls).toBeGreaterThan(1500);
  // At most 5 % timed out (35 of about 2,000 seen while other suites started beside this one).
  expect(last.failures).toBeLessThanOrEqual(Math.ceil(last.polls * 0.05));
  expect(last.clients).toBeGreaterThan(DEVICES / 2);
  // An entry lives only while its request is outstanding (one per connection at most).
  for (const s of samples) expect(s.maxEntries).toBeLessThanOrEqual(1);
  // The live heap after a forced GC does not grow once every connection is open (the first 3 s).
  const warm = samples.find((s) => s.t === 3)!;
  expect(last.heapUsed - warm.heapUsed).toBeLessThan(2 * 1024 * 1024);
});
