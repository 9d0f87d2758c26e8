/**
 * Device start times are spread across the poll interval: device i of n (the enabled devices, in
 * configuration order) polls first i x its interval / n after start, then on that phase, so n
 * devices do not send their requests in the same millisecond every interval. In-memory Modbus
 * peer, FakeClock.
 */
import type { TelemetryMessage } from '../../components/lib/contract';
import { validateConfig } from '../../components/lib/config';
import { silentLogger } from '../../components/lib/logger';
import { createMetrics } from '../../components/lib/metrics';
import { FakeClock } from '../../components/lib/testing/fake-clock';
import { RecordingBus } from '../../components/lib/testing/recording-bus';
import { createModbusAdapter, startOffsets, type ModbusAdapter } from '../../components/modbus-adapter/adapter';
import { modbusConfigSpec, type ModbusAdapterConfig } from '../../components/modbus-adapter/config';
import { MemoryModbus } from '../../components/modbus-adapter/testing/memory-modbus';

const map = { points: [{ name: 'a', address: 0, functionCode: 3, type: 'uint16' }] };
const dev = (i: number, pollIntervalMs = 1000): Record<string, unknown> => ({
  assetId: `d-${i}`,
  // Each on an endpoint of its own, so nothing waits for a shared connection.
  connection: { type: 'tcp', host: `gw-${i}`, port: 502 },
  unitId: 1,
  pollIntervalMs,
  profile: { type: 'registerMap', map: 'm' },
});
const config = (devices: Array<Record<string, unknown>>): ModbusAdapterConfig => validateConfig(modbusConfigSpec, { siteId: 's', statusHeartbeatMs: 0, registerMaps: { m: map }, devices });

interface Rig {
  clock: FakeClock;
  bus: RecordingBus;
  adapter: ModbusAdapter;
  t0: number;
  /** Poll times (telemetry ts) relative to start, per asset. */
  polls: () => Map<string, number[]>;
}

async function rig(devices: Array<Record<string, unknown>>, spreadStarts?: boolean): Promise<Rig> {
  const clock = new FakeClock();
  const bus = new RecordingBus();
  const mem = new MemoryModbus();
  mem.set(1, 0, [7]);
  const adapter = createModbusAdapter({ bus, logger: silentLogger, metrics: createMetrics({ clock }), clock, transport: mem.factory, ...(spreadStarts !== undefined ? { spreadStarts } : {}) }, config(devices));
  const t0 = clock.now();
  await adapter.start();
  const polls = (): Map<string, number[]> => {
    const m = new Map<string, number[]>();
    for (const t of bus.of<TelemetryMessage>('rawTelemetry')) m.set(t.assetId, [...(m.get(t.assetId) ?? []), t.ts - t0]);
    return m;
  };
  return { clock, bus, adapter, t0, polls };
}

/** Most polls whose ts fall in one 10 ms window. */
function burst(times: number[]): number {
  const windows = new Map<number, number>();
  for (const t of times) windows.set(Math.floor(t / 10), (windows.get(Math.floor(t / 10)) ?? 0) + 1);
  return Math.max(...windows.values());
}

describe('device start offsets', () => {
  test('device i of n starts i x interval / n after start (each with its own interval)', () => {
    const offsets = startOffsets([
      { assetId: 'a', pollIntervalMs: 1000 },
      { assetId: 'b', pollIntervalMs: 1000 },
      { assetId: 'c', pollIntervalMs: 5000 },
      { assetId: 'd', pollIntervalMs: 1000 },
    ]);
    expect([...offsets]).toEqual([
      ['a', 0],
      ['b', 250],
      ['c', 2500],
      ['d', 750],
    ]);
    expect([...startOffsets(Array.from({ length: 3 }, (_v, i) => ({ assetId: `x${i}`, pollIntervalMs: 1000 })))].map(([, o]) => o)).toEqual([0, 333, 666]);
  });

  test('four devices poll on four phases of the second, each then every interval on its own', async () => {
    const r = await rig([dev(0), dev(1), dev(2), dev(3)]);
    await r.clock.advanceAsync(3999);
    expect([...r.polls()]).toEqual([
      ['d-0', [0, 1000, 2000, 3000]],
      ['d-1', [250, 1250, 2250, 3250]],
      ['d-2', [500, 1500, 2500, 3500]],
      ['d-3', [750, 1750, 2750, 3750]],
    ]);
    await r.adapter.close();
  });

  test('200 devices every second: at most 2 polls in any 10 ms window (all 200 in one without the spread)', async () => {
    const devices = Array.from({ length: 200 }, (_v, i) => dev(i));
    const spread = await rig(devices);
    await spread.clock.advanceAsync(4999);
    const all = [...spread.polls().values()].flat();
    expect(all).toHaveLength(1000);
    expect(burst(all)).toBe(2);
    await spread.adapter.close();

    const together = await rig(devices, false);
    await together.clock.advanceAsync(4999);
    expect(burst([...together.polls().values()].flat())).toBe(200);
    await together.adapter.close();
  });

  test('a device added by a configuration change starts at its own offset; the others keep their phase', async () => {
    const r = await rig([dev(0), dev(1)]);
    await r.clock.advanceAsync(1000);
    // At +1000 (a slot of d-0): d-2 joins as device 2 of 3, so a third of the interval later.
    await r.adapter.reconfigure!(config([dev(0), dev(1), dev(2)]), config([dev(0), dev(1)]));
    await r.clock.advanceAsync(2999);
    const p = r.polls();
    expect(p.get('d-0')).toEqual([0, 1000, 2000, 3000]);
    expect(p.get('d-1')).toEqual([500, 1500, 2500, 3500]);
    expect(p.get('d-2')).toEqual([1666, 2666, 3666]);
    await r.adapter.close();
  });
});
