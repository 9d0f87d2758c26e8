/**
 * Live configuration, as a fleet engineer changes a running site: the built CLI runs the nucleus as
 * its own process, the BUILT ModbusAdapter, Processor and Uplink poll the site simulator, and
 * `dcmms-edge deployment create --update-config` changes their configuration.
 *
 *  - A bad alarm rule fails the deployment with the Processor's message (the key and what is
 *    allowed), and nothing restarts.
 *  - A good new alarm rule, a new Uplink route and a longer device list each take effect in the
 *    running processes (same pids): the rule raises its alarm, the route carries alarms (the ones
 *    raised before it existed too: the Uplink asks the Processor's journal) to IoT Core, the added
 *    device is polled and stored.
 *  - No sample is lost meanwhile: every device that was configured from the start has a stored
 *    sample (measured, not interpolated) for every poll.
 *
 * Needs `npm run build` first (npm test does it).
 */
import { ChildProcess, execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import mqtt from 'mqtt';
import { IOT_ALL_TOPICS_FILTER, iotTopics, type AlarmMessage, type UplinkBatch } from '../../components/lib/contract';
import { openStoreReader } from '../../components/lib/store';
import { UPLINK_DEFAULTS } from '../../components/uplink/config';
import { createSiteSimulator, type SiteSimulator } from '../../scripts/simulator';
import { version } from '../../package.json';
import { componentPids } from '../helpers/processes';
import { waitFor } from '../helpers/wait';

jest.setTimeout(120_000);

const exec = promisify(execFile);
const PROJECT = path.resolve(__dirname, '../..');
const CLI = path.join(PROJECT, 'dist', 'cli.js');
const BUILD = path.join(PROJECT, 'greengrass-build');
const SITE = 'live-site';
const ADAPTER = 'com.dcmms.edge.ModbusAdapter';
const PROCESSOR = 'com.dcmms.edge.Processor';
const UPLINK = 'com.dcmms.edge.Uplink';
const POLL_MS = 500;

async function cli(...args: string[]): Promise<{ code: number; out: string }> {
  try {
    const r = await exec(process.execPath, [CLI, ...args], { cwd: PROJECT, timeout: 90_000 });
    return { code: 0, out: r.stdout + r.stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof err.code === 'number' ? err.code : 1, out: `${err.stdout ?? ''}${err.stderr ?? ''}` };
  }
}

describe('live configuration of a running site through dcmms-edge deployment create --update-config', () => {
  let root: string;
  let nucleus: ChildProcess;
  let nucleusOut = '';
  let sim: SiteSimulator;
  let cloud: mqtt.MqttClient;
  const cloudAlarms: AlarmMessage[] = [];

  const deploy = (update: Record<string, unknown>, ...more: string[]): Promise<{ code: number; out: string }> =>
    cli('deployment', 'create', '--root', root, '--recipeDir', path.join(BUILD, 'recipes'), '--artifactDir', path.join(BUILD, 'artifacts'), ...more, '--update-config', JSON.stringify(update), '--wait');
  const pids = (): Record<string, number[]> => Object.fromEntries([ADAPTER, PROCESSOR, UPLINK].map((n) => [n, componentPids(root, n, version)]));
  const log = (name: string): string => fs.readFileSync(path.join(root, 'logs', `${name}.log`), 'utf8');

  beforeAll(async () => {
    if (!fs.existsSync(CLI) || !fs.existsSync(path.join(BUILD, 'recipes'))) throw new Error('dist/cli.js or greengrass-build/ is missing: run `npm run build` (npm test does)');
    sim = await createSiteSimulator({ host: '127.0.0.1', port: 0, inverters: 2, cloudiness: 0, startTime: new Date(Date.UTC(2026, 3, 15, 12, 0, 0)), timeScale: 1 });
    root = fs.mkdtempSync('/tmp/gg-live-');
    nucleus = spawn(process.execPath, [CLI, 'nucleus', '--root', root, '--thing-name', 'live-gateway'], { cwd: PROJECT, stdio: ['ignore', 'pipe', 'inherit'] });
    nucleus.stdout!.on('data', (d: Buffer) => (nucleusOut += d.toString()));
    await waitFor(() => /"msg":"nucleus started"/.test(nucleusOut), 30_000, 'nucleus start');
    const started = nucleusOut.split('\n').find((l) => l.includes('"msg":"nucleus started"'))!;
    cloud = await mqtt.connectAsync((JSON.parse(started) as { broker: string }).broker, { protocolVersion: 4 });
    cloud.on('message', (topic, payload) => {
      if (topic !== iotTopics.alarms(SITE)) return;
      for (const a of (JSON.parse(gunzipSync(payload).toString('utf8')) as UplinkBatch).items) cloudAlarms.push(a as AlarmMessage);
    });
    await cloud.subscribeAsync(IOT_ALL_TOPICS_FILTER, { qos: 1 });
  });

  afterAll(async () => {
    await cloud?.endAsync();
    if (nucleus && nucleus.exitCode === null) {
      nucleus.kill('SIGTERM');
      await new Promise((r) => nucleus.once('exit', r));
    }
    await sim?.close();
    if (root) fs.rmSync(root, { recursive: true, force: true });
  });

  it('applies good changes in place without losing a sample, and refuses a bad one with its message', async () => {
    const all = sim.deviceConfig({ pollIntervalMs: POLL_MS });
    const initial = { ...all, devices: all.devices.filter((d) => d.assetId !== 'IO-01') };
    const assets = all.devices.map((d) => d.assetId);
    // 1. The site, with IO-01 not configured yet and alarms routed to S3 only (off): the Uplink takes no alarms.
    const first = await deploy(
      {
        [ADAPTER]: { MERGE: { siteId: SITE, ...initial } },
        [PROCESSOR]: { MERGE: { siteId: SITE, assets } },
        [UPLINK]: { MERGE: { siteId: SITE, routes: { ...UPLINK_DEFAULTS.routes, alarms: ['s3'] } } },
      },
      '--merge', `${ADAPTER}=${version}`, '--merge', `${PROCESSOR}=${version}`, '--merge', `${UPLINK}=${version}`,
    );
    expect(first.out).toContain('SUCCEEDED');
    const running = pids();
    for (const list of Object.values(running)) expect(list).toHaveLength(1);
    const storeFile = path.join(root, 'work', PROCESSOR, 'raw.db');
    const measured = (assetId: string, point: string): number[] => {
      const r = openStoreReader(storeFile);
      try {
        return r.range({ assetId, point }, 0, 2 ** 46).filter((s) => s.q !== 'interpolated').map((s) => s.ts);
      } finally {
        r.close();
      }
    };
    await waitFor(() => fs.existsSync(storeFile) && measured('INV-01', '103.W').length >= 4, 30_000, 'the first samples stored');

    // 2. A bad rule (a threshold without its limit): the deployment fails with the Processor's message.
    const badRules = [{ id: 'broken', kind: 'threshold', type: 'high_power', severity: 'low', points: ['*.W'], op: 'above' }];
    const bad = await deploy({ [PROCESSOR]: { MERGE: { alarmRules: badRules } } });
    expect(bad.code).not.toBe(0);
    expect(bad.out).toContain('FAILED');
    expect(bad.out).toMatch(/alarmRules\.0\.limit/);
    expect(pids()).toEqual(running);

    // 3. A good new rule: raised by the running Processor.
    const rules = [{ id: 'live-high-power', kind: 'threshold', type: 'high_power', severity: 'low', points: ['103.W'], op: 'above', limit: 1 }];
    expect((await deploy({ [PROCESSOR]: { MERGE: { alarmRules: rules } } })).out).toContain('SUCCEEDED');
    const raised = (): boolean => log(PROCESSOR).split('\n').some((l) => l.includes('"msg":"alarm raised"') && l.includes('"type":"high_power"'));
    await waitFor(raised, 20_000, 'the new rule raising its alarm');
    expect(cloudAlarms).toEqual([]); // alarms are not routed to IoT Core yet

    // 4. Alarms routed to IoT Core: the running Uplink subscribes, and asks the journal for what it missed.
    expect((await deploy({ [UPLINK]: { MERGE: { routes: { ...UPLINK_DEFAULTS.routes, alarms: ['iotcore'] } } } })).out).toContain('SUCCEEDED');
    await waitFor(() => ['INV-01', 'INV-02'].every((a) => cloudAlarms.some((x) => x.type === 'high_power' && x.assetId === a)), 20_000, 'the high_power alarms at IoT Core');

    // 5. IO-01 added to the device list: polled and stored by the running adapter.
    expect((await deploy({ [ADAPTER]: { MERGE: { devices: all.devices } } })).out).toContain('SUCCEEDED');
    await waitFor(() => measured('IO-01', 'di.doorClosed').length >= 3, 20_000, 'IO-01 stored');
    await new Promise((r) => setTimeout(r, 2 * POLL_MS));
    expect(pids()).toEqual(running);

    // No sample lost: for the devices configured from the start, one measured sample per poll.
    for (const a of initial.devices.map((d) => d.assetId)) {
      const ts = measured(a, a.startsWith('INV') ? '103.W' : a.startsWith('CB-') ? 'string1.current' : a === 'METER-01' ? '203.W' : a === 'WS-01' ? 'poa' : 'actualAngle');
      expect(ts.length).toBeGreaterThan(10);
      const gaps = ts.slice(1).map((t, i) => t - ts[i]!);
      expect(Math.max(...gaps)).toBeLessThan(1.5 * POLL_MS);
    }
    expect(log(PROCESSOR)).toContain('configuration applied in place');
    expect(log(UPLINK)).toContain('configuration applied in place');
  });
});
