/**
 * ModbusAdapter.reconfigure in detail (in-memory Modbus peer, FakeClock): what restarts what.
 * The end-to-end behaviour against the simulator is in test/integration/modbus-reconfigure.test.ts.
 */
import type { ControlCommand, ControlResult, DeviceStatus, TelemetryMessage } from '../../components/lib/contract';
import { validateConfig } from '../../components/lib/config';
import { silentLogger } from '../../components/lib/logger';
import { createMetrics } from '../../components/lib/metrics';
import { FakeClock } from '../../components/lib/testing/fake-clock';
import { RecordingBus } from '../../components/lib/testing/recording-bus';
import { createModbusAdapter, type ModbusAdapter } from '../../components/modbus-adapter/adapter';
import { modbusConfigSpec, type ModbusAdapterConfig } from '../../components/modbus-adapter/config';
import { MemoryModbus } from '../../components/modbus-adapter/testing/memory-modbus';

const map = { points: [{ name: 'a', address: 0, functionCode: 3, type: 'uint16', writable: true }] };
const dev = (assetId: string, unitId: number, host = 'gw'): Record<string, unknown> => ({ assetId, connection: { type: 'tcp', host, port: 502 }, unitId, pollIntervalMs: 1000, profile: { type: 'registerMap', map: 'm' } });

function config(extra: Record<string, unknown>): ModbusAdapterConfig {
  return validateConfig(modbusConfigSpec, { siteId: 's1', registerMaps: { m: map }, statusHeartbeatMs: 0, ...extra });
}

describe('ModbusAdapter.reconfigure', () => {
  let clock: FakeClock;
  let bus: RecordingBus;
  let mem: MemoryModbus;
  let adapter: ModbusAdapter;
  let current: ModbusAdapterConfig;

  async function start(cfg: ModbusAdapterConfig): Promise<void> {
    clock = new FakeClock();
    bus = new RecordingBus();
    mem = new MemoryModbus();
    for (let u = 1; u <= 4; u++) mem.set(u, 0, [u]);
    current = cfg;
    // Every device polls first at start (the spread of start times is modbus-offsets.test.ts's).
    adapter = createModbusAdapter({ bus, logger: silentLogger, metrics: createMetrics({ clock }), clock, transport: mem.factory, spreadStarts: false }, cfg);
    await adapter.start();
    await clock.advanceAsync(0);
  }

  async function change(extra: Record<string, unknown>): Promise<void> {
    const next = config(extra);
    await adapter.reconfigure!(next, current);
    current = next;
    await clock.advanceAsync(0);
  }

  const telemetry = (assetId: string, site = 's1'): TelemetryMessage[] => bus.published.filter((p) => p.topic === `site/${site}/scada/${assetId}/telemetry`).map((p) => p.payload as TelemetryMessage);
  const onlines = (assetId: string): number => bus.of<DeviceStatus>('deviceStatus', assetId).filter((s) => s.state === 'online').length;

  afterEach(async () => {
    await adapter.close();
    expect(clock.pending).toBe(0);
    expect(bus.invalid).toEqual([]);
  });

  test('an endpoint maxConnections change replaces its link and restarts only its devices', async () => {
    await start(config({ devices: [dev('a', 1), dev('b', 2), dev('c', 3, 'other')] }));
    expect(mem.connections).toBe(2);
    await change({ devices: [dev('a', 1), dev('b', 2), dev('c', 3, 'other')], endpoints: { 'gw:502': { maxConnections: 2 } } });
    expect([onlines('a'), onlines('b'), onlines('c')]).toEqual([2, 2, 1]);
    // The new gw link opens two connections (a and b poll at once on restart); other's is kept.
    expect(mem.connections).toBe(4);
    expect(new Set(mem.requests.filter((r) => r.unit === 3).map((r) => r.connection)).size).toBe(1);
    await clock.advanceAsync(3000);
    // Sequence numbers go on across the restart.
    expect(telemetry('a').map((t) => t.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(telemetry('c').map((t) => t.seq)).toEqual([1, 2, 3, 4]);
  });

  test('reconnect settings replace every link; a removed device that comes back starts a new sequence', async () => {
    await start(config({ devices: [dev('a', 1), dev('b', 2, 'other')] }));
    await change({ devices: [dev('a', 1)] });
    await clock.advanceAsync(2000);
    expect(telemetry('b')).toHaveLength(1);
    await change({ devices: [dev('a', 1), dev('b', 2, 'other')], reconnectInitialMs: 100 });
    expect(telemetry('b').map((t) => t.seq)).toEqual([1, 1]);
    expect(onlines('a')).toBe(2);
  });

  test('a siteId change moves telemetry and the command subscription to the new site', async () => {
    await start(config({ devices: [dev('a', 1)] }));
    await change({ siteId: 's2', devices: [dev('a', 1)] });
    await clock.advanceAsync(1000);
    expect(telemetry('a', 's2').map((t) => t.seq)).toEqual([1, 2]);
    const cmd = (siteId: string, commandId: string): ControlCommand => ({ schemaVersion: 1, siteId, assetId: 'a', commandId, ts: clock.now(), action: 'write', params: { point: 'a', value: 9 }, issuedBy: 'local-control' });
    await bus.deliver('controlCommand', 'site/s2/control/a/command', cmd('s2', 'k1'), { strict: true });
    await clock.advanceAsync(0);
    expect(bus.of<ControlResult>('controlResult').map((r) => [r.siteId, r.status])).toEqual([['s2', 'succeeded']]);
    expect(bus.subscribed()).toEqual(['controlCommand']);
  });

  test('a write waiting for a device that is removed is answered failed, not lost', async () => {
    await start(config({ devices: [dev('a', 1)] }));
    const release = mem.holdWrites();
    const cmd = (commandId: string): ControlCommand => ({ schemaVersion: 1, siteId: 's1', assetId: 'a', commandId, ts: clock.now(), action: 'write', params: { point: 'a', value: 9 }, issuedBy: 'local-control' });
    await bus.deliver('controlCommand', 'site/s1/control/a/command', cmd('w1'), { strict: true });
    await bus.deliver('controlCommand', 'site/s1/control/a/command', cmd('w2'), { strict: true });
    await clock.advanceAsync(0);
    const changing = change({ devices: [] });
    release();
    await changing;
    await clock.advanceAsync(0);
    expect(bus.of<ControlResult>('controlResult').map((r) => [r.commandId, r.status, r.message])).toEqual([
      ['w2', 'failed', 'the device is being reconfigured'],
      ['w1', 'succeeded', expect.stringContaining('wrote [9]')],
    ]);
  });
});
