/**
 * The ModbusAdapter against pymodbus (a Modbus server written by others) over TCP, serving a
 * SunSpec register image built from the model definitions: discovery at 40000 / 0 / 50000, the
 * whole chain decoded (scale factors, not-implemented points, model 160's repeating modules,
 * enums and bitfields as names), scale factors re-read, writes by SunSpec point name and by
 * address with read-back, refusals, and device status.
 */
import { systemClock } from '../../components/lib/clock';
import type { ControlCommand, ControlResult, DeviceStatus, TelemetryMessage } from '../../components/lib/contract';
import { validateConfig } from '../../components/lib/config';
import { silentLogger } from '../../components/lib/logger';
import { createMetrics } from '../../components/lib/metrics';
import { createModbusAdapter, type ModbusAdapter } from '../../components/modbus-adapter/adapter';
import { modbusConfigSpec, type DeviceConfig } from '../../components/modbus-adapter/config';
import { getModel, pointLocation, walkImage } from '../../components/modbus-adapter/sunspec';
import { startPymodbus, type PymodbusServer } from '../../components/modbus-adapter/testing/pymodbus';
import { RecordingBus } from '../../components/lib/testing/recording-bus';
import { inverterImage } from '../../components/modbus-adapter/testing/images';

jest.setTimeout(45_000);

const SITE = 'site-1';

function device(assetId: string, port: number, extra: Partial<DeviceConfig> = {}): DeviceConfig {
  return { assetId, connection: { type: 'tcp', host: '127.0.0.1', port }, unitId: 1, pollIntervalMs: 200, timeoutMs: 1000, profile: { type: 'sunspec' }, ...extra };
}

function command(assetId: string, commandId: string, action: ControlCommand['action'], params: ControlCommand['params']): ControlCommand {
  return { schemaVersion: 1, siteId: SITE, assetId, commandId, ts: Date.now(), action, params, issuedBy: 'local-control' };
}

describe('ModbusAdapter + pymodbus over TCP, SunSpec', () => {
  const servers: PymodbusServer[] = [];
  let at40000: PymodbusServer;
  let at50000: PymodbusServer;
  let adapter: ModbusAdapter | undefined;
  let bus: RecordingBus;

  beforeAll(async () => {
    [at40000, at50000] = await Promise.all([startPymodbus({ hr: { 40000: inverterImage() } }), startPymodbus({ hr: { 50000: inverterImage({ wSf: 1 }) } })]);
    servers.push(at40000, at50000);
    bus = new RecordingBus();
    const config = validateConfig(modbusConfigSpec, {
      siteId: SITE,
      devices: [device('inv-1', at40000.port), device('inv-2', at50000.port)],
    });
    adapter = createModbusAdapter({ bus, logger: silentLogger, metrics: createMetrics({ clock: systemClock }), clock: systemClock }, config);
    await adapter.start();
    await bus.until(() => bus.of('rawTelemetry', 'inv-1').length >= 2 && bus.of('rawTelemetry', 'inv-2').length >= 2, 20_000, 'telemetry from both inverters');
  });

  afterAll(async () => {
    await adapter?.close();
    await Promise.all(servers.map((s) => s.stop()));
  });

  it('discovers the model chain at 40000 and at 50000 and reports it as device status', () => {
    const s1 = bus.of<DeviceStatus>('deviceStatus', 'inv-1');
    const s2 = bus.of<DeviceStatus>('deviceStatus', 'inv-2');
    expect(s1[0]).toMatchObject({ state: 'online', models: [1, 103, 120, 123, 160], consecutiveFailures: 0 });
    expect(s1[0]?.message).toContain('SunSpec at 40000');
    expect(s1[0]?.message).toContain('dCMMS SimInverter INV-0001');
    expect(s2[0]?.message).toContain('SunSpec at 50000');
    expect(bus.invalid).toEqual([]);
  });

  it('decodes every model with scale factors, units, enums and bitfields as names', () => {
    const t = bus.of<TelemetryMessage>('rawTelemetry', 'inv-1')[0]!;
    expect(t.seq).toBe(1);
    expect(Math.abs(t.ts - Date.now())).toBeLessThan(20_000);
    expect(t.points['103.W']).toEqual({ v: 9560, u: 'W', q: 'good' });
    expect(t.points['103.A']).toEqual({ v: 41.5, u: 'A', q: 'good' });
    expect(t.points['103.Hz']).toEqual({ v: 50.01, u: 'Hz', q: 'good' });
    expect(t.points['103.St']).toEqual({ v: 'MPPT', q: 'good' });
    expect(t.points['103.Evt1']?.v).toBe('GROUND_FAULT|OVER_TEMP');
    expect(t.points['120.DERTyp']).toEqual({ v: 'PV', q: 'good' });
    // Not implemented (never given a value): no value, flagged.
    expect(t.points['103.PhVphB']).toEqual({ v: null, u: 'V', q: 'not_implemented' });
    // Scale factor points are applied, not published; model 1 is reported in the status instead.
    expect(t.points['103.W_SF']).toBeUndefined();
    expect(Object.keys(t.points).some((k) => k.startsWith('1.'))).toBe(false);
  });

  it('decodes model 160 repeating modules as numbered groups', () => {
    const t = bus.of<TelemetryMessage>('rawTelemetry', 'inv-1')[0]!;
    expect(t.points['160.N']).toEqual({ v: 3, q: 'good' });
    expect(t.points['160.module.1.DCA']).toEqual({ v: 8.5, u: 'A', q: 'good' });
    expect(t.points['160.module.2.DCV']).toEqual({ v: 605.9, u: 'V', q: 'good' });
    expect(t.points['160.module.3.IDStr']).toEqual({ v: 'MPPT3', q: 'good' });
    expect(t.points['160.module.4.DCA']).toBeUndefined();
  });

  it('applies the device scale factor (W_SF=1 on the second inverter) and re-reads it when it changes', async () => {
    const first = bus.of<TelemetryMessage>('rawTelemetry', 'inv-2')[0]!;
    expect(first.points['103.W']).toEqual({ v: 9560, u: 'W', q: 'good' });
    // Find W_SF in the image and change it to 0 while the raw register stays 956.
    const img = inverterImage({ wSf: 1 });
    const wSfOffset = Array.from(img).findIndex((_v, i) => i > 0 && img[i - 1] === 956 && img[i] === 1);
    expect(wSfOffset).toBeGreaterThan(0);
    await at50000.set('hr', 50000 + wSfOffset, [0]);
    await bus.until(() => bus.of<TelemetryMessage>('rawTelemetry', 'inv-2').some((m) => m.points['103.W']?.v === 956), 10_000, 'W with the new scale factor');
  });

  it('writes WMaxLimPct by name with its scale factor, reads it back, and the register holds raw 500', async () => {
    await bus.deliver('controlCommand', 'site/site-1/control/inv-1/command', command('inv-1', 'c1', 'write', { point: 'WMaxLimPct', value: 50 }), { strict: true });
    await bus.until(() => bus.of<ControlResult>('controlResult').some((r) => r.commandId === 'c1'), 10_000, 'result c1');
    const r = bus.of<ControlResult>('controlResult').find((x) => x.commandId === 'c1')!;
    expect(r).toMatchObject({ status: 'succeeded', assetId: 'inv-1' });
    expect(r.message).toContain('123.WMaxLimPct=50');
    await bus.until(() => bus.of<TelemetryMessage>('rawTelemetry', 'inv-1').some((m) => m.points['123.WMaxLimPct']?.v === 50), 10_000, 'WMaxLimPct 50 in telemetry');
  });

  it('curtails (WMaxLimPct + WMaxLim_Ena) and restores', async () => {
    await bus.deliver('controlCommand', 'site/site-1/control/inv-1/command', command('inv-1', 'c2', 'curtail', { percent: 30 }), { strict: true });
    await bus.until(() => bus.of<ControlResult>('controlResult').some((r) => r.commandId === 'c2'), 10_000, 'result c2');
    expect(bus.of<ControlResult>('controlResult').find((x) => x.commandId === 'c2')).toMatchObject({ status: 'succeeded' });
    await bus.until(
      () => bus.of<TelemetryMessage>('rawTelemetry', 'inv-1').some((m) => m.points['123.WMaxLimPct']?.v === 30 && m.points['123.WMaxLim_Ena']?.v === 'ENABLED'),
      10_000,
      'curtailment visible',
    );
    await bus.deliver('controlCommand', 'site/site-1/control/inv-1/command', command('inv-1', 'c3', 'restore', {}), { strict: true });
    await bus.until(() => bus.of<TelemetryMessage>('rawTelemetry', 'inv-1').some((m) => m.points['123.WMaxLim_Ena']?.v === 'DISABLED'), 10_000, 'restore visible');
  });

  it('refuses read-only points, out-of-range values, and address writes into read-only registers', async () => {
    const cmds: Array<[string, ControlCommand['action'], ControlCommand['params'], RegExp]> = [
      ['r1', 'write', { point: 'W', value: 10 }, /not writable/],
      ['r2', 'write', { point: 'WMaxLimPct', value: 150 }, /outside 0\.\.100/],
      ['r3', 'write', { point: 'Conn', value: 'SOMETIMES' }, /not one of its symbols/],
      ['r4', 'write', { address: 40004, value: 1 }, /not writable/],
      ['r5', 'write', { point: 'NoSuchPoint', value: 1 }, /no discovered model/],
      ['r6', 'isolate_string', { string: 1 }, /not supported/],
    ];
    for (const [id, action, params] of cmds) await bus.deliver('controlCommand', 'site/site-1/control/inv-1/command', command('inv-1', id, action, params), { strict: true });
    await bus.until(() => cmds.every(([id]) => bus.of<ControlResult>('controlResult').some((r) => r.commandId === id)), 10_000, 'all refusals');
    for (const [id, , , why] of cmds) {
      const r = bus.of<ControlResult>('controlResult').find((x) => x.commandId === id)!;
      expect({ id, status: r.status }).toEqual({ id, status: 'rejected' });
      expect(r.message).toMatch(why);
    }
    // Nothing was written: WMaxLimPct still 100 % of the restore above? It was 30; still 30.
    const last = bus.of<TelemetryMessage>('rawTelemetry', 'inv-1').at(-1)!;
    expect(last.points['123.WMaxLimPct']?.v).toBe(30);
  });

  it('writes a writable register by address and reads it back; an address outside every model is refused', async () => {
    const m123 = walkImage(inverterImage()).find((m) => m.id === 123)!;
    const address = 40000 + m123.offset + 2 + pointLocation(getModel(123)!, 'WMaxLimPct_WinTms')!.offset;
    await bus.deliver('controlCommand', 'site/site-1/control/inv-1/command', command('inv-1', 'a0', 'write', { address, value: 60 }), { strict: true });
    await bus.until(() => bus.of<ControlResult>('controlResult').some((r) => r.commandId === 'a0'), 10_000, 'result a0');
    expect(bus.of<ControlResult>('controlResult').find((x) => x.commandId === 'a0')).toMatchObject({ status: 'succeeded' });
    expect(await at40000.get('hr', address, 1)).toEqual([60]);
    await bus.deliver('controlCommand', 'site/site-1/control/inv-2/command', command('inv-2', 'a1', 'write', { address: 40000, value: 7 }), { strict: true });
    await bus.until(() => bus.of<ControlResult>('controlResult').some((r) => r.commandId === 'a1'), 10_000, 'result a1');
    // inv-2 serves SunSpec at 50000: 40000 is in none of its models, so nothing is sent (deny-by-default).
    const r = bus.of<ControlResult>('controlResult').find((x) => x.commandId === 'a1')!;
    expect(r.status).toBe('rejected');
    expect(r.message).toMatch(/not inside any SunSpec model/);
  });

  it('keeps per-device cycle metrics', () => {
    const stats = adapter!.stats();
    expect(stats.map((s) => s.assetId).sort()).toEqual(['inv-1', 'inv-2']);
    for (const s of stats) {
      expect(s.polls).toBeGreaterThan(2);
      expect(s.avgCycleMs).toBeGreaterThan(0);
      expect(s.state).toBe('online');
    }
    expect(bus.invalid).toEqual([]);
  });
});
