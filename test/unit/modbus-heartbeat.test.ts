/**
 * Device status on a heartbeat: every statusHeartbeatMs each device's current status is published
 * again with `heartbeat: true`, so a consumer started later (the Processor learns the site's assets
 * from device status) sees every device; a change of state is still published at once, without
 * the flag. In-memory Modbus peer, FakeClock.
 */
import type { DeviceStatus } from '../../components/lib/contract';
import { validateConfig } from '../../components/lib/config';
import { silentLogger } from '../../components/lib/logger';
import { createMetrics } from '../../components/lib/metrics';
import { FakeClock } from '../../components/lib/testing/fake-clock';
import { RecordingBus } from '../../components/lib/testing/recording-bus';
import { createModbusAdapter, type ModbusAdapter } from '../../components/modbus-adapter/adapter';
import { modbusConfigSpec } from '../../components/modbus-adapter/config';
import { MemoryModbus } from '../../components/modbus-adapter/testing/memory-modbus';

const SITE = 'site-1';

/** Close while time moves on (a request to the silent unit ends at its timeout). */
async function closeAll(clock: FakeClock, adapter: ModbusAdapter): Promise<void> {
  const closing = adapter.close();
  await clock.advanceAsync(1000);
  await closing;
}

async function rig(extra: Record<string, unknown> = {}): Promise<{ clock: FakeClock; bus: RecordingBus; mem: MemoryModbus; adapter: ModbusAdapter }> {
  const clock = new FakeClock();
  const bus = new RecordingBus();
  const mem = new MemoryModbus();
  mem.set(1, 0, [10, 20]);
  mem.set(2, 0, [30, 40]);
  mem.silent.add(2);
  const device = (assetId: string, unitId: number): Record<string, unknown> => ({ assetId, connection: { type: 'tcp', host: `gw-${unitId}`, port: 502 }, unitId, pollIntervalMs: 1000, timeoutMs: 500, profile: { type: 'registerMap', map: 'm' } });
  const config = validateConfig(modbusConfigSpec, {
    siteId: SITE,
    offlineAfterFailures: 1,
    registerMaps: { m: { points: [{ name: 'a', address: 0, functionCode: 3, type: 'uint16' }, { name: 'b', address: 1, functionCode: 3, type: 'uint16' }] } },
    devices: [device('dev-1', 1), device('dev-2', 2)],
    ...extra,
  });
  // Both devices poll first at start (the spread of start times is modbus-offsets.test.ts's).
  const adapter = createModbusAdapter({ bus, logger: silentLogger, metrics: createMetrics({ clock }), clock, transport: mem.factory, spreadStarts: false }, config);
  await adapter.start();
  return { clock, bus, mem, adapter };
}

describe('device status heartbeat', () => {
  test('every statusHeartbeatMs (default 10 s) each device current status is repeated with heartbeat: true', async () => {
    const { clock, bus, adapter } = await rig();
    await clock.advanceAsync(1000);
    const changes = bus.of<DeviceStatus>('deviceStatus');
    expect(changes.map((s) => [s.assetId, s.state, s.heartbeat])).toEqual([
      ['dev-1', 'online', undefined],
      ['dev-2', 'offline', undefined],
    ]);
    const t0 = clock.now();
    await clock.advanceAsync(30_000);
    const beats = bus.of<DeviceStatus>('deviceStatus').filter((s) => s.heartbeat === true);
    expect(beats.map((s) => [s.assetId, s.state])).toEqual([
      ['dev-1', 'online'],
      ['dev-2', 'offline'],
      ['dev-1', 'online'],
      ['dev-2', 'offline'],
      ['dev-1', 'online'],
      ['dev-2', 'offline'],
    ]);
    // Current, not a copy of the last change: ts is now, lastSeen and failures move on.
    const d1 = beats.filter((s) => s.assetId === 'dev-1');
    expect(d1.map((s) => s.ts - t0)).toEqual([9000, 19000, 29000]);
    expect(d1[2]!.lastSeen).toBeGreaterThan(d1[0]!.lastSeen!);
    const d2 = beats.filter((s) => s.assetId === 'dev-2');
    expect(d2[2]!.consecutiveFailures).toBeGreaterThan(d2[0]!.consecutiveFailures);
    expect(d2[0]!.message).toMatch(/MODBUS_TIMEOUT/);
    expect(bus.invalid).toEqual([]);
    await closeAll(clock, adapter);
  });

  test('a change of state is published at once, without the flag', async () => {
    const { clock, bus, mem, adapter } = await rig();
    await clock.advanceAsync(10_500);
    mem.silent.delete(2);
    const before = bus.of<DeviceStatus>('deviceStatus').length;
    await clock.advanceAsync(1000);
    const next = bus.of<DeviceStatus>('deviceStatus').slice(before);
    expect(next).toEqual([expect.objectContaining({ assetId: 'dev-2', state: 'online' })]);
    expect(next[0]).not.toHaveProperty('heartbeat');
    await closeAll(clock, adapter);
  });

  test('statusHeartbeatMs 0 disables it; other values are 1000..3600000', async () => {
    const { clock, bus, adapter } = await rig({ statusHeartbeatMs: 0 });
    await clock.advanceAsync(60_000);
    expect(bus.of<DeviceStatus>('deviceStatus').filter((s) => s.heartbeat)).toEqual([]);
    expect(bus.of<DeviceStatus>('deviceStatus')).toHaveLength(2);
    await closeAll(clock, adapter);
    expect(clock.pending).toBe(0);
    expect(validateConfig(modbusConfigSpec, { siteId: SITE }).statusHeartbeatMs).toBe(10_000);
    expect(() => validateConfig(modbusConfigSpec, { siteId: SITE, statusHeartbeatMs: 500 })).toThrow(/statusHeartbeatMs/);
  });
});
