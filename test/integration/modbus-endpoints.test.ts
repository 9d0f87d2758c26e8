/**
 * Devices behind one TCP endpoint (a Modbus TCP-to-RTU gateway: several unit ids at one
 * host:port) share one connection with one request outstanding by default; `endpoints` allows up
 * to n connections (n requests outstanding). After a failed request to a unit, that unit is left
 * alone for a recovery pause (as on a serial bus) while the other units go on.
 *
 * Connections and outstanding requests are counted at the server: the misbehaving test server
 * (testing/faulty-server.ts, every answer delayed so requests would overlap if allowed) and
 * pymodbus answering only some unit ids.
 */
import { systemClock } from '../../components/lib/clock';
import type { DeviceStatus, TelemetryMessage } from '../../components/lib/contract';
import { ConfigError } from '../../components/lib/errors';
import { validateConfig } from '../../components/lib/config';
import { silentLogger } from '../../components/lib/logger';
import { createMetrics } from '../../components/lib/metrics';
import { RecordingBus } from '../../components/lib/testing/recording-bus';
import { createModbusAdapter, type ModbusAdapter } from '../../components/modbus-adapter/adapter';
import { modbusConfigSpec, type DeviceConfig } from '../../components/modbus-adapter/config';
import { RTU_DRAIN_MAX_MS } from '../../components/modbus-adapter/link';
import { FaultyModbusServer } from '../../components/modbus-adapter/testing/faulty-server';
import { inverterImage } from '../../components/modbus-adapter/testing/images';
import { startPymodbus, type PymodbusServer } from '../../components/modbus-adapter/testing/pymodbus';
import { modbusSerialTransport, type TransportFactory } from '../../components/modbus-adapter/transport';

jest.setTimeout(60_000);

const SITE = 'site-1';

function sunspecDevice(assetId: string, port: number, unitId: number): DeviceConfig {
  return { assetId, connection: { type: 'tcp', host: '127.0.0.1', port }, unitId, pollIntervalMs: 100, timeoutMs: 1000, profile: { type: 'sunspec' } };
}

describe('devices behind one TCP endpoint', () => {
  let server: FaultyModbusServer;
  let adapter: ModbusAdapter | undefined;

  beforeEach(async () => {
    server = new FaultyModbusServer({ 40000: inverterImage() });
    await server.listen();
    // Every answer 15 ms late: requests sent in parallel would be outstanding together.
    server.setFault({ kind: 'slow', delayMs: 15 });
  });

  afterEach(async () => {
    await adapter?.close();
    adapter = undefined;
    await server.close();
  });

  async function run(extra: Record<string, unknown>): Promise<RecordingBus> {
    const bus = new RecordingBus();
    const config = validateConfig(modbusConfigSpec, { siteId: SITE, devices: [1, 2, 3, 4].map((u) => sunspecDevice(`inv-${u}`, server.port, u)), ...extra });
    adapter = createModbusAdapter({ bus, logger: silentLogger, metrics: createMetrics({ clock: systemClock }), clock: systemClock }, config);
    await adapter.start();
    await bus.until(() => [1, 2, 3, 4].every((u) => bus.of('rawTelemetry', `inv-${u}`).length >= 3), 30_000, 'three polls of each of the four devices');
    return bus;
  }

  it('share one connection and never have two requests outstanding on it (the default)', async () => {
    const bus = await run({});
    expect(server.stats.connections).toBe(1);
    expect(server.stats.maxOutstanding).toBe(1);
    expect(server.stats.requests).toBeGreaterThan(4 * 3 * 4);
    expect(bus.of<DeviceStatus>('deviceStatus').every((s) => s.state === 'online')).toBe(true);
  });

  it('with endpoints maxConnections 2: two connections, at most two requests outstanding', async () => {
    await run({ endpoints: { [`127.0.0.1:${server.port}`]: { maxConnections: 2 } } });
    expect(server.stats.connections).toBe(2);
    expect(server.stats.maxOutstanding).toBe(2);
  });
});

describe('recovery pause after a failed request to a unit on a TCP endpoint', () => {
  let peer: PymodbusServer;
  let adapter: ModbusAdapter | undefined;

  beforeAll(async () => {
    // Units 1 and 2 answer; unit 3 behind the "gateway" never does.
    peer = await startPymodbus({ hr: { 0: [1, 2, 3, 4] } }, { units: [1, 2] });
  });

  afterAll(async () => {
    await adapter?.close();
    await peer?.stop();
  });

  it('a silent unit is not asked again for the pause; the other units are polled meanwhile', async () => {
    const timeoutMs = 150;
    const pauseMs = Math.min(2 * timeoutMs, RTU_DRAIN_MAX_MS);
    const log: Array<{ unit: number; start: number; end: number; ok: boolean }> = [];
    const transport: TransportFactory = (conn) => {
      const t = modbusSerialTransport(conn);
      const timed = <T>(unit: number, p: Promise<T>): Promise<T> => {
        const entry = { unit, start: Date.now(), end: 0, ok: false };
        log.push(entry);
        return p.then(
          (v) => ((entry.end = Date.now()), (entry.ok = true), v),
          (e: unknown) => {
            entry.end = Date.now();
            throw e;
          },
        );
      };
      return {
        get isOpen() {
          return t.isOpen;
        },
        open: () => t.open(),
        close: () => t.close(),
        onClose: (l) => t.onClose(l),
        readRegisters: (u, ...a) => timed(u, t.readRegisters(u, ...a)),
        readBits: (u, ...a) => timed(u, t.readBits(u, ...a)),
        writeRegisters: (u, ...a) => timed(u, t.writeRegisters(u, ...a)),
        writeCoil: (u, ...a) => timed(u, t.writeCoil(u, ...a)),
      };
    };
    const bus = new RecordingBus();
    const config = validateConfig(modbusConfigSpec, {
      siteId: SITE,
      reconnectInitialMs: 10,
      reconnectMaxMs: 100,
      registerMaps: { m: { points: [{ name: 'a', address: 0, functionCode: 3, type: 'uint16' }, { name: 'b', address: 1, functionCode: 3, type: 'uint16' }] } },
      devices: [1, 2, 3].map((u) => ({ assetId: `u${u}`, connection: { type: 'tcp', host: '127.0.0.1', port: peer.port }, unitId: u, pollIntervalMs: 100, timeoutMs, profile: { type: 'registerMap', map: 'm' } })),
    });
    adapter = createModbusAdapter({ bus, logger: silentLogger, metrics: createMetrics({ clock: systemClock }), clock: systemClock, transport }, config);
    await adapter.start();
    await bus.until(() => log.filter((r) => r.unit === 3 && r.end > 0).length >= 5, 20_000, 'five failed requests to unit 3');
    const unit3 = log.filter((r) => r.unit === 3);
    expect(unit3.every((r) => !r.ok)).toBe(true);
    for (let i = 1; i < unit3.length; i++) {
      const gap = unit3[i]!.start - unit3[i - 1]!.end;
      // Timers may fire a little early; allow 10 ms.
      expect({ i, gap, ok: gap >= pauseMs - 10 }).toEqual({ i, gap, ok: true });
    }
    // Units 1 and 2 kept being polled, between unit 3's timeouts, on the same connection.
    const firstFail = unit3[0]!.end;
    const lastFail = unit3.at(-1)!.start;
    for (const u of [1, 2]) {
      const polls = bus.of<TelemetryMessage>('rawTelemetry', `u${u}`).filter((t) => t.ts > firstFail && t.ts < lastFail);
      expect({ u, enough: polls.length >= unit3.length - 1 }).toEqual({ u, enough: true });
    }
    expect(bus.of<DeviceStatus>('deviceStatus', 'u3').at(-1)?.state).toBe('offline');
    expect(bus.of<DeviceStatus>('deviceStatus', 'u1').at(-1)?.state).toBe('online');
  });
});

describe('endpoints configuration', () => {
  it('keys are host:port, maxConnections 1..64', () => {
    const ok = validateConfig(modbusConfigSpec, { siteId: SITE, endpoints: { '10.0.0.21:502': { maxConnections: 4 }, '[fe80::1]:1502': { maxConnections: 1 } } });
    expect(ok.endpoints['10.0.0.21:502']).toEqual({ maxConnections: 4 });
    expect(() => validateConfig(modbusConfigSpec, { siteId: SITE, endpoints: { '10.0.0.21': { maxConnections: 2 } } })).toThrow(ConfigError);
    expect(() => validateConfig(modbusConfigSpec, { siteId: SITE, endpoints: { '10.0.0.21:70000': { maxConnections: 2 } } })).toThrow(/endpoints/);
    expect(() => validateConfig(modbusConfigSpec, { siteId: SITE, endpoints: { 'gw:502': { maxConnections: 0 } } })).toThrow(/maxConnections/);
    expect(() => validateConfig(modbusConfigSpec, { siteId: SITE, endpoints: { 'gw:502': { maxConnections: 65 } } })).toThrow(/maxConnections/);
  });
});
