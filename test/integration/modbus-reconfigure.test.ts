/**
 * Live configuration of the ModbusAdapter, through the component lifecycle (runComponent with the
 * real bus on FakeNucleus, a configuration update as a deployment makes it) against the site
 * simulator and a second Modbus TCP server: devices added start, devices removed stop (their link
 * is closed when no device uses it), changed devices restart, and an unchanged device keeps
 * polling without a gap (consecutive seq, sample times one interval apart, no restart). A change of
 * a register map or of the default timeout restarts exactly the devices that use it.
 */
import { EventEmitter } from 'node:events';
import { runComponent, type ProcessLike } from '../../components/lib/component';
import type { DeviceStatus, TelemetryMessage } from '../../components/lib/contract';
import { FakeNucleus } from '../../components/lib/testing/fake-ipc';
import { createModbusAdapter } from '../../components/modbus-adapter/adapter';
import { modbusConfigSpec } from '../../components/modbus-adapter/config';
import { FaultyModbusServer } from '../../components/modbus-adapter/testing/faulty-server';
import { inverterImage } from '../../components/modbus-adapter/testing/images';
import { createSiteSimulator, type SiteSimulator } from '../../scripts/simulator';

jest.setTimeout(60_000);

const SITE = 'site-1';
const POLL_MS = 500;

class FakeProcess extends EventEmitter implements ProcessLike {
  readonly exits: number[] = [];
  exit(code: number): void {
    this.exits.push(code);
  }
}

async function until(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('ModbusAdapter reconfigure (live configuration)', () => {
  let sim: SiteSimulator;
  let other: FaultyModbusServer;
  const nucleus = new FakeNucleus({ componentName: 'com.dcmms.edge.ModbusAdapter' });
  const proc = new FakeProcess();
  const lines: string[] = [];
  let done: Promise<number> | undefined;

  beforeAll(async () => {
    sim = await createSiteSimulator({ port: 0 });
    other = new FaultyModbusServer({ 40000: inverterImage() });
    await other.listen();
  });

  afterAll(async () => {
    if (done) {
      proc.emit('SIGTERM');
      await done;
    }
    await sim?.close();
    await other?.close();
  });

  const telemetry = (assetId: string): TelemetryMessage[] =>
    nucleus.published.filter((p) => p.topic === `site/${SITE}/scada/${assetId}/telemetry`).map((p) => p.message as TelemetryMessage);
  /** Status changes (not heartbeats). */
  const statuses = (assetId: string): DeviceStatus[] =>
    nucleus.published.filter((p) => p.topic === `site/${SITE}/devices/${assetId}/status`).map((p) => p.message as DeviceStatus).filter((s) => !s.heartbeat);

  it('adds, removes and restarts devices while the unchanged ones poll on without a gap', async () => {
    const base = sim.deviceConfig({ pollIntervalMs: POLL_MS });
    const dev = (id: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({ ...base.devices.find((d) => d.assetId === id)!, ...extra });
    const x01 = { assetId: 'X-01', connection: { type: 'tcp', host: '127.0.0.1', port: other.port }, unitId: 1, pollIntervalMs: POLL_MS, profile: { type: 'sunspec' } };
    const first = {
      siteId: SITE,
      registerMaps: base.registerMaps,
      devices: [dev('INV-01', { timeoutMs: 1000 }), dev('INV-02'), dev('METER-01'), dev('WS-01'), x01],
    };
    nucleus.config = first;
    const run = runComponent(
      { name: 'com.dcmms.edge.ModbusAdapter', version: '9.9.9', config: modbusConfigSpec, create: (deps, cfg) => createModbusAdapter(deps, cfg) },
      { process: proc, createIpcClient: nucleus.factory, write: (l) => lines.push(l) },
    );
    done = run.done;
    expect(await run.running).toBe(true);
    await until(() => ['INV-01', 'INV-02', 'METER-01', 'WS-01', 'X-01'].every((a) => telemetry(a).length >= 2), 20_000, 'telemetry from every device');
    expect(other.openConnections).toBe(1);

    // Change 1: WS-01 and X-01 (the only device at the other server) go, TRK-01 comes, INV-02 polls slower.
    const second = { ...first, devices: [dev('INV-01', { timeoutMs: 1000 }), dev('INV-02', { pollIntervalMs: 2 * POLL_MS }), dev('METER-01'), dev('TRK-01')] };
    nucleus.config = second;
    nucleus.configChanged(['devices']);
    await until(() => telemetry('TRK-01').length >= 2, 20_000, 'the added tracker');
    const applied1 = Date.now();
    await until(() => other.openConnections === 0, 10_000, 'the unused link closed');
    const ws = telemetry('WS-01').length;
    const x = telemetry('X-01').length;
    const inv1 = telemetry('INV-01').length;
    await until(() => telemetry('INV-01').length >= inv1 + 4, 20_000, 'INV-01 polling on');
    await until(() => telemetry('INV-02').filter((t) => t.ts > applied1 + 2 * POLL_MS).length >= 3, 20_000, 'INV-02 polling at its new interval');
    expect(telemetry('WS-01')).toHaveLength(ws);
    expect(telemetry('WS-01').every((t) => t.ts < applied1)).toBe(true);
    expect(telemetry('X-01')).toHaveLength(x);

    // Change 2: a register map (the tracker's loses a point) and the default timeout (INV-01 has its own).
    const trackerMap = base.registerMaps['dcmms-sim-tracker']!;
    const third = {
      ...second,
      defaultTimeoutMs: 1500,
      registerMaps: { ...base.registerMaps, 'dcmms-sim-tracker': { points: trackerMap.points.filter((p) => p.name !== 'sunElevation') } },
    };
    const meterOnline = statuses('METER-01').filter((s) => s.state === 'online').length;
    const change2 = Date.now();
    nucleus.config = third;
    nucleus.configChanged(['registerMaps']);
    await until(() => telemetry('TRK-01').some((t) => !('sunElevation' in t.points)), 20_000, 'the tracker on its new map');
    await until(() => statuses('METER-01').filter((s) => s.state === 'online').length > meterOnline, 20_000, 'METER-01 restarted (default timeout changed)');
    const inv1b = telemetry('INV-01').length;
    await until(() => telemetry('INV-01').length >= inv1b + 4, 20_000, 'INV-01 polling on');

    // INV-01 was never touched: one status change (online, at start), consecutive seq, one interval between samples.
    const t1 = telemetry('INV-01');
    expect(statuses('INV-01').map((s) => s.state)).toEqual(['online']);
    expect(t1.map((t) => t.seq)).toEqual(t1.map((_t, i) => i + 1));
    const gaps = t1.slice(1).map((t, i) => t.ts - t1[i]!.ts);
    expect({ longest: Math.max(...gaps), ok: gaps.every((g) => g < 1.5 * POLL_MS) }).toEqual({ longest: Math.max(...gaps), ok: true });
    // INV-02 was restarted by change 1 (its poll interval) and by change 2 (it has no timeout of its
    // own), and kept its sequence; it now polls every 2 intervals.
    const t2 = telemetry('INV-02');
    expect(t2.map((t) => t.seq)).toEqual(t2.map((_t, i) => i + 1));
    expect(statuses('INV-02').map((s) => s.state)).toEqual(['online', 'online', 'online']);
    const late = t2.filter((t) => t.ts > applied1 + 2 * POLL_MS && t.ts < change2);
    expect(late.length).toBeGreaterThanOrEqual(2);
    expect(late.slice(1).every((t, i) => t.ts - late[i]!.ts > 1.5 * POLL_MS)).toBe(true);
    // METER-01 restarted once (change 2), not at change 1.
    expect(statuses('METER-01').map((s) => s.state)).toEqual(['online', 'online']);
    // In place: no internal restart of the component, no exit.
    expect(lines.filter((l) => l.includes('configuration applied in place'))).toHaveLength(2);
    expect(lines.some((l) => l.includes('internal restart'))).toBe(false);
    expect(proc.exits).toEqual([]);
  });
});
