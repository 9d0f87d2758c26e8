/**
 * Static SunSpec models (1 common, 120 nameplate, and those listed in `staticModels`) are read once
 * per discovery and once per new connection, not every poll; their last values are published in
 * the telemetry of the poll that read them and again every `statusHeartbeatMs`, so a consumer
 * started later (LocalControl learns 120.WRtg from telemetry) has them within a heartbeat. A device
 * whose model 1 identity changed behind a reconnect is discovered again. In-memory Modbus peer with
 * a SunSpec inverter image (models 1, 103, 120, 123, 160), FakeClock.
 */
import type { DeviceStatus, TelemetryMessage } from '../../components/lib/contract';
import { validateConfig } from '../../components/lib/config';
import { silentLogger } from '../../components/lib/logger';
import { createMetrics } from '../../components/lib/metrics';
import { FakeClock } from '../../components/lib/testing/fake-clock';
import { RecordingBus } from '../../components/lib/testing/recording-bus';
import { createModbusAdapter, type ModbusAdapter } from '../../components/modbus-adapter/adapter';
import { modbusConfigSpec } from '../../components/modbus-adapter/config';
import { buildImage, walkImage } from '../../components/modbus-adapter/sunspec';
import { inverterImage } from '../../components/modbus-adapter/testing/images';
import { MemoryModbus } from '../../components/modbus-adapter/testing/memory-modbus';

const BASE = 40000;
const IMAGE = inverterImage();
/** Model id -> address of its first data register (after ID and L). */
const DATA_AT = new Map(walkImage(IMAGE).map((h) => [h.id, BASE + h.offset + 2]));

interface Rig {
  clock: FakeClock;
  bus: RecordingBus;
  mem: MemoryModbus;
  adapter: ModbusAdapter;
  /** Data reads of a model so far (its first register read). */
  reads: (model: number) => number;
  telemetry: () => TelemetryMessage[];
  has120: () => boolean[];
}

async function rig(extra: Record<string, unknown> = {}, profile: Record<string, unknown> = {}): Promise<Rig> {
  const clock = new FakeClock();
  const bus = new RecordingBus();
  const mem = new MemoryModbus();
  mem.set(1, BASE, Array.from(IMAGE));
  const config = validateConfig(modbusConfigSpec, {
    siteId: 's',
    devices: [{ assetId: 'inv', connection: { type: 'tcp', host: 'gw', port: 502 }, unitId: 1, pollIntervalMs: 1000, profile: { type: 'sunspec', baseAddress: BASE, ...profile } }],
    ...extra,
  });
  const adapter = createModbusAdapter({ bus, logger: silentLogger, metrics: createMetrics({ clock }), clock, transport: mem.factory }, config);
  await adapter.start();
  await clock.advanceAsync(0);
  const telemetry = (): TelemetryMessage[] => bus.of<TelemetryMessage>('rawTelemetry');
  return {
    clock,
    bus,
    mem,
    adapter,
    reads: (model) => mem.requests.filter((r) => r.op === 'read' && r.address === DATA_AT.get(model)).length,
    telemetry,
    has120: () => telemetry().map((t) => '120.WRtg' in t.points),
  };
}

describe('static SunSpec models', () => {
  test('120 is read once, published with the first poll and again every statusHeartbeatMs; 103, 123 and 160 every poll', async () => {
    const r = await rig();
    await r.clock.advanceAsync(20_500);
    const t = r.telemetry();
    expect(t).toHaveLength(21);
    expect([r.reads(1), r.reads(120), r.reads(103), r.reads(123), r.reads(160)]).toEqual([1, 1, 21, 21, 21]);
    // Published at +0 (read), then with the first poll 10 s after: +10000 and +20000 (not read).
    expect(r.has120().flatMap((h, i) => (h ? [i] : []))).toEqual([0, 10, 20]);
    expect(t[0]!.points['120.WRtg']).toEqual({ v: 10000, u: 'W', q: 'good' });
    expect(t[10]!.points['120.WRtg']).toEqual(t[0]!.points['120.WRtg']);
    expect(t[1]!.points['103.W']).toEqual({ v: 9560, u: 'W', q: 'good' });
    expect(Object.keys(t[1]!.points).some((k) => k.startsWith('120.') || k.startsWith('1.'))).toBe(false);
    await r.adapter.close();
  });

  test('statusHeartbeatMs 0: static values only with the poll that read them', async () => {
    const r = await rig({ statusHeartbeatMs: 0 });
    await r.clock.advanceAsync(20_500);
    expect(r.has120().flatMap((h, i) => (h ? [i] : []))).toEqual([0]);
    await r.adapter.close();
  });

  test('staticModels adds models to 1 and 120; a device models filter limits the polled ones, statics are read regardless', async () => {
    const r = await rig({ staticModels: [160] }, { models: [103] });
    await r.clock.advanceAsync(4500);
    expect([r.reads(1), r.reads(120), r.reads(160), r.reads(103), r.reads(123)]).toEqual([1, 1, 1, 5, 0]);
    const t = r.telemetry();
    expect(t[0]!.points['160.module.1.DCA']).toEqual({ v: 8.5, u: 'A', q: 'good' });
    expect('160.module.1.DCA' in t[1]!.points).toBe(false);
    expect('123.Conn' in t[0]!.points).toBe(false);
    await r.adapter.close();
  });

  test('a new connection reads the static models (and model 1) again, once', async () => {
    const r = await rig();
    await r.clock.advanceAsync(2500);
    expect([r.reads(1), r.reads(120)]).toEqual([1, 1]);
    r.mem.dropAll();
    await r.clock.advanceAsync(3000);
    // The poll at +3000 reconnects; the next one reads 1 and 120 again; then no more.
    expect(r.mem.connections).toBe(2);
    expect([r.reads(1), r.reads(120)]).toEqual([2, 2]);
    expect(r.has120().flatMap((h, i) => (h ? [i] : []))).toEqual([0, 4]);
    await r.adapter.close();
  });

  test('a rediscovery (rediscoverIntervalMs) reads them again', async () => {
    const r = await rig({ rediscoverIntervalMs: 5000 });
    await r.clock.advanceAsync(10_500);
    expect([r.reads(1), r.reads(120)]).toEqual([3, 3]);
    await r.adapter.close();
  });

  test('another device behind the reconnect (model 1 says so) is walked again', async () => {
    const r = await rig();
    await r.clock.advanceAsync(1500);
    // The device was swapped while the connection was down: another serial number.
    const other = buildImage([{ id: 1, values: { points: { Mn: 'dCMMS', Md: 'SimInverter', SN: 'INV-0002', Vr: '1.0', DA: 1 } } }]);
    r.mem.set(1, BASE + 2, Array.from(other.slice(2, 2 + 2 + 66)));
    r.mem.dropAll();
    await r.clock.advanceAsync(3000);
    const states = r.bus.of<DeviceStatus>('deviceStatus').map((s) => [s.state, s.message]);
    expect(states).toEqual([
      ['online', expect.stringContaining('INV-0001')],
      ['degraded', expect.stringMatching(/SUNSPEC_DEVICE_CHANGED.*INV-0001.*INV-0002/)],
      ['online', expect.stringContaining('INV-0002')],
    ]);
    await r.adapter.close();
  });
});
