/**
 * The BUILT LocalHmi (greengrass-build recipe and bundle, started by the local runtime as its own
 * process, talking real IPC with its contract accessControl) beside the built LocalControl:
 *  - its first start logs the admin credential once in its component log, which is how an installer
 *    (and the demo) reads it; a restart logs none;
 *  - an operator acknowledges a critical alarm on the HMI: the HMI publishes the acknowledge
 *    OperatorRequest and the real LocalControl switches the horn off (its `write` of
 *    relay.alarmHorn = false to the I/O asset), and the HMI's audit has the row;
 *  - the process's resident memory with 20 live (SSE) screens while 50 inverters report every
 *    second (docs/local-hmi.md "Measured").
 * A plant component of the test (com.test.Plant) plays the adapter and the Processor: it announces
 * the I/O asset, answers LocalControl's commands and publishes alarms and processed telemetry.
 *
 * Needs `npm run build` first (npm test does it).
 */
import fs from 'node:fs';
import path from 'node:path';
import { CONTRACT_VERSION, filters, pubsubResource, topics, type AlarmMessage, type ControlCommand, type OperatorRequest, type TelemetryMessage } from '../../components/lib/contract';
import { HmiClient, type SseReader } from '../../components/local-hmi/testing/client';
import { connectIpc, type IpcClient } from '../../scripts/runtime/client';
import { version } from '../../package.json';
import { startNucleus, pubsubPolicy, type Harness } from '../helpers/nucleus';
import { waitFor } from '../helpers/wait';

jest.setTimeout(180_000);

const BUILD = path.resolve(__dirname, '../../greengrass-build');
const HMI = 'com.dcmms.edge.LocalHmi';
const CONTROL = 'com.dcmms.edge.LocalControl';
const PLANT = 'com.test.Plant';
const SITE = 'hmi-rt-site';
const FIRST_START = 'first start: admin credential created (shown once)';

let h: Harness;
let plant: IpcClient;
let cli: IpcClient;
const commands: ControlCommand[] = [];
const requests: OperatorRequest[] = [];

const publish = (topic: string, message: object): Promise<unknown> => plant.publishToTopic({ topic, publishMessage: { jsonMessage: { message: message as Record<string, unknown> } } });

function hmiLog(): Array<Record<string, unknown>> {
  const file = path.join(h.root, 'logs', `${HMI}.log`);
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    // `<time> [stdout] <the component's JSON line>` (scripts/runtime/process.ts ComponentLog)
    .map((l) => /^\S+ \[stdout\] (\{.*\})$/.exec(l)?.[1])
    .filter((l): l is string => l !== undefined)
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((l) => l['component'] === 'local-hmi');
}

/** The port of the newest `listening` line after `skip` lines, and a client trusting the generated certificate. */
async function hmiClient(skip: number): Promise<HmiClient> {
  let port = 0;
  await waitFor(() => {
    const l = hmiLog().slice(skip).find((x) => x['msg'] === 'listening');
    port = Number(l?.['port'] ?? 0);
    return port > 0;
  }, 60_000, 'LocalHmi listening');
  const ca = fs.readFileSync(path.join(h.root, 'work', HMI, 'hmi-cert.pem'), 'utf8');
  return new HmiClient(port, ca);
}

/** LocalHmi's node process (the runtime may start it through a shell). */
function hmiPid(): number {
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    let cmd = '';
    try {
      cmd = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0').join(' ');
    } catch {
      continue;
    }
    // This harness's LocalHmi: its artifacts are under this nucleus's root (other tests may run one too).
    if (cmd.includes(h.root) && cmd.includes(HMI) && cmd.includes('main.js') && !cmd.startsWith('sh ') && !cmd.startsWith('/bin/sh')) return Number(d);
  }
  throw new Error('LocalHmi process not found');
}

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0) / 1024;
}

beforeAll(async () => {
  for (const n of [HMI, CONTROL]) {
    if (!fs.existsSync(path.join(BUILD, 'recipes', `${n}-${version}.yaml`))) throw new Error(`greengrass-build/ has no ${n} recipe: run \`npm run build\` (npm test does)`);
  }
  h = await startNucleus();
  const d = await h.deploy([
    {
      name: PLANT,
      accessControl: pubsubPolicy(PLANT, ['PublishToTopic'], [pubsubResource('alarms', { siteId: SITE }), pubsubResource('deviceStatus', { siteId: SITE }), pubsubResource('controlResult', { siteId: SITE }), pubsubResource('processedTelemetry', { siteId: SITE })]),
    },
  ]);
  expect(d.status).toBe('SUCCEEDED');
  plant = await h.client(PLANT);
  cli = await connectIpc(h.nucleus.socketPath, h.nucleus.cliToken);
  // The plant answers every command LocalControl sends to the I/O module.
  h.nucleus.observe(filters.controlCommand(SITE).filter, (_t, m) => {
    if (!('jsonMessage' in m)) return;
    const c = m.jsonMessage as unknown as ControlCommand;
    commands.push(c);
    void publish(topics.controlResult(SITE, c.assetId), { schemaVersion: CONTRACT_VERSION, siteId: SITE, assetId: c.assetId, commandId: c.commandId, ts: Date.now(), status: 'succeeded' });
  });
  h.nucleus.observe(filters.operatorRequest(SITE).filter, (_t, m) => {
    if ('jsonMessage' in m) requests.push(m.jsonMessage as unknown as OperatorRequest);
  });
  const run = await h.run({
    recipeDirectoryPath: path.join(BUILD, 'recipes'),
    artifactsDirectoryPath: path.join(BUILD, 'artifacts'),
    rootComponentsToAdd: { [CONTROL]: version, [HMI]: version },
    configuration: {
      [CONTROL]: { merge: { siteId: SITE, metricsIntervalMs: 1000, startupSettleMs: 0, rules: [] }, reset: [] },
      [HMI]: { merge: { siteId: SITE, metricsIntervalMs: 1000, port: 0, bindAddress: '127.0.0.1' }, reset: [] },
    },
  });
  expect(run.status).toBe('SUCCEEDED');
});

afterAll(async () => {
  await cli?.close().catch(() => undefined);
  await h?.close();
});

let admin: HmiClient;
let password: string;

test('first start: the component log holds the admin credential once, and it logs in', async () => {
  admin = await hmiClient(0);
  const lines = hmiLog().filter((l) => l['msg'] === FIRST_START);
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatchObject({ level: 'warn', username: 'admin', url: `https://${String(lines[0]!['url']).split('//')[1]!.split(':')[0]}:${admin.port}/` });
  password = String(lines[0]!['password']);
  expect((await admin.login('admin', password)).status).toBe(200);
  expect(hmiLog().filter((l) => JSON.stringify(l).includes(password))).toHaveLength(1);
});

test('acknowledge on the HMI: the OperatorRequest goes out and the real LocalControl switches the horn off', async () => {
  const now = Date.now();
  await publish(topics.deviceStatus(SITE, 'IO-01'), { schemaVersion: CONTRACT_VERSION, siteId: SITE, assetId: 'IO-01', ts: now, state: 'online', lastSeen: now, consecutiveFailures: 0 });
  const a: AlarmMessage = { schemaVersion: CONTRACT_VERSION, siteId: SITE, assetId: 'INV-01', alarmId: 'gf-1', type: 'ground_fault', severity: 'critical', state: 'raised', ts: Date.now(), source: 'processor', message: 'ground fault', transition: 'raised', transitionSeq: 0 };
  await publish(topics.alarms(SITE, 'INV-01'), a);
  const horn = (value: boolean) => commands.some((c) => c.assetId === 'IO-01' && c.action === 'write' && c.params['point'] === 'relay.alarmHorn' && c.params['value'] === value);
  await waitFor(() => horn(true), 30_000, 'LocalControl switches the horn on');
  await waitFor(async () => ((await admin.request('GET', '/api/alarms')).json as Array<{ alarmId: string }>).some((r) => r.alarmId === 'gf-1'), 10_000, 'the HMI lists the alarm');
  const res = await admin.request('POST', '/api/alarms/gf-1/acknowledge', { reason: 'crew on site', confirm: true });
  expect(res.status).toBe(202);
  const { requestId } = res.json as { requestId: string };
  await waitFor(() => requests.some((r) => r.requestId === requestId), 10_000, 'the OperatorRequest on the bus');
  expect(requests.find((r) => r.requestId === requestId)).toMatchObject({ action: 'acknowledge', alarmId: 'gf-1', operator: 'admin', assetId: 'INV-01', reason: 'crew on site' });
  await waitFor(() => horn(false), 30_000, 'LocalControl switches the horn off');
  const audit = (await admin.request('GET', '/api/audit')).json as Array<{ action: string; target: string; outcome: string; user: string }>;
  expect(audit.find((x) => x.action === 'acknowledge' && x.target === 'gf-1')).toMatchObject({ user: 'admin', outcome: 'sent' });
  const row = ((await admin.request('GET', '/api/alarms')).json as Array<{ alarmId: string; acknowledged?: { by: string } }>).find((r) => r.alarmId === 'gf-1');
  expect(row?.acknowledged?.by).toBe('admin');
});

test('RSS with 20 live screens while 50 inverters report every second (goal < 100 MiB)', async () => {
  const screens: SseReader[] = [];
  const pid = hmiPid();
  const idle = rssMiB(pid);
  for (let i = 0; i < 20; i++) {
    const c = new HmiClient(admin.port, admin.ca);
    expect((await c.login('admin', password)).status).toBe(200);
    screens.push(await c.events());
  }
  expect(screens.every((s) => s.status === 200)).toBe(true);
  const before = rssMiB(pid);
  let peak = before;
  const seconds = 20;
  let seq = 0;
  for (let s = 0; s < seconds; s++) {
    const ts = Date.now();
    seq++;
    await Promise.all(
      Array.from({ length: 50 }, (_, i) => {
        const assetId = `INV-${String(i + 1).padStart(2, '0')}`;
        const points: TelemetryMessage['points'] = {};
        for (let p = 0; p < 40; p++) points[`103.P${p}`] = { v: Math.round(Math.random() * 1000), u: 'W', q: 'good' };
        points['103.W'] = { v: 40_000 + i, u: 'W', q: 'good' };
        return publish(topics.processedTelemetry(SITE, assetId), { schemaVersion: CONTRACT_VERSION, siteId: SITE, assetId, ts, seq, points });
      }),
    );
    await new Promise((r) => setTimeout(r, 1000));
    peak = Math.max(peak, rssMiB(pid));
  }
  await waitFor(() => screens.every((s) => s.events.filter((e) => e.event === 'telemetry').length >= 50 * (seconds - 1)), 20_000, 'every screen got the telemetry');
  const after = rssMiB(pid);
  const health = (await admin.request('GET', '/api/health')).json as { hmi: { sseClients: number; sseDropped: number } };
  expect(health.hmi.sseClients).toBe(20);
  expect(health.hmi.sseDropped).toBe(0);
  console.log(`LocalHmi RSS: ${idle.toFixed(1)} MiB running with one session, ${before.toFixed(1)} MiB after 20 logins with 20 screens open, peak ${peak.toFixed(1)} MiB, ${after.toFixed(1)} MiB after ${seconds} s of 50 inverters x 41 points at 1 Hz`);
  expect(peak).toBeLessThan(100);
  for (const s of screens) s.close();
});

test('a restart logs no credential; the same password still logs in', async () => {
  const skip = hmiLog().length;
  const r = await cli.restartComponent({ componentName: HMI });
  expect(r.restartStatus).toBe('SUCCEEDED');
  const again = await hmiClient(skip);
  expect(hmiLog().filter((l) => l['msg'] === FIRST_START)).toHaveLength(1);
  expect((await again.login('admin', password)).status).toBe(200);
});
