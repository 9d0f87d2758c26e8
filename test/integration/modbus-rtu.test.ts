/**
 * The ModbusAdapter over RTU: serialport opens a pseudo-terminal (socat) whose other end reaches a
 * pymodbus server using the RTU framer, so every request is a real RTU frame with CRC. Two devices
 * share the bus (one outstanding request at a time) and both report; a SunSpec write goes through.
 */
import { systemClock } from '../../components/lib/clock';
import type { ControlResult, TelemetryMessage } from '../../components/lib/contract';
import { validateConfig } from '../../components/lib/config';
import { silentLogger } from '../../components/lib/logger';
import { createMetrics } from '../../components/lib/metrics';
import { createModbusAdapter, type ModbusAdapter } from '../../components/modbus-adapter/adapter';
import { modbusConfigSpec } from '../../components/modbus-adapter/config';
import { startPymodbus, type PymodbusServer } from '../../components/modbus-adapter/testing/pymodbus';
import { RecordingBus } from '../../components/lib/testing/recording-bus';
import { inverterImage } from '../../components/modbus-adapter/testing/images';

jest.setTimeout(45_000);

describe('ModbusAdapter over RTU on a socat pty, pymodbus RTU framer', () => {
  let server: PymodbusServer;
  let adapter: ModbusAdapter | undefined;
  const bus = new RecordingBus();

  beforeAll(async () => {
    server = await startPymodbus({ hr: { 40000: inverterImage(), 100: [2315, 0xfff6, 0x4148, 0x0000] } }, { framer: 'rtu' });
    const serial = { type: 'rtu', path: server.serialPath, baudRate: 115200 };
    const config = validateConfig(modbusConfigSpec, {
      siteId: 'site-1',
      registerMaps: {
        meter: {
          points: [
            { name: 'V', address: 100, functionCode: 3, type: 'uint16', scale: 0.1, unit: 'V' },
            { name: 'Tmp', address: 101, functionCode: 3, type: 'int16', unit: 'Cel' },
            { name: 'F', address: 102, functionCode: 3, type: 'float32', unit: 'Hz' },
          ],
        },
      },
      devices: [
        { assetId: 'inv-rtu', connection: serial, unitId: 1, pollIntervalMs: 300, timeoutMs: 2000, profile: { type: 'sunspec' } },
        { assetId: 'meter-rtu', connection: serial, unitId: 2, pollIntervalMs: 300, timeoutMs: 2000, profile: { type: 'registerMap', map: 'meter' } },
      ],
    });
    adapter = createModbusAdapter({ bus, logger: silentLogger, metrics: createMetrics({ clock: systemClock }), clock: systemClock }, config);
    await adapter.start();
  });

  afterAll(async () => {
    await adapter?.close();
    await server?.stop();
  });

  it('polls a SunSpec inverter and a register-map meter on one bus', async () => {
    await bus.until(() => bus.of('rawTelemetry', 'inv-rtu').length >= 2 && bus.of('rawTelemetry', 'meter-rtu').length >= 2, 30_000, 'telemetry from both RTU devices');
    const inv = bus.of<TelemetryMessage>('rawTelemetry', 'inv-rtu')[0]!;
    expect(inv.points['103.W']).toEqual({ v: 9560, u: 'W', q: 'good' });
    expect(inv.points['160.module.2.DCV']).toEqual({ v: 605.9, u: 'V', q: 'good' });
    const meter = bus.of<TelemetryMessage>('rawTelemetry', 'meter-rtu')[0]!;
    expect(meter.points).toEqual({ V: { v: 231.5, u: 'V', q: 'good' }, Tmp: { v: -10, u: 'Cel', q: 'good' }, F: { v: 12.5, u: 'Hz', q: 'good' } });
    expect(bus.invalid).toEqual([]);
  });

  it('executes a SunSpec write over RTU with read-back', async () => {
    await bus.deliver('controlCommand', 'site/site-1/control/inv-rtu/command', { schemaVersion: 1, siteId: 'site-1', assetId: 'inv-rtu', commandId: 'w1', ts: Date.now(), action: 'shutdown', params: {}, issuedBy: 'local-control' }, { strict: true });
    await bus.until(() => bus.of<ControlResult>('controlResult').some((r) => r.commandId === 'w1'), 20_000, 'result w1');
    expect(bus.of<ControlResult>('controlResult')[0]).toMatchObject({ status: 'succeeded', message: '123.Conn=0' });
    await bus.until(() => bus.of<TelemetryMessage>('rawTelemetry', 'inv-rtu').some((m) => m.points['123.Conn']?.v === 'DISCONNECT'), 20_000, 'Conn DISCONNECT');
  });
});
