/**
 * The site simulator's emitted device configuration lists the dynamic SunSpec models only, and the
 * adapter with that configuration reads the static ones once: against the simulator (in this
 * process), modbus-serial underneath, every read counted by model (the chain headers discovery
 * reads say which model starts where).
 */
import type { TelemetryMessage } from '../../components/lib/contract';
import { systemClock } from '../../components/lib/clock';
import { validateConfig } from '../../components/lib/config';
import { silentLogger } from '../../components/lib/logger';
import { createMetrics } from '../../components/lib/metrics';
import { RecordingBus } from '../../components/lib/testing/recording-bus';
import { createModbusAdapter } from '../../components/modbus-adapter/adapter';
import { modbusConfigSpec } from '../../components/modbus-adapter/config';
import { modbusSerialTransport, type Transport, type TransportFactory } from '../../components/modbus-adapter/transport';
import { createSiteSimulator, type SiteSimulator } from '../../scripts/simulator';

jest.setTimeout(60_000);

let sim: SiteSimulator;

beforeAll(async () => {
  sim = await createSiteSimulator({ port: 0, inverters: 2, cloudiness: 0 });
});

afterAll(async () => {
  await sim.close();
});

test('the simulator emits a models filter of the dynamic models for each SunSpec device', () => {
  const cfg = sim.deviceConfig();
  const profiles = Object.fromEntries(cfg.devices.map((d) => [d.assetId, d.profile]));
  expect(profiles['INV-01']).toEqual({ type: 'sunspec', baseAddress: 40000, models: [103, 123, 160] });
  expect(profiles['INV-02']).toEqual({ type: 'sunspec', baseAddress: 40000, models: [103, 123, 160] });
  expect(profiles['METER-01']).toEqual({ type: 'sunspec', baseAddress: 40000, models: [203] });
  expect(profiles['WS-01']).toEqual({ type: 'registerMap', map: 'dcmms-sim-weather' });
  // The adapter accepts it as it is.
  expect(() => validateConfig(modbusConfigSpec, { siteId: 's', ...cfg })).not.toThrow();
});

test('with that configuration the adapter reads 1 and 120 once and publishes 120 with the first poll and every statusHeartbeatMs', async () => {
  /** unit -> data address -> model id, from the chain headers discovery reads; reads per unit:model. */
  const modelAt = new Map<string, number>();
  const reads = new Map<string, number>();
  const counting: TransportFactory = (conn) => {
    const t = modbusSerialTransport(conn);
    const w: Transport = {
      get isOpen() {
        return t.isOpen;
      },
      open: () => t.open(),
      close: () => t.close(),
      onClose: (l) => t.onClose(l),
      readRegisters: async (unit, fc, address, count, timeoutMs) => {
        const r = await t.readRegisters(unit, fc, address, count, timeoutMs);
        if (count === 2 && r[0] !== undefined && r[0] !== 0x5375) modelAt.set(`${unit}:${address + 2}`, r[0]);
        const model = modelAt.get(`${unit}:${address}`);
        if (model !== undefined && count > 2) reads.set(`${unit}:${model}`, (reads.get(`${unit}:${model}`) ?? 0) + 1);
        return r;
      },
      readBits: (...a) => t.readBits(...a),
      writeRegisters: (...a) => t.writeRegisters(...a),
      writeCoil: (...a) => t.writeCoil(...a),
    };
    return w;
  };
  const bus = new RecordingBus();
  const cfg = sim.deviceConfig({ pollIntervalMs: 200 });
  const config = validateConfig(modbusConfigSpec, { siteId: 's', statusHeartbeatMs: 1000, ...cfg, devices: cfg.devices.filter((d) => d.profile.type === 'sunspec') });
  const adapter = createModbusAdapter({ bus, logger: silentLogger, metrics: createMetrics({ clock: systemClock }), clock: systemClock, transport: counting }, config);
  await adapter.start();
  const inv = (): TelemetryMessage[] => bus.of<TelemetryMessage>('rawTelemetry', 'INV-01');
  await bus.until(() => inv().length >= 12, 20_000, '12 polls of INV-01');
  await adapter.close();
  const polls = inv().length;
  // Unit 1 (INV-01): model 1 at discovery, 120 once, the dynamic ones every poll.
  expect(reads.get('1:1')).toBe(1);
  expect(reads.get('1:120')).toBe(1);
  for (const m of [103, 123, 160]) expect(reads.get(`1:${m}`)).toBeGreaterThanOrEqual(polls - 1);
  // The meter (unit 100): 1 once, 203 every poll.
  expect(reads.get('100:1')).toBe(1);
  expect(reads.get('100:203')).toBeGreaterThanOrEqual(bus.of<TelemetryMessage>('rawTelemetry', 'METER-01').length - 1);
  // 120 in the first message (the rated power, 60 kW) and again about once a second (every 5th poll).
  const with120 = inv().flatMap((t, i) => ('120.WRtg' in t.points ? [i] : []));
  expect(with120[0]).toBe(0);
  expect(inv()[0]!.points['120.WRtg']).toEqual({ v: 60000, u: 'W', q: 'good' });
  expect(with120.length).toBeGreaterThanOrEqual(2);
  expect(with120.length).toBeLessThanOrEqual(Math.ceil(polls / 5) + 1);
  expect(inv().every((t) => '103.W' in t.points && '160.N' in t.points)).toBe(true);
});
