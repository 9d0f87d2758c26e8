/**
 * `iv_scan` through the ModbusAdapter against the site simulator, configured from the
 * configuration the simulator emits (`sim.deviceConfig()` declares the combiner boxes' IV-scan
 * block): the command's result carries the curve the box measured, which is the string's
 * single-diode curve (`sim.state()`), with the scan's irradiance and temperature; the string's
 * output dropped out for the sweep; refusals and failures come back as results.
 */
import { systemClock } from '../../components/lib/clock';
import { validateConfig } from '../../components/lib/config';
import type { ControlCommand, ControlResult } from '../../components/lib/contract';
import { currentAt, voltageAt } from '../../components/analytics/iv';
import { silentLogger } from '../../components/lib/logger';
import { createMetrics } from '../../components/lib/metrics';
import { RecordingBus } from '../../components/lib/testing/recording-bus';
import { createModbusAdapter, type ModbusAdapter } from '../../components/modbus-adapter/adapter';
import { modbusConfigSpec } from '../../components/modbus-adapter/config';
import { createSiteSimulator, type SiteSimulator } from '../../scripts/simulator';
import { IV_SCAN_MS, IV_SCAN_POINTS } from '../../scripts/simulator/combiner';

const SITE = 'site-1';
const MORNING = Date.UTC(2025, 5, 21, 7, 0, 0);

describe('iv_scan through the ModbusAdapter against the simulator', () => {
  let sim: SiteSimulator;
  let adapter: ModbusAdapter;
  const bus = new RecordingBus();
  let n = 0;

  beforeAll(async () => {
    sim = await createSiteSimulator({ startTime: new Date(MORNING), cloudiness: 0, seed: 7 });
    const all = sim.deviceConfig({ pollIntervalMs: 500 });
    const config = validateConfig(modbusConfigSpec, { siteId: SITE, ...all, devices: all.devices.filter((d) => d.assetId === 'CB-01') });
    adapter = createModbusAdapter({ bus, logger: silentLogger, metrics: createMetrics({ clock: systemClock }), clock: systemClock }, config);
    await adapter.start();
  });

  afterAll(async () => {
    await adapter?.close();
    await sim?.close();
  });

  async function command(action: ControlCommand['action'], params: ControlCommand['params']): Promise<ControlResult> {
    const commandId = `iv-${++n}`;
    await bus.deliver('controlCommand', `site/${SITE}/control/CB-01/command`, { schemaVersion: 1, siteId: SITE, assetId: 'CB-01', commandId, ts: Date.now(), action, params, issuedBy: 'analytics' }, { strict: true });
    await bus.until(() => bus.of<ControlResult>('controlResult').some((r) => r.commandId === commandId), 15_000, `result of ${commandId}`);
    return bus.of<ControlResult>('controlResult').find((r) => r.commandId === commandId)!;
  }

  it('returns the curve of the scanned string: its single-diode curve at the scan, 100 points, with irradiance and temperature', async () => {
    const before = sim.state();
    const started = Date.now();
    const pending = command('iv_scan', { string: 2 });
    // The string is off its input while the box sweeps it.
    await bus.until(() => sim.state().combiners[0].strings[1].iv.scan === 'running', 5_000, 'the sweep under way');
    expect(sim.state().inverters[0].strings[1].a).toBe(0);
    const res = await pending;
    const after = sim.state();
    expect(res).toMatchObject({ status: 'succeeded', message: expect.stringMatching(/IV scan of string 2: 100 points read in 2 requests/) });
    expect(Date.now() - started).toBeGreaterThanOrEqual(IV_SCAN_MS - 50);
    expect(after.inverters[0].strings[1].a).toBeGreaterThan(0.9 * before.inverters[0].strings[1].a);
    const d = res.data!;
    expect(d.kind).toBe('iv_curve');
    expect(d.string).toBe(2);
    expect(d.v).toHaveLength(IV_SCAN_POINTS);
    expect(d.i).toHaveLength(IV_SCAN_POINTS);
    const truth = after.combiners[0].strings[1].iv;
    expect(d.i[0] / currentAt(truth.diode, 0)).toBeCloseTo(1, 2);
    expect(d.v[IV_SCAN_POINTS - 1] / voltageAt(truth.diode, 0)).toBeCloseTo(1, 2);
    expect(d.irradiance).toBeCloseTo(after.weather.poa, -1);
    expect(d.temperature).toBeCloseTo(truth.cellTempC, 0);
    expect(bus.invalid).toEqual([]);
  });

  it('refuses a string the box does not have before any I/O; a scan of an open string fails', async () => {
    const refused = await command('iv_scan', { string: 9 });
    expect(refused).toMatchObject({ status: 'rejected', message: expect.stringMatching(/ivScan.trigger: 9 is outside 1..4/) });
    expect((await command('write', { point: 'string3.closed', value: false })).status).toBe('succeeded');
    const failed = await command('iv_scan', { string: 3 });
    expect(failed).toMatchObject({ status: 'failed', message: expect.stringMatching(/reports the IV scan of string 3 failed/) });
    expect(failed.data).toBeUndefined();
    expect((await command('write', { point: 'string3.closed', value: true })).status).toBe('succeeded');
    // A plain write to the trigger is a write like any other (a declared writable point), and starts a scan.
    expect((await command('write', { point: 'ivScan.trigger', value: 1 })).status).toBe('succeeded');
    await bus.until(() => sim.state().combiners[0].strings[0].iv.scan === 'done', 10_000, 'the scan triggered by a write done');
  });
});
