/**
 * End to end through the local runtime: the site simulator (scripts/simulator) serves a plant on
 * Modbus TCP; the BUILT ModbusAdapter (greengrass-build/ recipe and esbuild bundle, started by the
 * nucleus as its own process) is deployed with the device configuration the simulator emits; a test
 * component, with only the pub/sub rights it needs, receives telemetry from every simulated device
 * over IPC, and curtails an inverter through the contract's control command topic.
 * Needs `npm run build` first (npm test does it).
 */
import fs from 'node:fs';
import path from 'node:path';
import { CONTRACT_VERSION, filters, pubsubResource, topics, type ControlCommand, type ControlResult, type DeviceStatus, type TelemetryMessage } from '../../components/lib/contract';
import type { IpcClient } from '../../scripts/runtime/client';
import { createSiteSimulator, type SiteSimulator } from '../../scripts/simulator';
import { version } from '../../package.json';
import { startNucleus, pubsubPolicy, type Harness } from '../helpers/nucleus';
import { waitFor } from '../helpers/wait';

jest.setTimeout(55_000);

const BUILD = path.resolve(__dirname, '../../greengrass-build');
const ADAPTER = 'com.dcmms.edge.ModbusAdapter';
const OBSERVER = 'com.test.ScadaObserver';
const SITE = 'e2e-site';

interface Received<T> {
  topic: string;
  payload: T;
}

function collect<T>(client: IpcClient, topic: string): { messages: Received<T>[]; ready: Promise<unknown>; close: () => Promise<void> } {
  const messages: Received<T>[] = [];
  const op = client.subscribeToTopic({ topic });
  op.on('message', (m) => {
    const j = m.jsonMessage;
    if (j?.message !== undefined) messages.push({ topic: j.context?.topic ?? '', payload: j.message as T });
  });
  return { messages, ready: op.activate(), close: () => op.close().catch(() => undefined) };
}

describe('ModbusAdapter (built bundle) in the local runtime against the site simulator', () => {
  let sim: SiteSimulator;
  let h: Harness;
  let observer: IpcClient;
  let telemetry: ReturnType<typeof collect<TelemetryMessage>>;
  let status: ReturnType<typeof collect<DeviceStatus>>;
  let results: ReturnType<typeof collect<ControlResult>>;

  beforeAll(async () => {
    if (!fs.existsSync(path.join(BUILD, 'recipes', `${ADAPTER}-${version}.yaml`))) throw new Error('greengrass-build/ has no ModbusAdapter recipe: run `npm run build` (npm test does)');
    // Solar noon at the default site (37 N, 2.5 W) on a fixed spring day, clear sky: every inverter
    // produces well, whatever the date the test runs on.
    const noon = new Date(Date.UTC(2026, 3, 15, 12, 10, 0));
    sim = await createSiteSimulator({ host: '127.0.0.1', port: 0, inverters: 2, cloudiness: 0, startTime: noon, timeScale: 1 });
    h = await startNucleus();
    const observerDeployed = await h.deploy([
      {
        name: OBSERVER,
        // Only what the test needs: subscribe to telemetry, status and results; publish commands.
        accessControl: {
          'aws.greengrass.ipc.pubsub': {
            ...(pubsubPolicy(OBSERVER, ['SubscribeToTopic'], ['rawTelemetry', 'deviceStatus', 'controlResult'].map((f) => pubsubResource(f as 'rawTelemetry', { siteId: SITE })))['aws.greengrass.ipc.pubsub'] as Record<string, unknown>),
            [`${OBSERVER}:pubsub:2`]: { policyDescription: 'sends control commands', operations: ['aws.greengrass#PublishToTopic'], resources: [pubsubResource('controlCommand', { siteId: SITE })] },
          },
        },
      },
    ]);
    expect(observerDeployed.status).toBe('SUCCEEDED');
    observer = await h.client(OBSERVER);
    telemetry = collect<TelemetryMessage>(observer, filters.rawTelemetry(SITE).filter);
    status = collect<DeviceStatus>(observer, filters.deviceStatus(SITE).filter);
    results = collect<ControlResult>(observer, filters.controlResult(SITE).filter);
    await Promise.all([telemetry.ready, status.ready, results.ready]);

    const deployed = await h.run({
      recipeDirectoryPath: path.join(BUILD, 'recipes'),
      artifactsDirectoryPath: path.join(BUILD, 'artifacts'),
      rootComponentsToAdd: { [ADAPTER]: version },
      configuration: { [ADAPTER]: { merge: { siteId: SITE, ...sim.deviceConfig({ pollIntervalMs: 500 }) }, reset: [] } },
    });
    expect(deployed.status).toBe('SUCCEEDED');
  });

  afterAll(async () => {
    await Promise.all([telemetry?.close(), status?.close(), results?.close()]);
    await h?.close();
    await sim?.close();
  });

  const latest = (assetId: string): TelemetryMessage | undefined => telemetry.messages.filter((m) => m.payload.assetId === assetId).at(-1)?.payload;
  const value = (t: TelemetryMessage | undefined, point: string): unknown => t?.points[point]?.v;

  it('publishes telemetry from every simulated device, with plausible values', async () => {
    const assets = sim.devices().map((d) => d.assetId);
    expect(assets.sort()).toEqual(['CB-01', 'CB-02', 'INV-01', 'INV-02', 'IO-01', 'METER-01', 'TRK-01', 'WS-01']);
    await waitFor(() => assets.every((a) => telemetry.messages.some((m) => m.payload.assetId === a)), 30_000, 'telemetry from every device');
    for (const m of telemetry.messages) expect(m.topic).toBe(topics.rawTelemetry(SITE, m.payload.assetId));
    const truth = sim.state();
    for (const inv of ['INV-01', 'INV-02']) {
      const t = latest(inv)!;
      const w = value(t, '103.W') as number;
      const rated = 60_000;
      expect(w).toBeGreaterThan(0.3 * rated);
      expect(w).toBeLessThanOrEqual(rated * 1.01);
      // Within a few percent of the plant's own figure (the sun moves a little between read and now).
      const simW = truth.inverters.find((i) => i.assetId === inv)!.acW;
      expect(Math.abs(w - simW) / simW).toBeLessThan(0.1);
      expect(value(t, '103.St')).toBe('MPPT');
      expect(value(t, '103.Hz')).toBeGreaterThan(49);
      expect(value(t, '103.Hz')).toBeLessThan(61);
      expect(value(t, '160.module.1.DCV')).toBeGreaterThan(300);
      expect(value(t, '160.module.1.DCA')).toBeGreaterThan(1);
      expect(value(t, '103.WH')).toBeGreaterThan(0);
    }
    expect(value(latest('METER-01'), '203.W')).toBeGreaterThan(0); // exporting at noon
    // Plane-of-array irradiance: daylight, below the solar constant, and what the plant says.
    const poa = value(latest('WS-01'), 'poa') as number;
    expect(poa).toBeGreaterThan(200);
    expect(poa).toBeLessThan(1367);
    expect(Math.abs(poa - truth.weather.poa) / truth.weather.poa).toBeLessThan(0.1);
    expect(Math.abs((value(latest('WS-01'), 'ambientTemp') as number) - truth.weather.ambientC)).toBeLessThan(2);
    expect(Math.abs(value(latest('TRK-01'), 'actualAngle') as number)).toBeLessThanOrEqual(55);
    expect(typeof value(latest('IO-01'), 'di.doorClosed')).toBe('boolean');
    await waitFor(() => assets.every((a) => status.messages.some((s) => s.payload.assetId === a && s.payload.state === 'online')), 10_000, 'every device online');
    expect(status.messages.find((s) => s.payload.assetId === 'INV-01' && s.payload.state === 'online')!.payload.models).toEqual([1, 103, 120, 123, 160]);
  });

  it('a curtail command to 20 % succeeds and the inverter output drops, in telemetry and in the plant', async () => {
    const before = value(latest('INV-01'), '103.W') as number;
    expect(before).toBeGreaterThan(20_000);
    const cmd: ControlCommand = { schemaVersion: CONTRACT_VERSION, siteId: SITE, assetId: 'INV-01', commandId: 'e2e-curtail-1', ts: Date.now(), action: 'curtail', params: { percent: 20 }, issuedBy: 'e2e-test' };
    const sent = Date.now();
    await observer.publishToTopic({ topic: topics.controlCommand(SITE, 'INV-01'), publishMessage: { jsonMessage: { message: cmd } } });
    await waitFor(() => results.messages.some((r) => r.payload.commandId === cmd.commandId), 15_000, 'the control result');
    const r = results.messages.find((x) => x.payload.commandId === cmd.commandId)!;
    expect(r.topic).toBe(topics.controlResult(SITE, 'INV-01'));
    expect(r.payload).toMatchObject({ status: 'succeeded', assetId: 'INV-01' });
    expect(r.payload.message).toContain('123.WMaxLimPct=20');
    // Later telemetry: W at or below 20 % of the 60 kW rating, and the limit visible.
    await waitFor(
      () => telemetry.messages.some((m) => m.payload.assetId === 'INV-01' && m.payload.ts > sent && (value(m.payload, '103.W') as number) <= 12_000 * 1.01),
      15_000,
      'curtailed output in telemetry',
    );
    const after = telemetry.messages.filter((m) => m.payload.assetId === 'INV-01' && m.payload.ts > sent).at(-1)!.payload;
    expect(value(after, '123.WMaxLimPct')).toBe(20);
    expect(value(after, '123.WMaxLim_Ena')).toBe('ENABLED');
    expect(value(after, '103.St')).toBe('THROTTLED');
    const inv = sim.state().inverters.find((i) => i.assetId === 'INV-01')!;
    expect(inv).toMatchObject({ limitPct: 20, limitEnabled: true });
    expect(inv.acW).toBeLessThanOrEqual(12_000 * 1.01);
    // The other inverter is untouched.
    expect(sim.state().inverters.find((i) => i.assetId === 'INV-02')!.acW).toBeGreaterThan(20_000);
  });
});
